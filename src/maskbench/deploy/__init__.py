"""Run an exported bundle (``maskbench export --bundle DIR``) without torch.

``model = maskbench.deploy.load(DIR)``; ``detections = model(rgb_uint8_image)`` gives
:class:`~maskbench.pipeline.detections.Detections`, ``model.class_names`` names the labels and
``model.coco_results(detections, image_id)`` gives COCO entries with RLE masks. The command
``python -m maskbench.deploy DIR --images PATH --out OUT`` writes predict's files. Nothing here
imports torch or torchvision (a test checks it): numpy, OpenCV, pycocotools and the runtime.
"""

from ..pipeline.manifest import BundleError, Manifest
from .model import DeployedModel, load

__all__ = ["BundleError", "DeployedModel", "Manifest", "load"]

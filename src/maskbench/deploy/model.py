"""A loaded bundle as a callable: RGB uint8 image in, :class:`~maskbench.pipeline.detections.Detections`
out, through the same numpy steps the full install runs around the graph (:mod:`maskbench.pipeline`:
``preprocess_array``, ``detections_from_outputs``), so a deployed model gives the benchmark's
detections bit for bit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..pipeline.bundle_seal import verify_bundle
from ..pipeline.detections import Detections
from ..pipeline.graph_io import ExportTarget, array_feeds, stack_feeds
from ..pipeline.manifest import BundleError, Manifest
from ..pipeline.postprocess import detections_from_outputs
from ..pipeline.preprocess import ImageMeta, preprocess_array
from ..utils.names import ResizeMode
from ..zoo import InputFormat, get_family
from .engines import Engine, open_engine


@dataclass
class DeployedModel:
    """``model(image) -> Detections``; ``class_names[label]`` names a label."""

    manifest: Manifest
    folder: Path
    engine: Engine

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.manifest.class_names

    @property
    def target(self) -> ExportTarget:
        m = self.manifest
        return ExportTarget(tuple(m.input_hw), tuple(m.img_shape) if m.img_shape is not None else None,  # type: ignore[arg-type]
                            m.batch)

    @property
    def batch(self) -> int:
        """Images per graph call (1, or a static batch: :meth:`infer_batch`)."""
        return self.manifest.batch

    @property
    def input_format(self) -> InputFormat:
        return self.manifest.input_format

    def __call__(self, image: np.ndarray) -> Detections:
        feeds, meta = self.prepare(image)
        if self.batch > 1:  # one image through a static-batch graph: the batch filled with it
            return self.finish(self.infer_batch([feeds] * self.batch)[0], meta)
        return self.finish(self.engine(feeds), meta)

    def infer_batch(self, feeds: Sequence[dict[str, np.ndarray]]) -> list[tuple[np.ndarray, ...]]:
        """Exactly ``batch`` images' feeds (from :meth:`prepare`) in one graph call; each image's
        outputs, for :meth:`finish`."""
        if len(feeds) != self.batch:
            raise BundleError(f"{self.folder}: the bundle's graph takes a batch of {self.batch} images, "
                              f"not {len(feeds)}")
        outputs = self.engine(stack_feeds(list(feeds)) if self.batch > 1 else feeds[0])
        count = len(outputs) // self.batch
        return [tuple(outputs[i * count:(i + 1) * count]) for i in range(self.batch)]

    def prepare(self, image: np.ndarray) -> tuple[dict[str, np.ndarray], ImageMeta]:
        """The graph's feeds and the resize meta (the steps apart, for ``maskbench rig``)."""
        m = self.manifest
        size = tuple(m.input_size) if m.input_size is not None else None
        array, meta = preprocess_array(image, ResizeMode(m.mode), size, self.input_format)  # type: ignore[arg-type]
        shape = tuple(array.shape[-2:])
        if shape != tuple(m.input_hw):
            raise BundleError(
                f"this image preprocesses to {shape[1]}x{shape[0]} but the bundle's graph takes "
                f"{m.input_hw[1]}x{m.input_hw[0]} (image {image.shape[1]}x{image.shape[0]}); export the bundle with a "
                "frame of this camera (--images), or use stretch mode (export without --keep-ratio)")
        return array_feeds(array, meta.img_shape, self.target), meta

    def finish(self, outputs: Sequence[np.ndarray], meta: ImageMeta) -> Detections:
        """Detections from one image's graph outputs (in the manifest's output order)."""
        m = self.manifest
        boxes, scores, labels, masks = outputs
        return detections_from_outputs(get_family(m.family), np.asarray(boxes, dtype=np.float32),
                                       np.asarray(scores, dtype=np.float32), np.asarray(labels, dtype=np.int64),
                                       np.asarray(masks, dtype=np.float32), meta, m.mask_threshold)

    def coco_results(self, detections: Detections, image_id: int) -> list[dict]:
        """COCO results entries (masks as compressed RLE), as ``maskbench predict`` writes them."""
        from ..pipeline.coco_results import detections_to_coco

        return detections_to_coco(detections, image_id)


def load(folder: Path | str, threads: int | None = None,
         trusted_keys: Sequence[Path | str] | None = None,
         openvino_config: Callable[[Manifest], dict[str, str]] | None = None) -> DeployedModel:
    """The bundle in ``folder``, checked (format version, the manifest against its seal, every
    file's sha256, no file added; with ``trusted_keys``, the public key files of the keys allowed
    to sign it: its signature) and compiled (runtime version); ``threads``: override the
    manifest's thread count; ``openvino_config(manifest)``: OpenVINO's compile config instead of
    the benchmark's (the rig's streams: the bundle is compiled once, as it runs)."""
    folder = Path(folder)
    manifest = verify_bundle(folder, trusted_keys).manifest
    engine = open_engine(manifest.runtime, manifest.runtime_version, folder / manifest.artifact,
                         threads or manifest.threads, manifest.precision, manifest.output_names,
                         openvino_config(manifest) if openvino_config else None)
    return DeployedModel(manifest, folder, engine)

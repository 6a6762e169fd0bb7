import numpy as np
import pytest

from maskbench.data.images import load_image
from maskbench.data.sources import embedded_nuscenes, find_images


@pytest.fixture(scope="session")
def front_frame() -> np.ndarray:
    """The embedded 1600x900 nuScenes front-camera frame, RGB uint8."""
    return load_image(find_images(embedded_nuscenes(), cameras=["CAM_FRONT"])[0].path)

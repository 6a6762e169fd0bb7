"""maskbench: choose and deploy the best Mask R-CNN for the computer you can put on board."""

__version__ = "0.1.0"

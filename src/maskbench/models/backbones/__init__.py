"""Backbones. Each returns four feature maps (strides 4, 8, 16, 32) and names its parameters
exactly as MMDetection/mmpretrain do under the ``backbone.`` prefix, so an official checkpoint
loads without renaming."""

"""Mask R-CNN (two-stage): the network, its heads and the calibration of random weights."""

"""RTMDet-Ins (one-stage, dynamic mask kernels): the network and the calibration of random weights."""

"""Downstream benchmarks: dense prediction (MMDetection / MMSegmentation), DAVIS, UAVDT."""

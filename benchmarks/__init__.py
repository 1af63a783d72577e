"""Downstream benchmarks: how any ViT checkpoint is measured.

``dense``      the MMDetection 3 / MMSegmentation 1 plugin (backbone + adapter, checkpoint
               allow-list, config runner, annotation checks); configs import it with
               ``custom_imports=dict(imports=['benchmarks.dense'])``
``davis``      DAVIS 2017 label propagation and J&F
``uavdt``      UAVDT release parsing, conversion to COCO, AP at IoU 0.7
``synthetic``  every generated data set (pretraining images, COCO, ADE20K, DAVIS, UAVDT layouts)
``reproduce``  the paper's tables, the leaderboard, the demo and its figures

Speed measurements live apart, in the top-level ``speed`` package.
"""

"""Downstream dense-prediction benchmarks (MMDetection / MMSegmentation / DAVIS / UAVDT).

``benchmarks.dense.backbone`` registers the FLSL ViT backbone in MMDetection's and MMSegmentation's
model registries; configs load it with ``custom_imports=dict(imports=['benchmarks.dense.backbone'])``.
"""

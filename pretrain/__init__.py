"""FLSL pretraining: encoder, head, objective, views, data, trainer, checkpoints.

Importable without MMDetection / MMSegmentation.
"""

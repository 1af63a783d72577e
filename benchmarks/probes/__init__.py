"""Frozen-feature dense probes: what an encoder's patch features carry, without fine-tuning.

``demo_linear``  the demo's linear segmentation probe and patch grouping on a COCO-format set
"""

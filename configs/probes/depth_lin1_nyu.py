# lin.1: the last block
_base_ = ['./_base_/depth.py']

# lin.4: four blocks (ViT-S/B [2, 5, 8, 11], L [4, 11, 17, 23], g [9, 19, 29, 39])
_base_ = ['./_base_/depth.py']
protocol = 'depth_lin4'
model = dict(layers='depth4')

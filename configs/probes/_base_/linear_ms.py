# DINOv2 "+ms": the last four blocks, 640-pixel training crops, multi-scale flip test-time
# augmentation (docs/probes.md: values marked there as not confirmed are this suite's choice).
_base_ = ['./linear.py']
protocol = 'linear_ms'
model = dict(layers='last4')
train = dict(short_side=640, ratio_range=(1.0, 3.0), crop_size=(640, 640))
test = dict(short_side=640, ratios=[1.0, 1.32, 1.73, 2.28, 3.0], flip=True, crop_size=(512, 512),
            stride=(341, 341))

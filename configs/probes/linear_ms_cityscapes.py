# Cityscapes labelTrainIds (19 classes): DINOv2 released no Cityscapes config; this suite's
# setting is the ADE20K recipe unchanged
_base_ = ['./_base_/linear_ms.py']
dataset = dict(name='cityscapes', train_split='train', val_split='val', num_classes=19,
               reduce_zero_label=False)

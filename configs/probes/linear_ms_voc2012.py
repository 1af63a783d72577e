# VOC 2012 with SBD (train_aug, 10,582 images; MMSegmentation's aug split), evaluated on val
_base_ = ['./_base_/linear_ms.py']
dataset = dict(name='voc2012', train_split='trainaug', val_split='val', num_classes=21,
               reduce_zero_label=False)

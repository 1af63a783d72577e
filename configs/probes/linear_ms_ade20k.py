_base_ = ['./_base_/linear_ms.py']
dataset = dict(name='ade20k', train_split='training', val_split='validation', num_classes=150,
               reduce_zero_label=True)

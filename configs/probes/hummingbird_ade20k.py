# memory: ADE20K training; queries: validation; raw labels (151 classes), label 0 ignored
_base_ = ['./_base_/hummingbird.py']
dataset = dict(name='ade20k', memory_split='training', query_split='validation', num_classes=151,
               ignore_index=0)

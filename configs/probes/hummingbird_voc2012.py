# memory: VOC 2012 train_aug (10,582 images); queries: val (1,449); void 255 ignored
_base_ = ['./_base_/hummingbird.py']

# MMSegmentation's Semantic FPN (mmseg::_base_/models/fpn_r50.py: FPN with 4 outputs, FPN head
# of 128 channels with dropout 0.1 and SyncBN, whole-image inference) with its ResNet-50 replaced
# by the FLSL ViT-S/16 (docs/dense.md, ADE20K): blocks (2, 5, 8, 11), drop-path 0.1, and by
# default the authors' released layout (no adapter: all four maps at stride 16);
# configs/ade20k/*_adapter_* switch to the multi-scale adapter. 150 ADE20K classes; training
# crops padded to 512 x 512 by the data preprocessor.
_base_ = 'mmseg::_base_/models/fpn_r50.py'
custom_imports = dict(imports=['benchmarks.dense'], allow_failed_imports=False)

model = dict(
    pretrained=None,  # the base's ImageNet ResNet: the ViT loads its own init_cfg checkpoint
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(
        _delete_=True,
        type='FLSLViT',
        arch='vit_small_patch16_224',
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1,
        frozen_stages=-1,
        adapter='single_scale',
        norm='auto',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/flsl_vits16.safetensors')),
    neck=dict(in_channels=[384, 384, 384, 384]),
    decode_head=dict(num_classes=150))

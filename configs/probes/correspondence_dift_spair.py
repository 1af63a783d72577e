# DIFT's variant: every test pair, features upsampled to the original image, PCK per image and
# per point (DIFT's DINO featuriser reads the last block after the final LayerNorm)
_base_ = ['./_base_/correspondence.py']
model = dict(norm=True)
corr = dict(variant='dift', image_size=768, pairs_per_bucket=0)

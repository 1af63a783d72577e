# Variant of semfpn_flsl_vits16_40k.py with the multi-scale adapter of docs/dense.md (strides 4, 8,
# 16, 32 from deconvolutions / max-pooling) instead of the authors' all-stride-16 layout; which
# of the two the paper used is not known. Same data_root / checkpoint overrides.
_base_ = ['./semfpn_flsl_vits16_40k.py']

model = dict(backbone=dict(adapter='multiscale'))

# Zero-shot keypoint correspondence on SPair-71k, Probe3D's protocol by default
# (docs/probes.md gives the source of every value; corr.variant='dift' for DIFT's)
protocol = 'correspondence'
dataset = dict(name='spair', split='test')
# Probe3D: the last block's patch tokens before the final LayerNorm
model = dict(layers='last', norm=False)
corr = dict(variant='probe3d', image_size=800, pairs_per_bucket=200, alpha=0.1)
cache = dict(root=None, batch_size=4, shard_size=128)

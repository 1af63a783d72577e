# Hummingbird dense nearest-neighbour retrieval, as open-hummingbird-eval v2.0.0 runs it
# (docs/probes.md gives the source of every value)
protocol = 'hummingbird'
dataset = dict(name='voc2012', memory_split='trainaug', query_split='val', num_classes=21,
               ignore_index=255)
# the last block after the final LayerNorm, patch tokens only
model = dict(layers='last', norm=True)
hbird = dict(
    input_size=0,                 # 0: the largest multiple of the patch up to 512 (512 /16, 504 /14)
    augmentation_epochs=2,        # passes over the memory images, each with new augmentations
    memory_size=1024 * 10**2,     # patches in the bank (0: every patch); README: 1024 x 10^2..10^4
    k=30, temperature=0.02,
    normalisation='reference',    # 'reference': the reference's std (0.229, 0.224, 0.255); 'encoder'
    search='exact',               # 'exact' (torch, chunked) or 'faiss' (faiss-cpu IndexFlatIP)
    chunk_bytes=2**28,            # largest score block of the exact search
    subset_file=None,             # a list of memory image ids (the reference's file_sets)
    subset_fraction=0,            # else 8, 64 or 128: that fraction drawn with subset_seed
    subset_seed=42, data_seed=0, sampling_seed=0)
cache = dict(root=None, batch_size=8, shard_size=256)

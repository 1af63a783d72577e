# DAVIS 2017 semi-supervised label propagation, DINO's protocol (docs/davis.md), shared by every
# row of the DAVIS table. Read by tools/davis_propagate.py --config (benchmarks/davis/config.py).
n_last_frames = 7       # context: first frame + the 7 most recent frames (soft labels)
neighborhood = 12       # square window, Chebyshev radius in patches
topk = 5                # affinities kept per target patch, over all context frames together
temperature = 0.1       # affinity = exp(cosine / temperature)
short_side = 480        # frames: short side 480 px, long side floored to a multiple of 64
multiple = 64
batch_size = 8          # frames per encoder forward (speed only)
split = 'val'
which = 'teacher'       # teacher weights where a checkpoint holds teacher and student

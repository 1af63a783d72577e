"""Run by test_ddp.py (plain or under torchrun): one FLSL step's loss and gradients.

    python ddp_grad_worker.py CONFIG OUT
Rank 0 saves ``{"loss": [total, ms, km, vmr] averaged over ranks, "grads": {name: grad}}``.
"""
import os
import sys

import torch
import torch.distributed as dist

from mmengine.config import Config

from pretrain.trainer import Trainer

cfg = Config.fromfile(sys.argv[1])
trainer = Trainer(cfg, sys.argv[2] + ".wd", resume=None)
trainer.sampler.set_epoch(0)
batches = iter(trainer.loader)
batch = next(batches)
del batches  # stop the loader's workers before the process group goes
total, parts = trainer.compute_loss(batch["teacher"], batch["global"], batch["locals"],
                                    batch["global_index"], batch["local_index"], it=0, epoch=0)
total.backward()
vals = torch.stack([total.detach(), *[p.detach() for p in parts]])
if dist.is_initialized():
    dist.all_reduce(vals)
    vals /= dist.get_world_size()
if trainer.rank == 0:
    grads = {n: p.grad.clone() for n, p in trainer.student.named_parameters() if p.grad is not None}
    torch.save({"loss": vals, "grads": grads, "n_images": batch["global"].shape[0]}, sys.argv[2])
if dist.is_initialized():
    # every rank done with gloo before any tears it down: a rank leaving early made its peer
    # abort ("terminate called without an active exception"), seen once in 14 runs
    dist.barrier()
    dist.destroy_process_group()

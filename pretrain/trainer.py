"""The FLSL training loop: EMA teacher, AMP, DDP, schedules, logging, checkpoint + exact resume.

Exactness: the data order is a function of (seed, epoch), each image's views of (seed, epoch,
index), and the global RNG (drop-path) is re-seeded from (seed, iteration, rank) before every
step. A run resumed from any checkpoint therefore repeats the uninterrupted run bit for bit on
CPU (same thread count); see ``tests/pretrain/test_resume.py``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from core import dist as dist_state
from core.errors import FLSLError
from core.files import make_dirs

from .checkpoint import CheckpointError, export_encoder, load_safely, load_strict, save_atomic
from .config_check import COMPILE_SCOPES, check_config
from .data import DataError, PretrainImages, ResumableSampler, check_batch, listing_digest, sample_seed
from .encoder import EncoderSpec
from .flops import peak_flops, train_step_flops
from .lock import WorkDirLock
from .loss import FLSLLoss
from .model import FLSLNet
from .schedules import cosine_schedule, linear_warmup_constant
from .views import MultiCropViews, ViewConfig, photometric_on_device

log = logging.getLogger("flsl")


class NonFiniteLossError(FLSLError):
    """The loss became NaN or infinite; training stopped without saving."""


def setup_logging(work_dir: Path | None, rank: int) -> None:
    log.handlers.clear()
    log.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    h = logging.StreamHandler(sys.stdout)
    h.setFormatter(fmt)
    log.addHandler(h)
    if work_dir is not None and rank == 0:
        fh = logging.FileHandler(work_dir / "train.log")
        fh.setFormatter(fmt)
        log.addHandler(fh)
    log.propagate = False


def param_groups(model: torch.nn.Module):
    """Weight decay for weight matrices only: biases and 1-D parameters (norms) get none."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def clip_per_parameter(params, max_norm: float) -> None:
    """Scale each parameter's gradient to norm <= ``max_norm`` (per tensor, as in DINO's
    recipe), without a host synchronisation."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norms = torch._foreach_norm(grads)
    coefs = [torch.clamp(max_norm / (n + 1e-6), max=1.0) for n in norms]
    torch._foreach_mul_(grads, coefs)


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, momentum: float) -> None:
    """teacher <- momentum * teacher + (1 - momentum) * student (all trainable tensors)."""
    t_params, s_params = [], []
    for (name, pt), ps in zip(teacher.named_parameters(), student.parameters()):
        if ps.requires_grad:
            t_params.append(pt)
            s_params.append(ps.detach())
    torch._foreach_lerp_(t_params, s_params, 1.0 - momentum)


def compile_networks(student: FLSLNet, teacher: FLSLNet, scope: str | None, mode: str = "default") -> None:
    """``torch.compile`` the networks in place (their state-dict keys stay the same):
    ``"blocks"``: every transformer block of both encoders (the two view sizes give two graphs
    per block structure); ``"model"``: the student's whole forward (encoder on all views,
    mean-shift, head) and the teacher's targets."""
    if scope == "blocks":
        for net in (student, teacher):
            for block in net.backbone.blocks:
                block.compile(mode=mode)
    elif scope == "model":
        student.compile(mode=mode)
        teacher.teacher_targets = torch.compile(teacher.teacher_targets, mode=mode)
    elif scope is not None:
        raise ValueError(f"train.compile must be one of {COMPILE_SCOPES}, got {scope!r}")


class Trainer:
    """Builds everything from an MMEngine config (see ``configs/pretrain/``) and trains."""

    def __init__(self, cfg, work_dir: str | os.PathLike, resume: str | None = "auto"):
        self.cfg = cfg
        self.work_dir = Path(work_dir)
        check_config(cfg)  # before anything is created: a bad value is one line naming the key
        dist_state.init_from_env()
        self.rank, self.world, self.local_rank = dist_state.rank(), dist_state.world_size(), dist_state.local_rank()
        self.lock = WorkDirLock(self.work_dir)
        if self.rank == 0:
            make_dirs(self.work_dir)
            self.lock.check()  # before train.log is opened or a checkpoint of another run is read
        setup_logging(self.work_dir if self.rank == 0 else None, self.rank)
        self.device = torch.device(f"cuda:{self.local_rank}" if torch.cuda.is_available() and
                                   cfg.train.get("device", "auto") != "cpu" else "cpu")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.resume = resume
        self._build()

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        cfg = self.cfg
        m, d, lo, o, t = cfg.model, cfg.data, cfg.loss, cfg.optim, cfg.train
        self.seed = int(t.get("seed", 0))
        torch.manual_seed(self.seed)
        self.spec = EncoderSpec.make(m.arch, **dict(m.get("arch_kwargs", {})))

        def make_net(drop_path_rate: float = 0.0) -> FLSLNet:
            return FLSLNet(self.spec, drop_path_rate, m.out_dim, m.get("hidden_dim", 2048),
                           m.get("bottleneck_dim", 256), m.get("norm_last_layer", True))

        student = make_net(m.get("drop_path_rate", 0.1))
        teacher = make_net()
        # fresh networks of the same shapes count a step's FLOPs (MFU in the log)
        self._make_net = make_net
        self._flops_per_image = None
        teacher.load_state_dict(student.state_dict())
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.student = student.to(self.device)
        self.teacher = teacher.to(self.device).eval()
        self.compile = t.get("compile", None)
        compile_networks(self.student, self.teacher, self.compile, t.get("compile_mode", "default"))
        self.student_ddp = (DistributedDataParallel(self.student, device_ids=[self.device.index]
                                                    if self.device.type == "cuda" else None)
                            if self.world > 1 else self.student)
        patch = self.student.backbone.patch_embed.patch_size[0]
        vcfg = ViewConfig(**{k: v for k, v in d.get("views", {}).items()}, patch_size=patch)
        self.dataset = PretrainImages(d.root, MultiCropViews(vcfg), seed=self.seed,
                                      on_corrupt=d.get("on_corrupt", "error"))
        self.batch_size = int(d.batch_size_per_gpu)
        check_batch(len(self.dataset), d.root, self.batch_size, self.world)
        self.data_meta = {"root": str(Path(d.root).resolve()), "n_images": len(self.dataset),
                          "listing_sha256": listing_digest(self.dataset.root, self.dataset.files)}
        self.sampler = ResumableSampler(len(self.dataset), self.batch_size, self.rank, self.world, self.seed)
        workers = int(d.get("num_workers", 2))
        self.loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=self.sampler, num_workers=workers,
            pin_memory=self.device.type == "cuda", drop_last=True, persistent_workers=workers > 0)
        self.epochs = int(t.epochs)
        self.iters_per_epoch = self.sampler.batches_per_epoch
        self.total_iters = self.epochs * self.iters_per_epoch
        ipe = self.iters_per_epoch
        global_batch = self.batch_size * self.world
        lr = o.lr * global_batch / 256.0
        self.lr_sched = cosine_schedule(lr, o.min_lr, self.epochs, ipe, o.get("warmup_epochs", 10))
        self.wd_sched = cosine_schedule(o.weight_decay, o.weight_decay_end, self.epochs, ipe)
        self.mom_sched = cosine_schedule(o.momentum_teacher, 1.0, self.epochs, ipe)
        self.beta_sa_sched = self._maybe_cosine(lo.beta_sa, lo.get("beta_sa_start"))
        self.beta_ca_sched = self._maybe_cosine(lo.beta_ca, lo.get("beta_ca_start"))
        coefs = tuple(lo.get("coefficients", (0.03, 1.0, 5.0)))
        self.ms_coef_sched = self._maybe_cosine(coefs[0], lo.get("ms_coefficient_start"))
        temps = linear_warmup_constant(lo.warmup_teacher_temp, lo.teacher_temp,
                                       lo.warmup_teacher_temp_epochs, self.epochs)
        self.criterion = FLSLLoss(lo.student_temp, temps.tolist(), coefs,
                                  lo.get("volume_maximization", True), lo.get("centering", False),
                                  out_dim=m.out_dim).to(self.device)
        self.optimizer = torch.optim.AdamW(param_groups(self.student), lr=lr, betas=tuple(o.get("betas", (0.9, 0.999))),
                                           foreach=True)
        self.clip_grad = float(o.get("clip_grad", 3.0))
        self.freeze_last_layer = int(o.get("freeze_last_layer", 1))
        amp = t.get("amp", None) if self.device.type == "cuda" else None
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[amp]
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        self.log_interval = int(t.get("log_interval", 10))
        self.ckpt_interval = int(t.get("checkpoint_interval", 500))
        self.saveckp_freq = int(t.get("saveckp_freq", 20))
        # formatted once, without yapf: MMEngine's formatter turns a Ctrl-C into a SyntaxError
        # quoting the whole config (a 60-line traceback when pressed during a save)
        self.config_text = type(cfg)(cfg.to_dict(), format_python_code=False).pretty_text
        self.iteration = 0
        if self.resume:
            self._resume(self.resume)

    def _maybe_cosine(self, final: float, start) -> np.ndarray:
        if start is None:
            return np.full(self.total_iters, float(final))
        return cosine_schedule(float(start), float(final), self.epochs, self.iters_per_epoch)

    # ------------------------------------------------------------------ checkpoints
    @property
    def latest_path(self) -> Path:
        return self.work_dir / "latest.pth"

    def state(self) -> dict:
        return {
            "student": self.student.state_dict(),
            "teacher": self.teacher.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "criterion": self.criterion.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else {},
            "iteration": self.iteration,
            "meta": {"flsl_spec": self.spec.to_json(), "epochs": self.epochs,
                     "iters_per_epoch": self.iters_per_epoch, "world_size": self.world,
                     "batch_size_per_gpu": self.batch_size, "data": self.data_meta,
                     "config": self.config_text},
        }

    def snapshot_due(self) -> Path | None:
        """``WORK_DIR/checkpoint{epoch:04}.pth`` when an epoch has just ended whose 0-based number
        is a multiple of ``train.saveckp_freq`` (0: never), else None. DINO's and the FLSL
        authors' rule: epochs 0, f, 2f, ... of the run, each file named after the epoch it
        ends, holding the state after it."""
        if not self.saveckp_freq or self.iteration % self.iters_per_epoch:
            return None
        epoch = self.iteration // self.iters_per_epoch - 1
        return self.work_dir / f"checkpoint{epoch:04}.pth" if epoch % self.saveckp_freq == 0 else None

    def save(self, snapshot: Path | None = None) -> None:
        """Write ``latest.pth`` and, given a path, the same state as a kept snapshot; both are
        atomic with a ``.sha256`` beside them, so a corrupted ``latest.pth`` names the newest
        intact snapshot (:func:`pretrain.checkpoint.verify_digest`)."""
        if self.rank == 0:
            state = self.state()
            for path in (self.latest_path, snapshot):
                if path is not None:
                    save_atomic(state, path)
                    log.info("saved checkpoint %s (iteration %d)", path, self.iteration)

    def _resume(self, resume: str) -> None:
        path = self.latest_path if resume == "auto" else Path(resume)
        if resume == "auto" and not path.is_file():
            return
        state = load_safely(path)
        if not isinstance(state, dict) or "meta" not in state or "student" not in state:
            raise CheckpointError(f"{path}: not a training checkpoint of this project (no 'meta'/'student')")
        spec = state["meta"].get("flsl_spec")
        if spec != self.spec.to_json():
            raise CheckpointError(f"{path}: was trained with encoder {spec}, the config asks for "
                                  f"{self.spec.to_json()}; use a fresh work dir or the matching config")
        self._check_resume_run(path, state)
        current = {"iters_per_epoch": self.iters_per_epoch, "world_size": self.world,
                   "batch_size_per_gpu": self.batch_size}
        for key, value in current.items():
            if state["meta"].get(key) != value:
                log.warning("resuming with a different %s (%s -> %s): the data order differs from the "
                            "interrupted run", key, state["meta"].get(key), value)
        # every missing / unexpected key and every shape mismatch, not a cut-off torch message
        load_strict(self.student, state["student"], f"{path} (student)", "the model of the config")
        load_strict(self.teacher, state["teacher"], f"{path} (teacher)", "the model of the config")
        self.optimizer.load_state_dict(state["optimizer"])
        self.criterion.load_state_dict(state["criterion"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        log.info("resumed from %s at iteration %d / %d", path, self.iteration, self.total_iters)

    def _check_resume_run(self, path: Path, state: dict) -> None:
        """Refuse a resume that would silently finish another run: fewer epochs than already
        trained (it used to print "training already complete" and export the longer run's
        teacher), another epoch count (every schedule depends on it, so the result would follow
        neither recipe), or other images (the old run's file list, when it was recorded)."""
        meta, it = state["meta"], int(state["iteration"])
        old_epochs = meta.get("epochs")
        fresh = "keep it, or start afresh with --no-resume or another --work-dir"
        if old_epochs is not None and old_epochs != self.epochs:
            done = f"{it} of {old_epochs * meta.get('iters_per_epoch', 0) or '?'} iterations"
            raise CheckpointError(
                f"{path}: holds a run of {old_epochs} epochs ({done} done), the config now asks for "
                f"train.epochs={self.epochs}; the learning-rate, momentum and temperature schedules span "
                f"the whole run, so the resumed run would follow neither: train.epochs={old_epochs} to "
                f"{fresh}")
        old = meta.get("data")
        if old and old.get("listing_sha256") != self.data_meta["listing_sha256"]:
            raise CheckpointError(
                f"{path}: was trained on {old.get('root')} ({old.get('n_images')} images), data.root "
                f"{self.data_meta['root']} holds other images ({self.data_meta['n_images']}, another file "
                f"list); point data.root at the run's images to {fresh}")
        if old and old.get("root") != self.data_meta["root"]:
            log.info("data.root moved from %s to %s (same file list)", old.get("root"), self.data_meta["root"])

    # ------------------------------------------------------------------ step
    def _set_hyperparameters(self, it: int) -> None:
        for i, group in enumerate(self.optimizer.param_groups):
            group["lr"] = float(self.lr_sched[it])
            if i == 0:
                group["weight_decay"] = float(self.wd_sched[it])

    def train_step(self, batch: dict, it: int) -> tuple[torch.Tensor, tuple]:
        """One iteration: forward teacher + student on all views, loss, backward, clip, step, EMA.
        Returns detached ``(total, (ms, kmeans, vmr))`` tensors (no host sync)."""
        epoch = it // self.iters_per_epoch
        self._set_hyperparameters(it)
        torch.manual_seed(sample_seed(self.seed, -1 - it, self.rank))  # drop-path RNG, resumable
        dev = self.device
        nb = dev.type == "cuda"
        if "photometric" in batch:   # uint8 views (data.views.photometric_on_device): augment here
            tv, gv, lv = photometric_on_device(batch, dev)
        else:
            gv, lv = batch["global"].to(dev, non_blocking=nb), batch["locals"].to(dev, non_blocking=nb)
            tv = batch["teacher"].to(dev, non_blocking=nb)
        gi, li = batch["global_index"].to(dev, non_blocking=nb), batch["local_index"].to(dev, non_blocking=nb)
        total, parts = self.compute_loss(tv, gv, lv, gi, li, it, epoch)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.scale(total).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            total.backward()
        params = [p for p in self.student.parameters() if p.requires_grad]
        if self.clip_grad:
            clip_per_parameter(params, self.clip_grad)
        if epoch < self.freeze_last_layer:
            for p in self.student.head.last_layer.parameters():
                p.grad = None
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        ema_update(self.teacher, self.student, float(self.mom_sched[it]))
        return total.detach(), tuple(p.detach() for p in parts)

    def compute_loss(self, teacher_view, global_view, local_views, global_index, local_index, it, epoch):
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            x_g, x_l, tokens, modes, s_logits = self.student_ddp(
                global_view, local_views, global_index, local_index, float(self.beta_sa_sched[it]))
            t_logits = self.teacher.teacher_targets(teacher_view, x_g, x_l, float(self.beta_ca_sched[it]))
        return self.criterion(tokens, modes, s_logits, t_logits, epoch,
                              ms_coefficient=float(self.ms_coef_sched[it]))

    # ------------------------------------------------------------------ loop
    def _check_finite(self, history: list) -> None:
        if not history:
            return
        values = torch.stack([h[1] for h in history]).tolist()
        for (it, _), v in zip(history, values):
            if not math.isfinite(v):
                last = f"{self.latest_path} (iteration {self._last_saved})" if self._last_saved is not None \
                    else "none was written yet"
                raise NonFiniteLossError(
                    f"loss became non-finite ({v}) at iteration {it + 1} (epoch {it // self.iters_per_epoch}); "
                    f"training stopped, the last good checkpoint is untouched: {last}. Lower the learning "
                    "rate, raise warm-up, or switch fp16 to bf16.")

    def train(self) -> Path | None:
        """Train to ``train.epochs`` holding the work folder's lock; export the teacher."""
        if self.rank != 0:
            return self._train()
        with self.lock:
            return self._train()

    def _train(self) -> Path | None:
        if self.iteration >= self.total_iters:
            log.info("training already complete (%d iterations)", self.total_iters)
            return self.finish()
        log.info("FLSL pretraining: %s, %d images, %d process(es) x batch %d, %d epochs x %d iterations, device %s",
                 self.spec.arch, len(self.dataset), self.world, self.batch_size, self.epochs,
                 self.iters_per_epoch, self.device)
        self._last_saved = self.iteration if self.latest_path.is_file() else None
        history, window_start, window_iters = [], time.perf_counter(), 0
        run_start, run_iters = time.perf_counter(), 0
        self.student.train()
        while self.iteration < self.total_iters:
            epoch, start_batch = divmod(self.iteration, self.iters_per_epoch)
            self.sampler.set_epoch(epoch, start_batch)
            for batch in self.loader:
                it = self.iteration
                total, parts = self.train_step(batch, it)
                history.append((it, total, parts))
                self.iteration += 1
                window_iters += 1
                run_iters += 1
                done = self.iteration >= self.total_iters
                snapshot = self.snapshot_due()
                save_now = self.iteration % self.ckpt_interval == 0 or done or snapshot is not None
                if self.iteration % self.log_interval == 0 or save_now:
                    self._check_finite([(h[0], h[1]) for h in history])
                    if self.iteration % self.log_interval == 0 or done:
                        self._log(history, window_iters, time.perf_counter() - window_start,
                                  (time.perf_counter() - run_start) / run_iters)
                    history, window_start, window_iters = [], time.perf_counter(), 0
                if save_now:
                    self.save(snapshot)
                    self._last_saved = self.iteration
                if done:
                    break
        return self.finish()

    def _log(self, history, n_iters, seconds, sec_per_iter) -> None:
        if self.rank != 0 or not history:
            return
        stacked = torch.stack([torch.stack([h[1], *h[2]]) for h in history]).mean(0).tolist()
        it = self.iteration
        imgs = n_iters * self.batch_size * self.world / max(seconds, 1e-9)
        eta = (self.total_iters - it) * sec_per_iter
        flops = imgs * self.flops_per_image()
        peak = peak_flops(self.device, self.amp_dtype)
        mfu = flops / (peak * self.world) if peak else None
        record = {"iteration": it, "epoch": (it - 1) // self.iters_per_epoch, "loss": stacked[0],
                  "ms": stacked[1], "kmeans": stacked[2], "vmr": stacked[3],
                  "lr": float(self.lr_sched[it - 1]), "images_per_s": imgs,
                  "flops_per_image": self.flops_per_image(), "flops_per_s": flops, "mfu": mfu}
        speed = f"{flops / 1e12:.2f} TFLOP/s" if flops >= 1e12 else f"{flops / 1e9:.1f} GFLOP/s"
        if mfu is not None:
            speed += f"  MFU {100 * mfu:.1f}%"
        log.info("[%d/%d] ep %d  loss %.4f (ms %.4f  km %.4f  vmr %.4f)  lr %.2e  %.1f img/s  %s  ETA %s",
                 it, self.total_iters, record["epoch"], *stacked, record["lr"], imgs, speed,
                 time.strftime("%H:%M:%S", time.gmtime(eta)))
        with open(self.work_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def flops_per_image(self) -> float:
        """Model FLOPs of one training step per image (:func:`pretrain.flops.train_step_flops`,
        counted once)."""
        if self._flops_per_image is None:
            v = self.dataset.views.cfg
            patch = self.student.backbone.patch_embed.patch_size[0]
            n_g = ((v.global_size // patch) // v.global_window) ** 2
            n_l = ((v.local_size // patch) // v.local_window) ** 2
            self._flops_per_image = train_step_flops(self._make_net, v.global_size, v.local_size,
                                                     v.n_local, n_g, n_l)
        return self._flops_per_image

    def finish(self) -> Path | None:
        """Export the teacher encoder to ``work_dir/backbone.safetensors`` (rank 0)."""
        if self.rank != 0:
            return None
        out = self.work_dir / "backbone.safetensors"
        export_encoder(self.teacher.backbone, out)
        log.info("exported teacher encoder to %s", out)
        return out


__all__ = ["Trainer", "NonFiniteLossError", "DataError", "CheckpointError", "ema_update",
           "clip_per_parameter", "param_groups"]

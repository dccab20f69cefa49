"""The training loop: batches, steps, progress, sample grids, checkpoints, resume.

A *task* owns the networks, optimisers and losses of one kind of GAN and exposes
``train_step(next_batch) -> logs``, ``modules``, ``optimizers`` and ``sample_grid()``;
the :class:`Trainer` owns everything else and does not know which GAN it trains.
Every random draw (batch order, latent codes, penalty interpolation, target labels)
comes from one seeded ``torch.Generator`` whose state is checkpointed, so a resumed run
continues bit for bit as if it had never stopped (on the same device and library build).

A run folder holds ``config.json`` (everything needed to rebuild the run), ``data.json``
(the data manifest), ``checkpoint.safetensors`` (latest state), ``log.csv`` (losses per
step) and ``samples/step_NNNNNNN.png`` grids.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from forensics.data import ImageSet
from forensics.errors import UserError
from forensics.io import write_config, write_csv, write_json
from forensics.progress import bar
from forensics.report import write_png
from forensics.generators.checkpoint import load_checkpoint, restoring, save_checkpoint

CHECKPOINT = "checkpoint.safetensors"


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda: no CUDA device is available to this torch build")
    if name not in ("cpu", "cuda"):
        raise UserError(f"unknown device {name!r}: auto, cpu or cuda")
    return torch.device(name)


def to_unit(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` to float ``(N, 3, H, W)`` in [-1, 1]."""
    return images_uint8.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float ``(N, 3, H, W)`` in [-1, 1] to uint8 ``(N, H, W, 3)``, correctly rounded
    (``round((x + 1) * 127.5)``, clipped), not truncated."""
    u = ((x.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return u.permute(0, 2, 3, 1).contiguous().numpy()


def adam_pair(G: torch.nn.Module, D: torch.nn.Module, p: dict) -> dict:
    """The Adam optimisers of a generator/discriminator pair, from a preset's parameters."""
    betas = (p["beta1"], p["beta2"])
    return {"G": torch.optim.Adam(G.parameters(), p["lr_g"], betas),
            "D": torch.optim.Adam(D.parameters(), p["lr_d"], betas)}


def optimise(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One gradient step of ``opt`` on ``loss``."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@contextmanager
def flush_denormal():
    """Subnormal floats flushed to zero while training: the tails of a sharp softmax (InfoNCE's
    backward) are subnormal and make CPU matrix products about 20x slower."""
    ok = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if ok:
            torch.set_flush_denormal(False)


class BatchSampler:
    """Shuffled epochs of batch indices from a seeded generator; checkpointable."""

    def __init__(self, n: int, batch: int, gen: torch.Generator):
        if n < batch:
            raise UserError(f"the data has {n} images, fewer than one batch of {batch}")
        self.n, self.batch, self.gen = n, batch, gen
        self.perm, self.pos, self.epoch = torch.randperm(n, generator=gen), 0, 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch > self.n:
            self.perm, self.pos, self.epoch = torch.randperm(self.n, generator=self.gen), 0, self.epoch + 1
        ix = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return ix

    def state(self) -> dict:
        return {"perm": self.perm, "pos": self.pos, "epoch": self.epoch}

    def load(self, s: dict) -> None:
        self.perm, self.pos, self.epoch = s["perm"], int(s["pos"]), int(s["epoch"])


class Trainer:
    def __init__(self, task, data: ImageSet, run_dir, config, device: torch.device, progress: bool = True):
        self.task, self.run_dir, self.config, self.device = task, Path(run_dir), config, device
        self.sample_every, self.checkpoint_every = config.sample_every, config.checkpoint_every
        self.progress = progress
        self.images = torch.from_numpy(np.ascontiguousarray(data.images)).to(device)
        self.labels = None if data.attrs is None else torch.from_numpy(data.attrs).float().to(device)
        self.gen = task.gen
        self.sampler = BatchSampler(len(self.images), config.params["batch"], self.gen)
        self.step = 0
        self.log: list[dict] = []

    def next_batch(self) -> dict:
        ix = self.sampler.next().to(self.device)
        b = {"images": to_unit(self.images[ix])}
        if self.labels is not None:
            b["labels"] = self.labels[ix]
        return b

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict:
        return {"step": self.step, "gen": self.gen.get_state(), "sampler": self.sampler.state(),
                "modules": {k: m.state_dict() for k, m in self.task.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.task.optimizers.items()},
                "fixed": self.task.fixed}

    def save(self) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT, self.state())
        cols = ["step"] + sorted({k for r in self.log for k in r} - {"step"})
        write_csv(self.run_dir / "log.csv", self.log, cols)

    def restore(self) -> None:
        ckpt = self.run_dir / CHECKPOINT
        s = load_checkpoint(ckpt)
        with restoring(ckpt):
            for k, m in self.task.modules.items():
                m.load_state_dict(s["modules"][k])
            for k, o in self.task.optimizers.items():
                o.load_state_dict(s["optimizers"][k])
            self.gen.set_state(s["gen"])
            self.sampler.load(s["sampler"])
            self.task.fixed = {k: v.to(self.device) for k, v in s["fixed"].items()}
            self.step = int(s["step"])
        log = self.run_dir / "log.csv"
        if log.is_file():
            import csv

            with restoring(log, "training log"), open(log, newline="", encoding="utf-8") as f:
                self.log = [{k: (float(v) if v not in ("", None) else None) for k, v in r.items()}
                            for r in csv.DictReader(f) if int(float(r["step"])) <= self.step]
                for r in self.log:
                    r["step"] = int(r["step"])

    def write_samples(self) -> None:
        grid = self.task.sample_grid()
        write_png(self.run_dir / "samples" / f"step_{self.step:07d}.png", grid)
        write_png(self.run_dir / "samples" / "latest.png", grid)

    # ------------------------------------------------------------------------ loop
    def one_step(self) -> dict:
        """One generator step (with its critic steps) and its bookkeeping."""
        logs = self.task.train_step(self.next_batch)
        self.step += 1
        self.log.append({"step": self.step, **{k: round(v, 6) for k, v in logs.items()}})
        return logs

    def train(self, steps: int) -> dict:
        t0 = time.perf_counter()
        start = self.step
        try:
            with flush_denormal(), bar(total=steps, initial=self.step,
                                       desc=f"train {self.config.gan} {self.config.last_layer}",
                                       enabled=self.progress) as pb:
                while self.step < steps:
                    logs = self.one_step()
                    pb.update(1)
                    if self.step % 10 == 0:
                        pb.set_postfix({k: f"{v:.3f}" for k, v in logs.items()}, refresh=False)
                    if self.step % self.sample_every == 0:
                        self.write_samples()
                    if self.step % self.checkpoint_every == 0 and self.step < steps:
                        self.save()
        except KeyboardInterrupt:
            self.save()
            print(f"forensics: interrupted at step {self.step}; checkpoint saved, continue with --resume",
                  file=sys.stderr)
            raise
        if self.step % self.sample_every:
            self.write_samples()
        self.save()
        dt = time.perf_counter() - t0
        return {"steps": self.step, "seconds": dt, "steps_per_second": (self.step - start) / dt if dt else None}


# --------------------------------------------------------------------------- entry points
def build_task(config, device: torch.device):
    """The task of a :class:`~forensics.generators.config.GanConfig`, its weights initialised from the seed."""
    gen = torch.Generator().manual_seed(int(config.seed))
    if config.gan == "stargan":
        from forensics.generators.stargan import StarGANTask

        return StarGANTask(config, device, gen)
    from forensics.generators.unconditional import UnconditionalTask

    return UnconditionalTask(config, device, gen)


def train_gan(config, out, resume: bool = False, progress: bool = True) -> dict:
    """Train (or with ``resume`` continue to ``config.steps``) the run ``config`` (a
    :class:`~forensics.generators.config.GanConfig`) in folder ``out``. ``out/config.json``
    holds the config; ``GanConfig.load`` reads it back."""
    from forensics.data import load_source
    from forensics.generators.config import GanConfig

    if not isinstance(config, GanConfig):
        raise TypeError(f"train_gan needs a GanConfig, got {type(config).__name__}")
    out = Path(out)
    config = config.resolved()
    has_ckpt = (out / CHECKPOINT).is_file()
    if has_ckpt and not resume:
        raise UserError(f"{out} already holds a run; resume it, or choose another folder")
    if resume:
        if not has_ckpt:
            raise UserError(f"{out}: nothing to resume (no {CHECKPOINT})")
        old = GanConfig.load(out / "config.json")
        diff = config.resume_diff(old)
        if diff:
            raise UserError(f"{out}: resuming with different settings ({', '.join(diff)}) than the saved run")
    dev = resolve_device(config.device)
    ds = load_source(config.data, config.size, n=config.n_images, seed=config.seed, policy=config.policy,
                     attributes=config.attributes,
                     select_attrs=(list(config.attrs) if config.gan == "stargan" else None), progress=progress)
    if config.gan == "stargan" and ds.attrs is None:
        raise UserError(f"{config.data}: StarGAN needs an attribute table (CelebA layout or an attributes file)")
    task = build_task(config, dev)
    tr = Trainer(task, ds, out, config, dev, progress)
    if resume:
        tr.restore()
    else:
        task.init_fixed(tr.next_batch)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "data.json", ds.manifest)
    write_config(out, {"config": config.to_dict(), "device_used": str(dev), "layers": task.describe()})
    return tr.train(config.steps)


def load_run(run_dir, device: str = "auto"):
    """``(task, config)`` of a trained run with its latest weights, for sampling."""
    from forensics.generators.config import GanConfig

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / CHECKPOINT).is_file():
        raise UserError(f"{run_dir}: not a finished or checkpointed training run (needs config.json and {CHECKPOINT})")
    config = GanConfig.load(run_dir / "config.json")
    dev = resolve_device(device)
    task = build_task(config, dev)
    s = load_checkpoint(run_dir / CHECKPOINT)
    with restoring(run_dir / CHECKPOINT):
        for k, m in task.modules.items():
            m.load_state_dict(s["modules"][k])
        task.step = int(s["step"])
    return task, config

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

With an FID schedule (``GanConfig.fid_schedule``, on by default in the ``paper`` preset when the
Inception weights are installed; see :mod:`forensics.generators.schedule`) the trainer measures FID
at the end of every epoch, cuts the learning rate of both optimisers (and the level step of quantized
layers) on a plateau, stops early, and keeps ``best.safetensors`` (the state at the best FID) beside
the latest checkpoint; the schedule's state travels in every checkpoint, so resuming stays
bit-identical, and ``schedule.json`` is its readable log. An *epoch* is one pass of the discriminator over the data:
``ceil(n_images / (batch * n_critic))`` generator steps (WGAN-GP draws ``n_critic`` = 5 batches per
generator step, so its epoch is a fifth as many generator steps; the same count
``forensics.study.config`` uses to turn the paper's epochs into steps). Sampling
(:func:`load_run`) reads ``best.safetensors`` when there is one.
"""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

from forensics.core.config import fingerprint
from forensics.core.errors import UserError
from forensics.core.progress import bar
from forensics.generators.checkpoint import load_checkpoint, restoring, save_checkpoint
from forensics.generators.optim import flush_denormal
from forensics.generators.runs import BEST, CHECKPOINT, build_task, sample_images
from forensics.generators.tensors import resolve_device, to_device, to_unit
from forensics.io.files import cached_array, write_config, write_csv, write_json
from forensics.io.images import write_png
from forensics.io.sources import ImageSet
from forensics.metrics.fid import fid_from_features
from forensics.metrics.inception import (
    FidConfig,
    InceptionFeatures,
    cache_root,
    extractor_id,
    features_of,
    require_inception,
)


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


class FidEvaluator:
    """FID of a task's generator against the run's real images, for the FID schedule: ``n`` samples
    (latent codes from ``seed``: the same codes at every measurement) vs at most ``n`` real images
    (a seeded subset of the run's data). The real side's features are computed once and cached under
    :func:`forensics.metrics.inception.cache_root` (key: the images' bytes, the resize mode, the feature
    extractor). ``features`` maps uint8 ``(N, H, W, 3)`` images to ``(N, D)`` features (default: the real
    Inception, :class:`forensics.metrics.inception.InceptionFeatures`; tests pass a cheap one)."""

    def __init__(self, schedule, real_images: np.ndarray, seed: int, features=None, device: str = "cpu"):
        self.n, self.mode, self.seed = int(schedule.n), schedule.mode, int(seed)
        if features is None:
            features = InceptionFeatures(schedule.mode, device=device)
        self.features = features
        self.feature_id = extractor_id(features)
        pick = np.random.default_rng(self.seed).permutation(len(real_images))[:min(self.n, len(real_images))]
        self.real = np.ascontiguousarray(real_images[np.sort(pick)])
        self._real = None

    def real_features(self) -> np.ndarray:
        if self._real is None:
            key = fingerprint({"images": hashlib.sha1(self.real.tobytes()).hexdigest(), "shape": self.real.shape,
                               "mode": self.mode, "features": self.feature_id})
            self._real = cached_array(cache_root(FidConfig()) / f"train-real-{key}.npz", key,
                                      lambda: features_of(self.features, self.real))
        return self._real

    def __call__(self, task) -> float:
        real = self.real_features()
        fake = np.concatenate([features_of(self.features, b) for b in sample_images(task, self.n, self.seed)])
        return fid_from_features(fake, real)

    def describe(self) -> dict:
        return {"fid_n": self.n, "fid_real_n": int(len(self.real)), "fid_mode": self.mode,
                "fid_features": self.feature_id, "fid_sample_seed": self.seed}


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
        self.fid = None      # FidEvaluator when an FID schedule runs
        self.monitor = None  # its FidMonitor
        self.base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in task.optimizers.items()}
        self.base_level_lrs = {(k, name): lw.lr for k, m in task.modules.items()
                               for name, lw in m.named_modules() if hasattr(lw, "apply_pending")}

    def next_batch(self) -> dict:
        ix = to_device(self.sampler.next(), self.device)
        b = {"images": to_unit(self.images[ix])}
        if self.labels is not None:
            b["labels"] = self.labels[ix]
        return b

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict:
        s = {"step": self.step, "gen": self.gen.get_state(), "sampler": self.sampler.state(),
             "modules": {k: m.state_dict() for k, m in self.task.modules.items()},
             "optimizers": {k: o.state_dict() for k, o in self.task.optimizers.items()},
             "fixed": self.task.fixed}
        if self.monitor is not None:
            s["schedule"] = self.monitor.state_dict()
        return s

    def save(self) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT, self.state())
        cols = ["step"] + sorted({k for r in self.log for k in r} - {"step"})
        write_csv(self.run_dir / "log.csv", self.log, cols)

    def begin(self, resume: bool, manifest: dict) -> None:
        """Continue the run in ``run_dir`` from its checkpoint (``resume``), or start one: the task's
        fixed tensors from the first batch, the folder, and the data ``manifest`` (``data.json``)."""
        if resume:
            self.restore()
        else:
            self.task.init_fixed(self.next_batch)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.run_dir / "data.json", manifest)

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
            if self.monitor is not None:
                from forensics.generators.schedule import FidMonitor

                if "schedule" not in s:
                    raise UserError(f"{self.run_dir}: the checkpoint holds no FID schedule state")
                self.monitor = FidMonitor.from_state(s["schedule"])
                self.apply_lr_scale()  # quantized layers' level steps are not in the state
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

    # ------------------------------------------------------------------ FID schedule
    def use_schedule(self, monitor, fid) -> None:
        """Run the FID schedule ``monitor`` (a :class:`~forensics.generators.schedule.FidMonitor`), measuring
        with ``fid`` (a :class:`FidEvaluator`); call before :meth:`restore`."""
        self.monitor, self.fid = monitor, fid
        n_critic = int(getattr(getattr(self.task, "objective", None), "n_critic", 1))
        self.epoch_steps = -(-len(self.images) // (self.config.params["batch"] * n_critic))

    def apply_lr_scale(self) -> None:
        """Every learning rate at its base value times the schedule's ``lr_scale``."""
        scale = self.monitor.lr_scale
        for k, o in self.task.optimizers.items():
            for g, base in zip(o.param_groups, self.base_lrs[k]):
                g["lr"] = base * scale
        for k, m in self.task.modules.items():
            for name, lw in m.named_modules():
                if (k, name) in self.base_level_lrs:
                    lw.lr = self.base_level_lrs[(k, name)] * scale

    def schedule_summary(self) -> dict:
        m = self.monitor
        return {"epoch_steps": self.epoch_steps, "epochs_done": self.step // self.epoch_steps,
                "best_fid": None if m.best_step is None else m.best_fid, "best_step": m.best_step,
                "best_checkpoint": BEST if m.best_step is not None else None, "stopped_early": m.stopped,
                "lr_scale": m.lr_scale, "lr_cuts": m.cuts, **self.fid.describe()}

    def fid_due(self) -> bool:
        """Whether the schedule measures FID at the current step (the end of a due epoch) and has not yet."""
        m = self.monitor
        return (m is not None and self.step > 0 and self.step % self.epoch_steps == 0
                and m.due(self.step // self.epoch_steps - 1) and not (m.history and m.history[-1][0] == self.step))

    def measure_fid(self) -> bool:
        """FID of the current generator, the schedule's actions applied; True when it says stop.
        The monitor's new state is committed only once the best checkpoint it names is on disk, so
        an interruption anywhere in here leaves a state whose measurement :meth:`train` redoes."""
        from forensics.generators.schedule import FidMonitor

        fid = self.fid(self.task)
        new = FidMonitor.from_state(self.monitor.state_dict())
        actions = new.update(self.step, fid)
        if "save_best" in actions:
            save_checkpoint(self.run_dir / BEST, {**self.state(), "schedule": new.state_dict()})
        self.monitor = new
        if "cut_lr" in actions:
            self.apply_lr_scale()
        if self.log:
            self.log[-1].update(fid=round(fid, 6), lr_scale=self.monitor.lr_scale)
        write_json(self.run_dir / "schedule.json", {**self.schedule_summary(), "state": self.monitor.state_dict()})
        return "stop" in actions

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
        stop = self.monitor is not None and self.monitor.stopped
        if stop:  # the schedule stopped this run earlier: nothing more to train
            return {"steps": self.step, "seconds": 0.0, "steps_per_second": None,
                    "schedule": self.schedule_summary()}
        try:
            with flush_denormal(), bar(total=steps, initial=self.step,
                                       desc=f"train {run_label(self.config)}",
                                       enabled=self.progress) as pb:
                if self.fid_due():  # interrupted during the measurement of this epoch: redo it
                    stop = self.measure_fid()
                while self.step < steps and not stop:
                    logs = self.one_step()
                    pb.update(1)
                    if self.step % 10 == 0:
                        pb.set_postfix({k: f"{v:.3f}" for k, v in logs.items()}, refresh=False)
                    if self.fid_due():
                        stop = self.measure_fid()
                    if self.step % self.sample_every == 0:
                        self.write_samples()
                    if self.step % self.checkpoint_every == 0 and self.step < steps and not stop:
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
        r = {"steps": self.step, "seconds": dt, "steps_per_second": (self.step - start) / dt if dt else None}
        if self.monitor is not None:
            r["schedule"] = self.schedule_summary()
        return r


# --------------------------------------------------------------------------- entry points

def run_label(config) -> str:
    """What a run's progress bar calls it: a config's ``label`` (the diffusion-era sources), else ``gan spec``."""
    return getattr(config, "label", None) or f"{config.gan} {config.last_layer}"


def check_run_folder(out: Path, config, resume: bool) -> None:
    """The guards of a run folder: a new run needs one without a checkpoint; resuming needs a checkpoint
    and a ``config.json`` that matches ``config`` (a config class with ``load`` and ``resume_diff``)."""
    has_ckpt = (out / CHECKPOINT).is_file()
    if has_ckpt and not resume:
        raise UserError(f"{out} already holds a run; resume it, or choose another folder")
    if resume:
        if not has_ckpt:
            raise UserError(f"{out}: nothing to resume (no {CHECKPOINT})")
        old = type(config).load(out / "config.json", complete=True)
        diff = config.resume_diff(old)
        if diff:
            raise UserError(f"{out}: resuming with different settings ({', '.join(diff)}) than the saved run")


def train_gan(config, out, resume: bool = False, progress: bool = True, features=None) -> dict:
    """Train (or with ``resume`` continue to ``config.steps``) the run ``config`` (a
    :class:`~forensics.generators.config.GanConfig`) in folder ``out``. ``out/config.json``
    holds the config; ``GanConfig.load`` reads it back. With ``config.fid_schedule`` the FID
    schedule runs (it may stop before ``config.steps``); ``features`` replaces the Inception
    network as its feature extractor (see :class:`FidEvaluator`)."""
    from forensics.generators.config import GanConfig
    from forensics.io.sources import load_source

    if not isinstance(config, GanConfig):
        raise TypeError(f"train_gan needs a GanConfig, got {type(config).__name__}")
    out = Path(out)
    config = config.resolved()
    check_run_folder(out, config, resume)
    dev = resolve_device(config.device)
    if config.fid_schedule is not None and features is None:  # before the data are loaded: one line, at once
        require_inception("the FID schedule needs", {"fid_schedule": "None"})
    ds = load_source(config.data, config.size, n=config.n_images, seed=config.seed, policy=config.policy,
                     attributes=config.attributes,
                     select_attrs=(list(config.attrs) if config.gan == "stargan" else None), progress=progress)
    if config.gan == "stargan" and ds.attrs is None:
        raise UserError(f"{config.data}: StarGAN needs an attribute table (CelebA layout or an attributes file)")
    task = build_task(config, dev)
    tr = Trainer(task, ds, out, config, dev, progress)
    if config.fid_schedule is not None:
        from forensics.generators.schedule import FidMonitor

        tr.use_schedule(FidMonitor(config.fid_schedule),
                        FidEvaluator(config.fid_schedule, ds.images, config.seed, features, str(dev)))
    tr.begin(resume, ds.manifest)
    info = {"config": config.to_dict(), "device_used": str(dev), "layers": task.describe()}
    if tr.monitor is not None:
        info["fid_schedule"] = {"epoch_steps": tr.epoch_steps, "sampled_checkpoint": f"{BEST} when it exists",
                                **tr.fid.describe()}
    write_config(out, info)
    return tr.train(config.steps)

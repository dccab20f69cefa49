"""Diffusion-era image sources: the source-spec syntax, training, loading, sampling, reconstructing.

A source spec names one source the way the study names GAN setups: ``KIND[-fF]:SPEC``, e.g.
``ae-kl:N.1.3`` (a KL autoencoder, factor 4, whose decoder upsamples by nearest + conv 3x3),
``ae-vq-f8:P.1.3`` (vector-quantised, factor 8, pixel shuffle), ``ddpm:baseline`` (a pixel-space DDPM
whose U-Net up-blocks are transposed convolutions) or ``ldm:Z.1.5`` (latent diffusion whose autoencoder
decodes by zero insertion + conv 5x5). ``SPEC`` is a last-layer spec of :mod:`forensics.generators.layers`;
``-fF`` the autoencoder's factor (4 by default; not for ddpm).

The entry point for a study stage is :func:`make_source` -> :class:`Source`, with ``train(out)``,
``sample(n, seed)`` and ``reconstruct(images)``; its ``key`` changes with everything the images depend
on (the spec among them). :func:`train_source` trains a run folder (resumable, bit-identical on one
machine: the GAN :class:`~forensics.generators.trainer.Trainer` runs it), :func:`load_source_run`
reads one back. An ldm run trains its autoencoder first, in ``RUN/first_stage``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from forensics.core.config import fingerprint
from forensics.core.errors import UserError
from forensics.generators.autoencoder import Autoencoder, AutoencoderTask
from forensics.generators.checkpoint import load_checkpoint, restoring
from forensics.generators.diffusion import DiffusionTask
from forensics.generators.runs import CHECKPOINT
from forensics.generators.source_config import (  # noqa: F401  (the spec syntax, re-exported)
    AUTOENCODERS,
    SourceConfig,
    SourceSpec,
    is_source_spec,
    parse_source,
    parse_sources,
)
from forensics.generators.tensors import resolve_device, to_uint8, to_unit
from forensics.generators.trainer import Trainer, check_run_folder
from forensics.io.files import write_config

FIRST_STAGE = "first_stage"


# ------------------------------------------------------------------------------ configs of specs
def source_config(spec: str | SourceSpec, base: SourceConfig | None = None, **changes) -> SourceConfig:
    """The config of ``spec``: ``base``'s settings (data, size, steps, seed, preset, ...; default the tiny
    preset) with the spec's kind, last layer and factor, and ``changes`` (not None). A base of another kind
    gives the spec's kind the base preset's hyper-parameters."""
    s = parse_source(spec)
    base = base if base is not None else SourceConfig.tiny("ae-kl")
    changes = {k: v for k, v in changes.items() if v is not None}
    own = {"last_layer": s.last_layer, **changes}
    if s.kind == base.kind:
        if s.kind != "ddpm":
            own["factor"] = s.factor or 4
        return base.replace(**own)
    keep = {k: getattr(base, k) for k in ("inner_layer", "padding", "data", "size", "steps", "seed", "n_images",
                                          "policy", "sample_every", "checkpoint_every", "device")}
    if s.kind != "ddpm":
        keep["factor"] = s.factor or 4
    return SourceConfig.from_preset(base.preset, s.kind, **{**keep, **own})


# ------------------------------------------------------------------------------ run folders
def _build_task(config: SourceConfig, device: torch.device, first_stage=None):
    gen = torch.Generator().manual_seed(int(config.seed))
    if config.kind in AUTOENCODERS:
        return AutoencoderTask(config, device, gen)
    return DiffusionTask(config, device, gen, first_stage)


def _restore_modules(task, run_dir: Path) -> None:
    s = load_checkpoint(run_dir / CHECKPOINT)
    with restoring(run_dir / CHECKPOINT):
        for k, m in task.modules.items():
            m.load_state_dict(s["modules"][k])
        task.fixed = {k: v.to(task.device) for k, v in s["fixed"].items()}
        task.step = int(s["step"])


def _first_stage_model(run_dir: Path, device: torch.device) -> Autoencoder:
    ae_task, _ = load_source_run(run_dir / FIRST_STAGE, str(device))
    return ae_task.model


def load_source_run(run_dir, device: str = "auto"):
    """``(task, config)`` of a trained (or checkpointed) source run, for sampling and reconstructing."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / CHECKPOINT).is_file():
        raise UserError(f"{run_dir}: not a finished or checkpointed source run (needs config.json and {CHECKPOINT})")
    try:
        config = SourceConfig.load(run_dir / "config.json")
    except ValueError as e:
        raise UserError(f"{run_dir}: not a source run ({e})") from None
    dev = resolve_device(device)
    task = _build_task(config, dev, _first_stage_model(run_dir, dev) if config.kind == "ldm" else None)
    _restore_modules(task, run_dir)
    return task, config


def train_source(config: SourceConfig, out, resume: bool = False, progress: bool = True) -> dict:
    """Train (or with ``resume`` continue to ``config.steps``) the source run ``config`` in folder ``out``,
    with the GANs' :class:`~forensics.generators.trainer.Trainer` (seeded, checkpointed, resumable bit for
    bit). An ldm trains (or resumes, or finds finished) its autoencoder in ``out/first_stage`` first, then
    the diffusion on its frozen latent. Returns the trainer's summary (``steps``, ``seconds``,
    ``steps_per_second``; ldm: also ``first_stage``)."""
    from forensics.io.sources import load_source

    if not isinstance(config, SourceConfig):
        raise TypeError(f"train_source needs a SourceConfig, got {type(config).__name__}")
    out = Path(out)
    config = config.resolved()
    first = None
    own_resume = resume
    if config.kind == "ldm":
        fs_dir = out / FIRST_STAGE
        own_resume = resume and (out / CHECKPOINT).is_file()
        if resume and not own_resume and not (fs_dir / CHECKPOINT).is_file():
            raise UserError(f"{out}: nothing to resume (no {CHECKPOINT}, nor one in {FIRST_STAGE}/)")
        check_run_folder(out, config, own_resume)  # before the first stage trains: a mismatch stops at once
        first = train_source(config.autoencoder(), fs_dir, resume and (fs_dir / CHECKPOINT).is_file(), progress)
    else:
        check_run_folder(out, config, resume)
    dev = resolve_device(config.device)
    ds = load_source(config.data, config.size, n=config.n_images, seed=config.seed, policy=config.policy,
                     progress=progress)
    task = _build_task(config, dev, _first_stage_model(out, dev) if config.kind == "ldm" else None)
    tr = Trainer(task, ds, out, config, dev, progress)
    tr.begin(own_resume, ds.manifest)
    write_config(out, {"config": config.to_dict(), "device_used": str(dev), "layers": task.describe()})
    r = tr.train(config.steps)
    if first is not None:
        r["first_stage"] = first
    return r


# ------------------------------------------------------------------------------ the study's entry point
class Source:
    """One diffusion-era source: its config and, once trained or loaded, its networks."""

    def __init__(self, config: SourceConfig, task=None, run_dir: Path | None = None):
        self.config, self.task, self.run_dir = config, task, run_dir

    @property
    def spec(self) -> str:
        return self.config.label

    @property
    def key(self) -> str:
        """A cache key: a fingerprint of every setting the images depend on (kind, specs, factor, padding,
        data, size, preset, params, first stage, seed, images, policy, steps), not of the cadence or device."""
        d = self.config.to_dict()
        return fingerprint({k: d[k] for k in (*SourceConfig.RESUME_KEYS, "steps")})

    @classmethod
    def load(cls, run_dir, device: str = "auto") -> Source:
        task, config = load_source_run(run_dir, device)
        return cls(config, task, Path(run_dir))

    def train(self, out, resume: bool = False, progress: bool = True) -> dict:
        """Train in ``out`` (see :func:`train_source`), then load the trained networks."""
        r = train_source(self.config, out, resume, progress)
        self.task, _ = load_source_run(out, self.config.device)
        self.run_dir = Path(out)
        return r

    def _need(self):
        if self.task is None:
            raise UserError(f"source {self.spec} is not trained: train it or load a run")
        return self.task

    def sample(self, n: int, seed: int = 0, batch: int = 64, steps: int | None = None) -> np.ndarray:
        """``n`` generated uint8 images ``(n, S, S, 3)``; the same seed gives the same images. Autoencoders
        decode prior latents; diffusion models sample by DDIM with ``steps`` (default: the preset's)."""
        task = self._need()
        gen = torch.Generator().manual_seed(int(seed))
        out = [to_uint8(task.sample(min(batch, n - i), gen, steps)) for i in range(0, n, batch)]
        return np.concatenate(out) if out else np.zeros((0, self.config.size, self.config.size, 3), np.uint8)

    def reconstruct(self, images: np.ndarray, batch: int = 64) -> np.ndarray:
        """Reconstructions of uint8 images ``(N, S, S, 3)`` by the autoencoder (ldm: its first stage)."""
        task = self._need()
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"reconstruct takes uint8 images (N, H, W, 3), got {images.dtype} {images.shape}")
        return np.concatenate([to_uint8(task.reconstruct(to_unit(torch.from_numpy(images[i:i + batch]))))
                               for i in range(0, len(images), batch)])


def make_source(spec: str | SourceSpec, config: SourceConfig | None = None, **changes) -> Source:
    """The untrained :class:`Source` of ``spec`` (e.g. ``"ae-kl:N.1.3"``) on ``config``'s settings
    (see :func:`source_config`)."""
    return Source(source_config(spec, config, **changes))


def write_source_images(run_dir, out, n: int | None = None, seed: int = 0, steps: int | None = None,
                        reconstruct: str | None = None, device: str = "auto", progress: bool = True,
                        overwrite: bool = False, batch: int = 64) -> dict:
    """Write lossless PNGs ``000000.png ...`` of a source run into ``out`` (an empty or new folder;
    ``overwrite`` replaces earlier ones): ``n`` samples from ``seed`` (diffusion: DDIM with ``steps``), or
    with ``reconstruct`` (a real-image source: ``builtin``, a folder, an .npz) the autoencoder's
    reconstructions of its images at the run's size (at most ``n``). ``out/config.json`` records what was made."""
    from forensics.core.progress import bar
    from forensics.generators.sampling import prepare_output
    from forensics.io.images import write_png
    from forensics.io.sources import load_source

    src = Source.load(run_dir, device)
    cfg = src.config
    if reconstruct is None and (n is None or n < 1):
        raise ValueError(f"the number of images must be at least 1, not {n}")
    if reconstruct is not None and cfg.kind == "ddpm":
        raise ValueError(f"{run_dir} is a pixel-space DDPM: it has no encoder, it cannot reconstruct images")
    real = None
    if reconstruct is not None:
        real = load_source(reconstruct, cfg.size, n=n, seed=seed, policy=cfg.policy, progress=progress)
        n = len(real)
    out = prepare_output(out, overwrite)
    gen = torch.Generator().manual_seed(int(seed))
    k = 0
    with bar(total=n, desc="reconstruct" if real is not None else "sample", enabled=progress) as pb:
        for i in range(0, n, batch):
            b = min(batch, n - i)
            imgs = (src.reconstruct(real.images[i:i + b]) if real is not None
                    else to_uint8(src.task.sample(b, gen, steps)))
            for im in imgs:
                write_png(out / f"{k:06d}.png", im)
                k += 1
            pb.update(b)
    info = {"command": "sample-source", "run": str(run_dir), "source": cfg.label, "step": src.task.step,
            "encoding": "PNG, round((x + 1) * 127.5) clipped to 0..255"}
    if real is not None:
        info.update(reconstructed=real.manifest, names=real.names)
    else:
        diffusion = cfg.kind in ("ddpm", "ldm")
        info.update(n=n, seed=seed, ddim_steps=(steps or cfg.params["ddim_steps"]) if diffusion else None)
    write_config(out, info)
    return {"n": k, "out": str(out), "step": src.task.step, "source": cfg.label}


# ------------------------------------------------------------------------------ diagnostics
def grid_peak_ratio(images: np.ndarray, period: int) -> float:
    """The strongest periodic peak of a set of images: the largest ratio, over the harmonics ``(i, j) / period``
    cycles/pixel (not both 0), of the mean grey power spectrum there to the median of its 8 neighbours.
    About 1 for images without a period-``period`` grid; the trace of transposed convolutions is >> 1.
    ``images``: ``(N, S, S, 3)`` (uint8 or float), ``S`` a multiple of ``period``."""
    x = np.asarray(images, np.float64)
    if x.ndim != 4 or x.shape[1] != x.shape[2] or x.shape[1] % period:
        raise ValueError(f"need square images (N, S, S, C) with S a multiple of {period}, got {x.shape}")
    g = x.mean(-1)
    g = g - g.mean((1, 2), keepdims=True)
    P = (np.abs(np.fft.fft2(g)) ** 2).mean(0)
    s = P.shape[0]
    k = np.arange(period) * (s // period)
    ky, kx = np.meshgrid(k, k, indexing="ij")
    ky, kx = ky.ravel()[1:], kx.ravel()[1:]
    nb = np.stack([P[(ky + a) % s, (kx + b) % s] for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b])
    return float((P[ky, kx] / np.maximum(np.median(nb, 0), 1e-30)).max())

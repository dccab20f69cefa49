"""Run folders: building a run's task from its config, loading a trained run for sampling, and
drawing its images. A run folder holds ``config.json``, ``checkpoint.safetensors`` (latest state)
and, with the FID schedule, ``best.safetensors`` (the state at the best FID)."""
from __future__ import annotations

from pathlib import Path

import torch

from forensics.core.errors import UserError
from forensics.generators.checkpoint import load_checkpoint, restoring
from forensics.generators.tensors import resolve_device, to_uint8

CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"


def build_task(config, device: torch.device):
    """The task of a :class:`~forensics.generators.config.GanConfig`, its weights initialised from the seed."""
    gen = torch.Generator().manual_seed(int(config.seed))
    if config.gan == "stargan":
        from forensics.generators.stargan import StarGANTask

        return StarGANTask(config, device, gen)
    from forensics.generators.unconditional import UnconditionalTask

    return UnconditionalTask(config, device, gen)


def load_run(run_dir, device: str = "auto", checkpoint: str = "auto"):
    """``(task, config)`` of a trained run, for sampling: with ``checkpoint`` ``"auto"`` the weights of
    the best-FID checkpoint (``best.safetensors``, written by the FID schedule) when the run has one,
    else the latest; ``"best"`` or ``"latest"`` ask for one. ``task.checkpoint`` names the file read."""
    from forensics.generators.config import GanConfig

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / CHECKPOINT).is_file():
        raise UserError(f"{run_dir}: not a finished or checkpointed training run (needs config.json and {CHECKPOINT})")
    if checkpoint not in ("auto", "best", "latest"):
        raise ValueError(f"unknown checkpoint {checkpoint!r}: auto, best or latest")
    if checkpoint == "best" and not (run_dir / BEST).is_file():
        raise FileNotFoundError(f"{run_dir}: no best-FID checkpoint ({BEST}); the run had no FID schedule")
    name = BEST if checkpoint == "best" or (checkpoint == "auto" and (run_dir / BEST).is_file()) else CHECKPOINT
    config = GanConfig.load(run_dir / "config.json", complete=True)  # a record: every setting, none defaulted
    dev = resolve_device(device)
    task = build_task(config, dev)
    s = load_checkpoint(run_dir / name)
    with restoring(run_dir / name):
        for k, m in task.modules.items():
            m.load_state_dict(s["modules"][k])
        task.step = int(s["step"])
    task.checkpoint = name
    return task, config


def sample_images(task, n: int, seed: int = 0, batch: int = 256):
    """``n`` generated uint8 images of an unconditional run, in batches; latent codes
    from ``seed`` (the same seed gives the same images)."""
    gen = torch.Generator().manual_seed(seed)
    for i in range(0, n, batch):
        z = torch.randn(min(batch, n - i), task.z_dim, generator=gen)
        yield to_uint8(task.sample(z))


def is_run(path: Path) -> bool:
    """A GAN training run folder: a ``config.json`` naming a ``gan`` beside a checkpoint (a folder
    written by ``forensics generate`` has the config but no checkpoint: it is a folder of images)."""
    import json

    c = Path(path) / "config.json"
    if not c.is_file() or not (Path(path) / CHECKPOINT).is_file():
        return False
    try:
        d = json.loads(c.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # a run's config.json holds its GanConfig under "config" (GanConfig.load reads either shape)
    return isinstance(d, dict) and "gan" in (d["config"] if isinstance(d.get("config"), dict) else d)

"""Sampling trained runs: latent samples of unconditional GANs, StarGAN translations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from forensics.core.checks import MAX_SEED
from forensics.core.config import Range
from forensics.core.errors import UserError
from forensics.core.parsing import assignments
from forensics.core.progress import bar
from forensics.generators.runs import load_run, sample_images
from forensics.generators.tensors import to_uint8, to_unit
from forensics.io.files import write_config
from forensics.io.images import write_png


def _earlier_output(out: Path) -> list[Path]:
    """The files of an earlier ``generate`` output set in ``out``: its ``config.json`` and images (every
    PNG below ``out`` when the config says ``generate`` wrote them, else only numbered PNGs, which an
    interrupted run leaves without a config). ``ValueError`` when ``out`` holds images or a config that
    no ``generate`` wrote: replacing them would lose someone's files, keeping them would mix two runs."""
    from forensics.core.checks import read_json_object

    cfg = out / "config.json"
    ours = cfg.is_file()
    if ours:
        try:
            command = read_json_object(cfg, "config").get("command")
            why = f"it records command {command!r}" if command else "it records no command"
        except ValueError:
            command, why = None, "it is not readable JSON"
        if command != "generate":
            raise ValueError(f"{out}: its config.json was not written by forensics generate ({why}); "
                             "not replacing the folder")
    pngs = [f for f in out.rglob("*") if f.suffix.lower() == ".png" and (f.is_file() or f.is_symlink())]
    foreign = [f for f in pngs if not ours and not (f.parent == out and f.stem.isdigit())]
    if foreign:
        raise ValueError(f"{out}: holds images that forensics generate did not write "
                         f"({', '.join(str(f.relative_to(out)) for f in foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}); not replacing them")
    return ([cfg] if ours else []) + pngs


def prepare_output(out, overwrite: bool = False) -> Path:
    """``out`` as an empty output folder: a folder holding files is refused unless ``overwrite``, which
    removes the earlier output set there first (:func:`_earlier_output`: its config and every image it
    wrote; other files, e.g. notes, stay), so the folder never mixes two runs' images."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder")
    old = sorted(out.iterdir()) if out.is_dir() else []
    if old and not overwrite:
        raise FileExistsError(f"{out}: folder is not empty ({len(old)} entries); choose an empty folder, "
                              f"or allow overwriting")
    if old:
        for f in _earlier_output(out):  # all checked before anything is removed
            f.unlink()
        for d in sorted((d for d in out.rglob("*") if d.is_dir() and not d.is_symlink()), reverse=True):
            if not any(d.iterdir()):  # folders the earlier images were in (a translation keeps sub-folders)
                d.rmdir()
    return out


def generate(run_dir, n: int, out, seed: int = 0, device: str = "auto", progress: bool = True,
             overwrite: bool = False) -> dict:
    """Write ``n`` lossless PNGs ``000000.png ...`` of an unconditional run into ``out`` (an empty or new
    folder; ``overwrite`` replaces earlier samples there), from its best-FID checkpoint when it has one
    (recorded in ``out/config.json``)."""
    n = Range(1).check("n", n, int)
    seed = Range(0, MAX_SEED).check("seed", seed, int)
    task, config = load_run(run_dir, device)
    if config.gan == "stargan":
        raise ValueError(f"{run_dir} is a StarGAN run: it translates input images to target attributes, it does not sample")
    out = prepare_output(out, overwrite)
    k = 0
    with bar(total=n, desc="generate", enabled=progress) as pb:
        for imgs in sample_images(task, n, seed):
            for im in imgs:
                write_png(out / f"{k:06d}.png", im)
                k += 1
            pb.update(len(imgs))
    write_config(out, {"command": "generate", "run": str(run_dir), "n": n, "seed": seed, "step": task.step,
                       "checkpoint": task.checkpoint, "gan": config.gan, "last_layer": config.last_layer,
                       "encoding": "PNG, round((x + 1) * 127.5) clipped to 0..255"})
    return {"n": k, "out": str(out), "checkpoint": task.checkpoint, "step": task.step}


def parse_assignments(text: str, names: list[str]) -> dict[str, int]:
    """``"Blond_Hair=1,Male=0"`` -> ``{"Blond_Hair": 1, "Male": 0}``, checked against ``names``."""
    out = assignments(text, "attribute settings") or {}
    for k, v in out.items():
        if type(v) is not int or v not in (0, 1):
            raise UserError(f"bad attribute setting {k}={v}: use NAME=0 or NAME=1")
        if k not in names:
            raise UserError(f"unknown attribute {k!r}; this run knows {', '.join(names)}")
    return out


def translate_folder(run_dir, input_dir, out, assignments: str, attributes: str | None = None,
                     device: str = "auto", progress: bool = True, overwrite: bool = False) -> dict:
    """StarGAN: translate every image under ``input_dir`` to the attributes in
    ``assignments``; attributes not named keep the image's own value when ``attributes``
    (a table) lists it, else 0. Writes PNGs with the input's relative names into ``out`` (an empty or
    new folder; ``overwrite`` replaces an earlier output set there, as :func:`generate` does)."""
    from forensics.io.images import Policy, iter_loaded, output_name, scan_nonempty, warn_skipped
    from forensics.io.sources import read_attributes

    task, config = load_run(run_dir, device)
    if config.gan != "stargan":
        raise ValueError(f"{run_dir} is not a StarGAN run: it samples images, it does not translate them")
    names = list(config.attrs)
    setting = parse_assignments(assignments, names)
    table, tnames = read_attributes(attributes) if attributes else ({}, [])
    root = Path(input_dir)
    files = scan_nonempty(root)
    pol = Policy("resize", int(config.size), "area")
    out = prepare_output(out, overwrite)
    done, failed = 0, []
    with bar(total=len(files), desc="translate", enabled=progress) as pb:
        for r in iter_loaded(files, pol):
            pb.update(1)
            if not r.ok:
                failed.append({"path": str(r.path), "error": r.error})
                warn_skipped(r)
                continue
            own = table.get(r.path.name)
            c = np.array([setting.get(a, own[tnames.index(a)] if own is not None and a in tnames else 0)
                          for a in names], dtype=np.float32)
            x = to_unit(torch.from_numpy(r.image[None]))
            y = to_uint8(task.translate(x, torch.from_numpy(c[None])))[0]
            write_png(out / output_name(r.path, root).with_suffix(".png"), y)
            done += 1
    write_config(out, {"command": "generate", "run": str(run_dir), "input": str(input_dir), "set": setting,
                       "policy": str(pol), "step": task.step, "failed": failed})
    return {"n": done, "failed": len(failed), "out": str(out)}

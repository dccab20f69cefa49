"""Autoencoder sources: PSNR on held-out real patches after a fixed CPU time budget; decoder spectra.

    python benchmarks/bench_autoencoder.py [--budget 900] [--factors 4,8] [--size 64] [--kind ae-kl]
                                          [--spec N.1.3] [--params ch=32,z_ch=4] [--eval-every 60]
                                          [--lr-decay cosine]
    python benchmarks/bench_autoencoder.py --steps 600 --eval-steps 100   # a step budget instead (load-free)
    python benchmarks/bench_autoencoder.py --part spectra [--size 64]

1. ``train`` (the issue's target: KL, factor 4, 64 px, PSNR >= 28 dB on held-out real patches after
   <= 15 min of CPU training; factor 8 reported): the built-in photographs are split by photograph, every
   fourth one (astronaut, coins, rocket, flower) held out. The training patches are cut from the other
   nine with stride ``size / 2`` (written to a temporary .npz: the run reads it as any data source), the
   held-out ones without overlap. The run is the library's (``SourceConfig.tiny``, the GAN ``Trainer``)
   stepped until ``--budget`` seconds of training; every ``--eval-every`` seconds (not counted) the
   reconstructions of the held-out patches are scored: mean PSNR over patches, uint8 images, in dB. On a
   shared CPU the seconds depend on the other jobs: ``--steps`` (evaluating every ``--eval-steps``) gives a
   budget of steps instead, whose PSNR does not, and the log's ``s/step`` says what a step cost.
2. ``spectra``: the strongest periodic peak (``grid_peak_ratio`` at period ``factor``) of every decoder
   spec's output at a fixed random init (decoded N(0, 1) latents) and of the real held-out patches.

The CPU may be shared: the times are wall clock, and the log says the load average.
"""
import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from forensics.core.parsing import assignments  # noqa: E402
from forensics.generators.layers import DECODER_SETUPS  # noqa: E402
from forensics.generators.source_config import SourceConfig  # noqa: E402
from forensics.generators.sources import _build_task, grid_peak_ratio  # noqa: E402
from forensics.generators.tensors import to_uint8, to_unit  # noqa: E402
from forensics.generators.trainer import Trainer  # noqa: E402
from forensics.io.sources import builtin_patches, load_source  # noqa: E402
from forensics.metrics.similarity import psnr  # noqa: E402


def split(size: int, tmp: Path):
    """(training .npz path, held-out uint8 patches): held out by photograph, every fourth."""
    train = builtin_patches(size, stride=size // 2)
    test = builtin_patches(size)
    photos = sorted({n.split("@")[0] for n in test.names}, key=[n.split("@")[0] for n in test.names].index)
    held = set(photos[::4])
    keep = np.array([n.split("@")[0] not in held for n in train.names])
    hold = np.array([n.split("@")[0] in held for n in test.names])
    path = tmp / f"train{size}.npz"
    np.savez(path, images=train.images[keep])
    return path, test.images[hold], sorted(held)


def heldout_psnr(task, images: np.ndarray, batch: int = 64) -> tuple[float, np.ndarray]:
    rec = np.concatenate([to_uint8(task.reconstruct(to_unit(torch.from_numpy(images[i:i + batch]))))
                          for i in range(0, len(images), batch)])
    return float(np.mean(psnr(images, rec))), rec


def train_part(a) -> None:
    tmp = Path(tempfile.mkdtemp())
    data, held, names = split(a.size, tmp)
    n_train = len(np.load(data)["images"])
    print(f"data: {n_train} training patches (stride {a.size // 2}) from 9 photos; {len(held)} held-out patches "
          f"from {', '.join(names)}; load average {os.getloadavg()[0]:.1f}, torch threads {torch.get_num_threads()}")
    for f in a.factors:
        cfg = SourceConfig.tiny(a.kind, assignments(a.params, "--params"), factor=f, last_layer=a.spec, size=a.size,
                                data=str(data), seed=0, sample_every=10 ** 9, checkpoint_every=10 ** 9)
        ds = load_source(cfg.data, cfg.size)
        dev = torch.device("cpu")
        task = _build_task(cfg, dev)
        tr = Trainer(task, ds, tmp / f"run{f}", cfg, dev, progress=False)
        task.init_fixed(tr.next_batch)
        print(f"\n{cfg.label} {a.size} px, params {cfg.params}")
        print(f"{'train s':>8} {'steps':>6} {'s/step':>6} {'held-out PSNR dB':>17} {'load':>5}")
        opt = task.optimizers["AE"]
        base_lr = opt.param_groups[0]["lr"]
        spent, next_eval = 0.0, 0.0
        while True:
            done = tr.step >= a.steps if a.steps else spent >= a.budget
            due = tr.step % a.eval_steps == 0 if a.steps else spent >= next_eval
            if due or done:
                p, rec = heldout_psnr(task, held)
                print(f"{spent:8.0f} {tr.step:6d} {spent / max(tr.step, 1):6.2f} {p:17.2f} "
                      f"{os.getloadavg()[0]:5.1f}", flush=True)
                next_eval += a.eval_every
                if done:
                    break
            if a.lr_decay == "cosine":  # over the budget's fraction spent (steps or seconds)
                done_frac = tr.step / a.steps if a.steps else min(spent / a.budget, 1.0)
                for g in opt.param_groups:
                    g["lr"] = base_lr * 0.5 * (1.0 + math.cos(math.pi * done_frac))
            t = time.perf_counter()
            tr.one_step()
            spent += time.perf_counter() - t
        print(f"grid peak ratio at period {f}: reconstructions {grid_peak_ratio(rec, f):.2f}, "
              f"real {grid_peak_ratio(held, f):.2f}")


def spectra_part(a) -> None:
    held = builtin_patches(a.size).images[:64]
    for f in a.factors:
        z = torch.randn(64, 4, a.size // f, a.size // f, generator=torch.Generator().manual_seed(0))
        row = []
        for spec in DECODER_SETUPS:
            cfg = SourceConfig.tiny(a.kind, factor=f, last_layer=spec, size=a.size)
            task = _build_task(cfg, torch.device("cpu"))
            with torch.no_grad():
                x = task.model.decoder(z).permute(0, 2, 3, 1).numpy()
            row.append(f"{spec} {grid_peak_ratio(x, f):.1f}")
        print(f"factor {f}, {a.size} px, at init: " + ", ".join(row) + f"; real patches {grid_peak_ratio(held, f):.1f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", default="train", choices=["train", "spectra"])
    p.add_argument("--budget", type=float, default=900.0, help="training seconds per factor (default 900)")
    p.add_argument("--eval-every", type=float, default=60.0, help="seconds of training between evaluations")
    p.add_argument("--steps", type=int, default=None, help="a budget of training steps instead of seconds")
    p.add_argument("--eval-steps", type=int, default=100, help="with --steps: steps between evaluations")
    p.add_argument("--factors", default="4,8")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--kind", default="ae-kl", choices=["ae-kl", "ae-vq"])
    p.add_argument("--spec", default="N.1.3")
    p.add_argument("--lr-decay", default="none", choices=["none", "cosine"],
                   help="cosine: the learning rate decays to 0 over the budget (set in this loop, not in the preset)")
    p.add_argument("--params", default=None, metavar="K=V,...", help="hyper-parameter changes, e.g. ch=16,z_ch=8")
    a = p.parse_args()
    a.factors = [int(x) for x in a.factors.split(",")]
    (train_part if a.part == "train" else spectra_part)(a)


if __name__ == "__main__":
    main()

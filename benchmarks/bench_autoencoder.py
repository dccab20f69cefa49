"""Autoencoder sources: PSNR on held-out real patches after a fixed CPU time budget; decoder spectra.

    python benchmarks/bench_autoencoder.py [--budget 900] [--factors 4,8] [--size 64] [--kind ae-kl]
                                          [--spec N.1.3] [--params ch=32,z_ch=4] [--eval-every 60]
                                          [--lr-decay cosine]
    python benchmarks/bench_autoencoder.py --steps 600 --eval-steps 100   # a step budget instead (load-free)
    python benchmarks/bench_autoencoder.py --part spectra [--size 64]
    python benchmarks/bench_autoencoder.py --part trained [--size 32] [--steps 750] [--factors 4,8]

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

3. ``trained``: every decoder spec trained (``--steps``, default 750, the study's; ``--size``, default 32) on the
   training split, then its reconstructions of the held-out patches measured against those patches: PSNR, the grid
   peak ratio at period ``factor`` and the high-frequency gap, the mean difference in dB of the azimuthal log
   profiles over the top quarter of frequencies (negative: the reconstructions lack high frequencies, the drop that
   the paper predicts for nearest and bilinear layers; a transposed layer's trace turns it up). With ``--ldm`` also
   ``ldm:N.1.3`` samples (its first stage ``ae-kl:N.1.3`` trained for ``--steps``), to tell the decoder's peaks from
   the latent diffusion model's.

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
from forensics.generators.sources import _build_task, grid_peak_ratio, make_source  # noqa: E402
from forensics.generators.tensors import to_uint8, to_unit  # noqa: E402
from forensics.generators.trainer import Trainer  # noqa: E402
from forensics.io.sources import builtin_patches, load_source  # noqa: E402
from forensics.metrics.similarity import psnr  # noqa: E402
from forensics.spectral.spectrum import high_frequency_gap  # noqa: E402


#: training photographs beside the core set's: builtin_patches flags
PHOTOS = {"core": {}, "wide": {"extra": True}, "all": {"extra": True, "wild": True}}


def split(size: int, tmp: Path, photos: str = "core", stride: int | None = None):
    """(training .npz path, held-out uint8 patches, held-out names): every fourth of the core photographs held
    out; training patches (step ``stride``, default ``size / 2``) from the other photographs of ``photos``."""
    train = builtin_patches(size, stride=stride or size // 2, **PHOTOS[photos])
    test = builtin_patches(size)
    names = [n.split("@")[0] for n in test.names]
    held = set(sorted(set(names), key=names.index)[::4])
    keep = np.array([n.split("@")[0] not in held for n in train.names])
    hold = np.array([n in held for n in names])
    path = tmp / f"train{size}.npz"
    np.savez(path, images=train.images[keep])
    return path, test.images[hold], sorted(held)


def heldout_psnr(task, images: np.ndarray, batch: int = 64) -> tuple[float, np.ndarray]:
    rec = np.concatenate([to_uint8(task.reconstruct(to_unit(torch.from_numpy(images[i:i + batch]))))
                          for i in range(0, len(images), batch)])
    return float(np.mean(psnr(images, rec))), rec


def train_part(a) -> None:
    tmp = Path(tempfile.mkdtemp())
    data, held, names = split(a.size, tmp, a.train_photos, a.train_stride)
    n_train = len(np.load(data)["images"])
    print(f"data: {n_train} training patches (stride {a.train_stride or a.size // 2}) from the {a.train_photos} "
          f"photos but the held-out ones; {len(held)} held-out patches "
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


def trained_part(a) -> None:
    tmp = Path(tempfile.mkdtemp())
    data, held, _ = split(a.size, tmp, a.train_photos, a.train_stride)
    steps = a.steps or 750
    print(f"{len(held)} held-out {a.size}-px patches; {steps} steps per source; high-frequency gap over the top "
          f"quarter of frequencies; load average {os.getloadavg()[0]:.1f}")
    for f in a.factors:
        base = SourceConfig.tiny(a.kind, assignments(a.params, "--params"), size=a.size, data=str(data), seed=0,
                                 steps=steps, sample_every=10 ** 9, checkpoint_every=10 ** 9)
        print(f"\nfactor {f}: real patches' grid peak ratio {grid_peak_ratio(held, f):.2f}")
        print(f"{'source':>18} {'train s':>7} {'PSNR dB':>7} {'peak':>6} {'HF gap dB':>9}")
        specs = [f"{a.kind}-f{f}:{s}" for s in DECODER_SETUPS] + ([f"ldm-f{f}:N.1.3"] if a.ldm else [])
        for spec in specs:
            t = time.perf_counter()
            changes = {"first_stage": {"steps": steps}} if spec.startswith("ldm") else {}
            src = make_source(spec, base, **changes)
            src.train(tmp / spec.replace(":", "_"), progress=False)
            t = time.perf_counter() - t
            if spec.startswith("ldm"):
                x, p = src.sample(len(held), seed=1), float("nan")
            else:
                x = src.reconstruct(held)
                p = float(np.mean(psnr(held, x)))
            peak, gap = grid_peak_ratio(x, f), high_frequency_gap(x, held)
            print(f"{spec:>18} {t:7.0f} {p:7.2f} {peak:6.2f} {gap:9.2f}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", default="train", choices=["train", "spectra", "trained"])
    p.add_argument("--budget", type=float, default=900.0, help="training seconds per factor (default 900)")
    p.add_argument("--eval-every", type=float, default=60.0, help="seconds of training between evaluations")
    p.add_argument("--steps", type=int, default=None, help="a budget of training steps instead of seconds")
    p.add_argument("--eval-steps", type=int, default=100, help="with --steps: steps between evaluations")
    p.add_argument("--factors", default="4,8")
    p.add_argument("--size", type=int, default=None, help="patch size (default 64; trained: 32)")
    p.add_argument("--kind", default="ae-kl", choices=["ae-kl", "ae-vq"])
    p.add_argument("--spec", default="N.1.3")
    p.add_argument("--lr-decay", default="none", choices=["none", "cosine"],
                   help="cosine: the learning rate decays to 0 over the budget (set in this loop, not in the preset)")
    p.add_argument("--train-photos", default="core", choices=list(PHOTOS),
                   help="train on the core photographs (default), + the extra ones (wide), + the wild ones (all)")
    p.add_argument("--train-stride", type=int, default=None, help="step of the training patches (default size/2)")
    p.add_argument("--ldm", action="store_true", help="trained: also ldm-fF:N.1.3 samples")
    p.add_argument("--params", default=None, metavar="K=V,...", help="hyper-parameter changes, e.g. ch=16,z_ch=8")
    a = p.parse_args()
    a.factors = [int(x) for x in a.factors.split(",")]
    a.size = a.size or (32 if a.part == "trained" else 64)
    {"train": train_part, "spectra": spectra_part, "trained": trained_part}[a.part](a)


if __name__ == "__main__":
    main()

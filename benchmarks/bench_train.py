"""GAN training speed on this machine.

    python benchmarks/bench_train.py [--quick] [--device cpu|cuda]

1. Trainer overhead: one step of our trainer (Trainer.one_step: batch sampling, the
   task's critic and generator updates, loss logging) vs a bare PyTorch loop with the
   same networks, optimisers, losses and batch. Median of timed steps after warm-up,
   the two interleaved in rounds. Target: ratio <= 1.1.
2. Steps per second of every GAN and preset at 32, 64 and 128 px (synthetic data, so
   decoding is not measured). Each configuration runs until 3 timed steps or 20 s.
3. Steps per second of every objective (infomax, ssgan, ssgan-ms, dag) on the DCGAN backbone.
4. Steps per second of quantized (w4a4, w2a2) vs float networks.

    python benchmarks/bench_train.py --part objectives,quant --sizes 32,64 --budget 10
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from forensics.generators.config import GanConfig  # noqa: E402
from forensics.generators.runs import build_task
from forensics.generators.tensors import to_unit
from forensics.generators.trainer import Trainer  # noqa: E402
from forensics.io.sources import ImageSet  # noqa: E402


def make_trainer(gan, preset_name, size, device, tmp, n=512, objective=None, quant="none"):
    cfg = GanConfig.from_preset(preset_name, gan, size=size, seed=0, objective=objective, quant=quant,
                                attrs=("a", "b", "c") if gan == "stargan" else None).resolved()
    params = cfg.params
    rng = np.random.default_rng(0)
    data = ImageSet(rng.integers(0, 256, (max(n, params["batch"] * 6), size, size, 3), dtype=np.uint8), [], {},
                    rng.integers(0, 2, (max(n, params["batch"] * 6), 3)) if gan == "stargan" else None)
    task = build_task(cfg, device)
    tr = Trainer(task, data, tmp, cfg, device, progress=False)
    task.init_fixed(tr.next_batch)
    return tr


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def overhead(device, size=32, preset_name="tiny", rounds=5, steps=20, objective=None):
    """Median step time of our trainer vs a bare loop calling the same objective's losses."""
    with tempfile.TemporaryDirectory() as tmp:
        tr = make_trainer("dcgan", preset_name, size, device, tmp, objective=objective)
        task = tr.task
        G, D, obj = task.G, task.D, task.objective
        opt_g, opt_d = task.optimizers["G"], task.optimizers["D"]
        data = tr.images
        B, zd = task.batch, task.z_dim

        def bare_step():
            for _ in range(obj.n_critic):
                ix = torch.randint(0, len(data), (B,), device=device)
                real = to_unit(data[ix])
                with torch.no_grad():
                    fake = G(torch.randn(B, zd, device=device))
                loss_d, _ = obj.d_loss(D, real, fake)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            D.requires_grad_(False)
            loss_g, _ = obj.g_loss(D, G(torch.randn(B, zd, device=device)), real)
            D.requires_grad_(True)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

        ours, bare = [], []
        for fn in (tr.one_step, bare_step):  # warm-up
            for _ in range(3):
                fn()
        for _ in range(rounds):
            for fn, acc in ((tr.one_step, ours), (bare_step, bare)):
                for _ in range(steps):
                    sync(device)
                    t0 = time.perf_counter()
                    fn()
                    sync(device)
                    acc.append(time.perf_counter() - t0)
        return float(np.median(ours)), float(np.median(bare))


def speed(gan, preset_name, size, device, budget=20.0, steps=3, objective=None, quant="none"):
    with tempfile.TemporaryDirectory() as tmp:
        tr = make_trainer(gan, preset_name, size, device, tmp, objective=objective, quant=quant)
        tr.one_step()  # warm-up
        sync(device)
        t0 = time.perf_counter()
        k = 0
        while k < steps or (time.perf_counter() - t0 < budget and k < 200):
            tr.one_step()
            k += 1
            if time.perf_counter() - t0 > budget:
                break
        sync(device)
        return k / (time.perf_counter() - t0)


OBJECTIVES = ("infomax", "ssgan", "ssgan-ms", "dag")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="only the overhead and the 32 px rows")
    ap.add_argument("--part", default="overhead,gans,objectives,quant",
                    help="comma-separated parts: overhead, gans, objectives, quant")
    ap.add_argument("--sizes", default="32,64,128", help="image sizes of the steps/s tables")
    ap.add_argument("--budget", type=float, default=20.0)
    a = ap.parse_args()
    parts = set(a.part.split(","))
    sizes = (32,) if a.quick else tuple(int(s) for s in a.sizes.split(","))
    device = torch.device(a.device)
    torch.set_flush_denormal(True)  # as Trainer.train does, for the trainer and the bare loop alike
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    head = " ".join(f"{s:>8d}px" for s in sizes)
    if "overhead" in parts:
        print("trainer step vs bare loop with the same losses [DCGAN backbone, tiny, 32 px, batch 64, median]:")
        for obj in (None,) + OBJECTIVES:
            ours, bare = overhead(device, objective=obj, rounds=3 if a.quick else 5, steps=10 if a.quick else 20)
            print(f"  {obj or 'dcgan':9s} {1e3 * ours:8.2f} ms vs {1e3 * bare:8.2f} ms: ratio {ours / bare:.3f}"
                  " (target <= 1.1)", flush=True)
    if "gans" in parts:
        print("steps/s (one step = the critic steps + one generator step, batch of the preset):")
        print(f"{'gan':9s} {'preset':6s} " + head)
        for gan in ("dcgan", "lsgan", "wgan-gp", "stargan"):
            for pn in ("tiny", "paper"):
                row = [f"{speed(gan, pn, size, device, a.budget):10.2f}" for size in sizes]
                print(f"{gan:9s} {pn:6s} " + " ".join(row), flush=True)
    if "objectives" in parts:
        print("steps/s per objective (DCGAN backbone, tiny preset, batch 64; dag: rotation policy):")
        print(f"{'objective':9s} " + head)
        for obj in (None,) + OBJECTIVES:
            row = [f"{speed('dcgan', 'tiny', size, device, a.budget, objective=obj):10.2f}" for size in sizes]
            print(f"{obj or 'dcgan':9s} " + " ".join(row), flush=True)
    if "quant" in parts:
        print("steps/s quantized vs float (DCGAN, tiny preset, batch 64):")
        print(f"{'quant':9s} " + head)
        for q in ("none", "w4a4", "w2a2"):
            row = [f"{speed('dcgan', 'tiny', size, device, a.budget, quant=q):10.2f}" for size in sizes]
            print(f"{q:9s} " + " ".join(row), flush=True)


if __name__ == "__main__":
    main()

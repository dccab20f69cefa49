"""Batched spectrum + features vs a straightforward per-image implementation.

    python benchmarks/bench_spectrum.py [--n 2000] [--size 128]

Both compute, for every image, Dzanic et al.'s faithful features [b, y_i, y_f] and the
azimuthal log-magnitude profile. The per-image side is forensics/spectral/reference.py: one image
at a time, one boolean mask per radius bin, SciPy's Nelder–Mead per image, as the
published scripts do (single-threaded), timed once over all images. The batched side is
timed on one thread and on all cores, median of 3 runs each. Same machine, same process,
same images. Target: ratio >= 20.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import real_crops  # noqa: E402

from forensics.spectral import reference, spectrum  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    a = ap.parse_args()
    imgs = real_crops(a.n, a.size)
    spectrum.dzanic_faithful(imgs[:8])  # warm caches (geometry, FFT plans)
    spectrum.azimuthal_profile(imgs[:8])

    def batched(k=3):
        times = []
        for _ in range(k):
            t0 = time.perf_counter()
            f, p = spectrum.dzanic_faithful(imgs), spectrum.azimuthal_profile(imgs)
            times.append(time.perf_counter() - t0)
        return float(np.median(times)), f, p

    os.environ["FORENSICS_THREADS"] = "1"
    t_one, _, _ = batched()
    del os.environ["FORENSICS_THREADS"]
    t_batched, f_b, p_b = batched()
    t0 = time.perf_counter()
    f_r = np.stack([reference.dzanic_faithful_one(im) for im in imgs])
    p_r = np.stack([reference.azimuthal_profile_one(im) for im in imgs])
    t_ref = time.perf_counter() - t0
    agree_b = np.abs(f_b[:, 0] - f_r[:, 0]).max()
    agree_p = np.abs(p_b - p_r).max()
    print(f"images: {a.n} x {a.size}x{a.size} RGB, cores: {os.cpu_count()}")
    print(f"per-image reference: {t_ref:8.2f} s  ({1e3 * t_ref / a.n:.2f} ms/image)")
    print(f"batched, 1 thread  : {t_one:8.2f} s  ({1e3 * t_one / a.n:.3f} ms/image)  speed-up {t_ref / t_one:.1f} x")
    print(f"batched, {spectrum.threads()} threads : {t_batched:8.2f} s  ({1e3 * t_batched / a.n:.3f} ms/image)"
          f"  speed-up {t_ref / t_batched:.1f} x   (target >= 20 x)")
    print(f"agreement: max |b diff| {agree_b:.2e}, max profile diff {agree_p:.2e} dB")


if __name__ == "__main__":
    main()

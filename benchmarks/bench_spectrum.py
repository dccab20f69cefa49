"""Spectral features against the bare FFT floor, and the batched code against a per-image reference.

    python benchmarks/bench_spectrum.py [--n 2000] [--size 128] [--repeat 5] [--no-reference]

Part 1, the FFT floor. The inputs are ``n`` seeded ``size x size`` greyscale patches of the
built-in photographs (BT.601 grey rounded to 8 bits, held as float32 in memory). The floor is the
bare transform every spectral feature starts from: ``rfft2`` of the float32 patches, then ``|F|``,
then ``log``, in chunks of 16 patches (the features' chunk size at 128 px), nothing else; timed with
``scipy.fft.rfft2``, ``numpy.fft.rfft2`` (at its fastest scaling) and NumPy's row ``rfft`` then
column ``fft`` (what the features use), the fastest of them is the floor. Each
feature set of :data:`forensics.spectral.spectrum.FEATURE_SETS` (and the azimuthal log profile of
``forensics spectrum``'s ``profiles.csv``) is timed on the same patches, its ratio to the floor
printed beside it, on one thread and on all cores (the floor on all cores runs its parts on a
pool of as many threads). Every figure is the best of ``--repeat`` runs over all patches, the
runs of all measurements interleaved, so a burst of load from other jobs does not land on one
of them only. One-thread figures are the CPU time of the thread that runs them (what the work
costs; on a machine shared with other jobs the wall time also holds the time the thread waited
for a core, printed beside it); all-cores figures are wall times. Target: every feature set
<= 2.0 x the floor on one thread. The built-in default model of ``forensics detect``
(robust-spectral) takes its own spectra in forensics/detectors/robust.py (16 tiles of 32 px per
patch); its features are timed on one thread too and printed after the table.

Part 2 (skip with ``--no-reference``): for every image, Dzanic et al.'s features [b, y_i, y_f]
and the azimuthal log-magnitude profile of the RGB crops, batched, against
forensics/spectral/reference.py: one image at a time, one boolean mask per radius bin, SciPy's
Nelder–Mead per image, as the published scripts do (single-threaded), timed once. Target: >= 20 x.
"""
import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.fft

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import real_crops

from forensics.detection.scoring import CHUNK
from forensics.detectors.robust import robust_features
from forensics.detectors.skmodel import tiles
from forensics.spectral import reference, spectrum

FLOOR_CHUNK = 16
ROBUST = "robust-spectral"


def _floor(transform):
    """``transform`` + |F| + log of each chunk of the patches: the bare work of a spectrum."""
    def run(gray):
        for i in range(0, len(gray), FLOOR_CHUNK):
            m = np.abs(transform(gray[i:i + FLOOR_CHUNK]))
            with np.errstate(divide="ignore"):  # a coefficient can be exactly 0
                np.log(m, out=m)
    return run


def _rows_then_columns(x):
    f = np.fft.rfft(x, axis=-1, norm="ortho")
    return np.fft.fft(f, axis=-2, norm="ortho", out=f)


#: the float32 rfft2s the floor is the fastest of, each on one thread
FLOORS = {
    "scipy.fft.rfft2": _floor(lambda x: scipy.fft.rfft2(x, workers=1)),
    # norm="forward": NumPy 2.4's unscaled float32 rfft2 is 4-6x slower
    "numpy.fft.rfft2": _floor(lambda x: np.fft.rfft2(x, norm="forward")),
    "numpy rfft rows + fft columns": _floor(_rows_then_columns),
}


def robust(gray):
    """The default model's features: its 16 tiles of 32 px per patch, in the chunks of images
    ``detect`` scores at a time."""
    for i in range(0, len(gray), CHUNK):
        robust_features(tiles(list(gray[i:i + CHUNK]), 32)[0])


def on_pool(fn, k):
    """``fn`` over the patches split into ``k`` contiguous parts on a pool of ``k`` threads."""
    def run(gray):
        parts = np.array_split(gray, k)
        with ThreadPoolExecutor(k) as pool:
            list(pool.map(fn, parts))
    return run


def best_of(jobs: dict, repeat: int) -> tuple[dict, dict]:
    """Best wall time and best CPU time of the calling thread (s) of each job over ``repeat``
    interleaved rounds."""
    wall = {name: np.inf for name in jobs}
    cpu = dict(wall)
    for _ in range(repeat):
        for name, job in jobs.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            job()
            cpu[name] = min(cpu[name], time.thread_time() - c0)
            wall[name] = min(wall[name], time.perf_counter() - t0)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-reference", action="store_true", help="skip part 2 (the per-image reference)")
    a = ap.parse_args()
    imgs = real_crops(a.n, a.size)
    gray = np.rint(spectrum.to_gray(imgs)).astype(np.float32)  # 8-bit greyscale patches, as float32
    cores = spectrum.threads()
    names = list(spectrum.FEATURE_SETS) + ["profile"]

    def feature(name):
        if name == "profile":
            return lambda g: spectrum.azimuthal_profile(g)
        return lambda g: spectrum.features(g, name)

    for name in names:  # warm caches (geometry, FFT plans)
        feature(name)(gray[:8])
    for fn in FLOORS.values():
        fn(gray[:8])

    def one_thread(fn):
        def run():
            with spectrum.limit_threads(1):
                fn(gray)
        return run

    def all_threads(fn):
        def run():
            fn(gray)
        return run

    jobs = {f"floor {k}": one_thread(fn) for k, fn in FLOORS.items()}
    jobs.update({name: one_thread(feature(name)) for name in names})
    # the built-in default model (robust-spectral): its own spectra of 16 tiles of 32 px per patch
    jobs[ROBUST] = one_thread(robust)
    one = set(jobs)
    jobs.update({f"floor {k}, all cores": all_threads(on_pool(fn, cores)) for k, fn in FLOORS.items()})
    jobs.update({f"{name}, all cores": all_threads(feature(name)) for name in names})
    wall, cpu = best_of(jobs, a.repeat)
    # one thread: the CPU time of the thread that runs it (on a machine shared with other jobs the
    # wall time also counts the time the thread waited for a core); all cores: wall time
    ms = {k: 1e3 * (cpu[k] if k in one else wall[k]) / a.n for k in jobs}
    ms_wall = {k: 1e3 * wall[k] / a.n for k in jobs}
    floor1 = min(ms[f"floor {k}"] for k in FLOORS)
    floor1_wall = min(ms_wall[f"floor {k}"] for k in FLOORS)
    floork = min(ms[f"floor {k}, all cores"] for k in FLOORS)

    print(f"patches: {a.n} x {a.size}x{a.size} 8-bit grey as float32; cores: {os.cpu_count()}, "
          f"all-cores runs on {cores} threads; best of {a.repeat} interleaved runs")
    print(f"FFT floor = float32 rfft2 + |F| + log, chunks of {FLOOR_CHUNK}, the fastest of (ms/image):")
    for k in FLOORS:
        print(f"  {k:<30} 1 thread {ms[f'floor {k}']:.4f} (wall {ms_wall[f'floor {k}']:.4f}), "
              f"{cores} threads {ms[f'floor {k}, all cores']:.4f}")
    print(f"  floor: {floor1:.4f} on 1 thread (wall {floor1_wall:.4f}), {floork:.4f} on {cores} threads")
    print(f"(one thread: CPU time of the thread; its wall time beside it. {cores} threads: wall time)")
    print(f"{'features':<10} {'1 thread ms/image':>18} {'x floor':>8} {'(wall, x floor)':>16}   "
          f"{f'{cores} threads ms/image':>19} {'x floor':>8}")
    worst = 0.0
    for name in names:
        r1 = ms[name] / floor1
        worst = max(worst, r1)
        print(f"{name:<10} {ms[name]:>18.4f} {r1:>8.2f} {ms_wall[name]:>9.4f}, {ms_wall[name] / floor1_wall:4.2f}   "
              f"{ms[name + ', all cores']:>19.4f} {ms[name + ', all cores'] / floork:>8.2f}")
    print(f"slowest feature set on one thread: {worst:.2f} x the FFT floor (target <= 2.0 x)")
    print(f"the default model's features ({ROBUST}: forensics/detectors/robust.py, 16 tiles of 32 px per "
          f"patch, chunks of {CHUNK} patches): {ms[ROBUST]:.4f} ms/image on one thread, {ms[ROBUST] / floor1:.2f} x the floor")

    if a.no_reference:
        return

    def batched():
        return spectrum.dzanic_faithful(imgs), spectrum.azimuthal_profile(imgs)

    def timed(fn):
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out

    with spectrum.limit_threads(1):
        t_one = min(timed(batched)[0] for _ in range(3))
    t_batched, (f_b, p_b) = min((timed(batched) for _ in range(3)), key=lambda r: r[0])
    t_ref, (f_r, p_r) = timed(lambda: (np.stack([reference.dzanic_faithful_one(im) for im in imgs]),
                                       np.stack([reference.azimuthal_profile_one(im) for im in imgs])))
    print(f"\ndzanic + profile of the {a.n} RGB crops, batched vs the per-image reference (best of 3):")
    print(f"per-image reference: {t_ref:8.2f} s  ({1e3 * t_ref / a.n:.2f} ms/image)")
    print(f"batched, 1 thread  : {t_one:8.2f} s  ({1e3 * t_one / a.n:.3f} ms/image)  speed-up {t_ref / t_one:.1f} x")
    print(f"batched, {cores} threads : {t_batched:8.2f} s  ({1e3 * t_batched / a.n:.3f} ms/image)"
          f"  speed-up {t_ref / t_batched:.1f} x   (target >= 20 x)")
    print(f"agreement: max |b diff| {np.abs(f_b[:, 0] - f_r[:, 0]).max():.2e}, "
          f"max profile diff {np.abs(p_b - p_r).max():.2e} dB")


if __name__ == "__main__":
    main()

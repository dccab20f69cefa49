"""Spectra per second at 128 x 128 from uint8 files: NumPy path vs the torch path
(``--device cpu`` or ``cuda``).

    python benchmarks/bench_spectrum_torch.py [--n 2000] [--size 128] [--devices numpy,cpu,cuda] [--reps 5]

Two figures per device, best of ``--reps`` (the least disturbed by other load):
- ``batch``: ring profiles (the azimuthal spectrum: grey, rfft2, |F|, ring means) of an
  in-memory ``(N, S, S, 3)`` uint8 batch -- the FFT work alone (on ``cuda`` including the
  host-to-device copy of the uint8 batch and the copy back of the profiles);
- ``files``: ``dzanic`` features of N PNG files, decoded by the toolkit's loader and
  computed chunk by chunk as ``forensics detect`` does (decoding included).
A device that is not available is reported as such and skipped.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import real_crops  # noqa: E402


def best(fn, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--devices", default="numpy,cpu,cuda")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    import torch

    from forensics.io.images import Prefetcher, map_chunks, scan
    from forensics.spectral import spectrum, spectrum_torch

    batch = real_crops(a.n, a.size)
    tmp = Path(tempfile.mkdtemp(prefix="bench_torch."))
    for i, im in enumerate(batch):
        Image.fromarray(im).save(tmp / f"{i:05d}.png", compress_level=1)
    files = scan(tmp)
    print(f"{a.n} images of {a.size}x{a.size}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"{os.cpu_count()} cores")
    for dev in a.devices.split(","):
        if dev != "numpy":
            try:
                spectrum_torch.torch_device(dev)
            except ValueError as e:
                print(f"{dev:6s} not measured: {e}")
                continue

        def profiles():
            if dev == "numpy":
                return spectrum._per_group(batch, spectrum._half_rings)
            out = [spectrum_torch.ring_profiles(batch[i:i + 512], dev) for i in range(0, len(batch), 512)]
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            return out

        def from_files():
            feats = (spectrum.single_threaded(lambda ims: spectrum.features(ims, "dzanic")) if dev == "numpy"
                     else lambda ims: spectrum_torch.features(ims, "dzanic", dev))
            n = 0
            for _, _, f in map_chunks(Prefetcher(files, None), feats, lambda r: r.ok, 256):
                n += len(f)
            assert n == a.n

        profiles()  # warm-up (plans, caches, CUDA context)
        tb = best(profiles, a.reps)
        tf = best(from_files, max(1, a.reps // 2))
        print(f"{dev:6s} batch: {a.n / tb:9.0f} spectra/s   files (decode + dzanic features): {a.n / tf:7.0f} images/s",
              flush=True)


if __name__ == "__main__":
    main()

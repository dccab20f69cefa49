"""`forensics detect` over a folder of PNGs vs a decode-only pass over the same folder.

    python benchmarks/bench_detect.py [--n 2000] [--size 128] [--model MODEL_DIR]

Measured twice, best of 3 runs each:
- whole commands: both sides are processes started the same way (interpreter start-up
  and imports included) that decode with the same loader (forensics.images, same
  threads); the decode-only pass stops after decoding;
- in-process: forensics.detect.detect() vs the same decode loop, libraries already
  imported (the steady-state cost of analysis on top of decoding).
Target: ratio <= 1.3.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import real_crops  # noqa: E402

DECODE_ONLY = ("import sys; from forensics.images import iter_loaded, scan_nonempty; "
               "n = sum(r.ok for r in iter_loaded(scan_nonempty(sys.argv[1]))); print(n)")


def best_of(cmd, k=3):
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--model", default=None)
    a = ap.parse_args()
    from forensics.report import write_png

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "imgs"
        for i, im in enumerate(real_crops(a.n, a.size, seed=1)):
            write_png(folder / f"{i:05d}.png", im)
        env_py = [sys.executable]
        detect = env_py + ["-m", "forensics", "detect", str(folder), "--out", str(Path(tmp) / "v.csv")]
        if a.model:
            detect += ["--model", a.model]
        t_dec = best_of(env_py + ["-c", DECODE_ONLY, str(folder)])
        t_det = best_of(detect)
        from forensics.detect import detect as run_detect
        from forensics.images import iter_loaded, scan_nonempty

        def timed(fn, k=3):
            fn()
            best = float("inf")
            for _ in range(k):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            return best

        i_dec = timed(lambda: sum(r.ok for r in iter_loaded(scan_nonempty(folder))))
        i_det = timed(lambda: run_detect([folder], a.model, Path(tmp) / "w.csv", progress=False))
    print(f"images: {a.n} PNG of {a.size}x{a.size}, cores: {os.cpu_count()}")
    print(f"whole commands: decode-only {t_dec:6.2f} s, forensics detect {t_det:6.2f} s, ratio {t_det / t_dec:5.2f}")
    print(f"in-process    : decode-only {i_dec:6.2f} s, detect()         {i_det:6.2f} s, ratio {i_det / i_dec:5.2f}"
          "   (target <= 1.3)")


if __name__ == "__main__":
    main()

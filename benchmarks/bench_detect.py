"""`forensics detect` over a folder of PNGs vs a decode-only pass over the same folder.

    python benchmarks/bench_detect.py [--n 2000] [--size 128] [--model MODEL_DIR] [--reps 11]

Measured two ways, the two sides of each interleaved (A B A B ...) so that a noisy
machine slows both alike; printed: the median over ``--reps`` runs and the best run of
each side (the best is the least disturbed by other load, as ``timeit`` argues):
- whole commands: both sides are processes started the same way (interpreter start-up
  and imports included) that decode with the same loader (forensics.io.images, same
  threads); the decode-only pass stops after decoding; bytecode cached as after a first
  run. CPU seconds (user + system, all threads) are printed too: they show the work
  added, whatever the machine's load;
- in-process: forensics.detection.detect.detect() vs the same decode loop, libraries already
  imported (the steady-state cost of analysis on top of decoding).
Target (issue 19): wall-time ratio <= 2 with the default model, on 128-px and on 1024-px PNGs
(``--size 1024 --n 100``).
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import real_crops

DECODE_ONLY = ("import sys; from forensics.io.images import iter_loaded, scan_nonempty; "
               "n = sum(r.ok for r in iter_loaded(scan_nonempty(sys.argv[1]))); print(n)")


# Children cache their bytecode as a user's install does after its first run (some
# environments set PYTHONDONTWRITEBYTECODE, which would make every run recompile the
# toolkit's modules: about 0.05 s more for detect, which imports more of them).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_child(cmd) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the child) of one command."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=CHILD_ENV)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def interleaved(a, b, reps: int) -> tuple[list, list]:
    """Run ``a`` and ``b`` alternately ``reps`` times each (after one warm-up of each)."""
    a(), b()
    ra, rb = [], []
    for _ in range(reps):
        ra.append(a())
        rb.append(b())
    return ra, rb


def in_process(fn) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--model", default=None)
    ap.add_argument("--reps", type=int, default=11)
    a = ap.parse_args()
    from forensics.io.images import write_png

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "imgs"
        for i, im in enumerate(real_crops(a.n, a.size, seed=1)):
            write_png(folder / f"{i:05d}.png", im)
        env_py = [sys.executable]
        detect = env_py + ["-m", "forensics", "detect", str(folder), "--out", str(Path(tmp) / "v.csv")]
        if a.model:
            detect += ["--model", a.model]
        decode_cmd = env_py + ["-c", DECODE_ONLY, str(folder)]
        w_dec, w_det = interleaved(lambda: run_child(decode_cmd), lambda: run_child(detect), a.reps)
        from forensics.detection.detect import detect as run_detect
        from forensics.io.images import iter_loaded, scan_nonempty

        i_dec, i_det = interleaved(
            lambda: in_process(lambda: sum(r.ok for r in iter_loaded(scan_nonempty(folder)))),
            lambda: in_process(lambda: run_detect([folder], a.model, Path(tmp) / "w.csv", progress=False)),
            a.reps)
    med = statistics.median
    print(f"images: {a.n} PNG of {a.size}x{a.size}, cores: {os.cpu_count()}, {a.reps} interleaved runs of each side")
    for what, dec, det in (("whole commands", w_dec, w_det), ("in-process    ", i_dec, i_det)):
        wd, wt = med(r[0] for r in dec), med(r[0] for r in det)
        cd, ct = med(r[1] for r in dec), med(r[1] for r in det)
        bd, bt = min(r[0] for r in dec), min(r[0] for r in det)
        print(f"{what}: median decode-only {wd:5.2f} s, detect {wt:5.2f} s, ratio {wt / wd:4.2f} | "
              f"best {bd:5.2f} s vs {bt:5.2f} s, ratio {bt / bd:4.2f} | "
              f"CPU {cd:5.2f} s vs {ct:5.2f} s, ratio {ct / cd:4.2f}")
    print("target: wall ratio <= 2.0")


if __name__ == "__main__":
    main()

"""Peak resident memory of ``forensics detect`` as the number of files and the image size grow.

    python benchmarks/bench_memory.py [--counts 1,1000,10000,40000] [--side 64]
                                      [--photos 1,4,8] [--mp 24] [--keep DIR]

Each run is a fresh ``python -m forensics detect FOLDER --out rows.csv`` process; its peak
RSS is the kernel's ``ru_maxrss`` of that child (``os.wait4``). Two series:
- many small files: ``--counts`` PNGs of ``--side`` px (random pixels);
- a few large photos: ``--photos`` JPEGs of ``--mp`` megapixels (3:2, smooth gradients plus
  noise, quality 90).
Target: peak RSS independent of the file count, and at most a few decoded images above the
one-file run. Run it with ``PYTHONPATH`` at another checkout to measure that code the same way.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_small(folder: Path, n: int, side: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.png")))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (side * 4, side * 4, 3), dtype=np.uint8)
    for i in range(have, n):  # crops of one noise field: cheap to make, each file distinct
        y, x = (i * 7) % (3 * side), (i * 13) % (3 * side)
        sub = folder / f"{i // 1000:04d}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(base[y:y + side, x:x + side]).save(sub / f"{i:07d}.png", compress_level=1)


def make_photos(folder: Path, n: int, mp: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    h = int(round((mp * 1e6 / 1.5) ** 0.5))
    w = int(round(h * 1.5))
    rng = np.random.default_rng(1)
    for i in range(n):
        f = folder / f"photo{i:03d}.jpg"
        if f.exists():
            continue
        yy = np.linspace(0, 255, h, dtype=np.float32)[:, None]
        xx = np.linspace(0, 255, w, dtype=np.float32)[None, :]
        img = np.empty((h, w, 3), np.uint8)
        for c in range(3):
            img[..., c] = np.clip((yy * (c + 1) / 3 + xx * (3 - c) / 3) / 2
                                  + rng.normal(0, 12, (h, w)).astype(np.float32), 0, 255)
        Image.fromarray(img).save(f, quality=90)


def peak_rss(folder: Path, out: Path) -> tuple[float, float, int]:
    """(peak RSS in MiB, wall seconds, exit status) of one detect process."""
    env = {**os.environ, "FORENSICS_PROGRESS": "0"}
    t = time.perf_counter()
    # run outside the checkout: `python -m` puts the working folder first on sys.path, ahead of
    # PYTHONPATH, so another checkout could not be measured from inside this one
    p = subprocess.Popen([sys.executable, "-m", "forensics", "detect", str(folder), "--out", str(out)],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=out.parent)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode()
    if p.returncode:
        print(err, file=sys.stderr)
    return ru.ru_maxrss / 1024, wall, p.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="1,1000,10000,40000")
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--photos", default="1,4,8")
    ap.add_argument("--mp", type=float, default=24)
    ap.add_argument("--keep", default=None, help="folder to keep the generated inputs in (reused)")
    a = ap.parse_args()
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench_memory."))
    where = subprocess.run([sys.executable, "-c", "import forensics; print(forensics.__file__)"],
                           cwd=root, capture_output=True, text=True).stdout.strip()
    print(f"forensics from {where}")
    print(f"{'input':>28s} {'peak RSS MiB':>13s} {'wall s':>8s}")
    for n in map(int, a.counts.split(",")):
        folder = root / f"small{a.side}_{n}"
        make_small(folder, n, a.side)
        rss, wall, rc = peak_rss(folder, root / "rows.csv")
        print(f"{f'{n} x {a.side}x{a.side} PNG':>28s} {rss:13.0f} {wall:8.1f}" + ("" if rc == 0 else f"  exit {rc}"),
              flush=True)
    for n in map(int, a.photos.split(",")):
        folder = root / f"photos{a.mp:g}_{n}"
        make_photos(folder, n, a.mp)
        rss, wall, rc = peak_rss(folder, root / "rows.csv")
        print(f"{f'{n} x {a.mp:g} MP JPEG':>28s} {rss:13.0f} {wall:8.1f}" + ("" if rc == 0 else f"  exit {rc}"),
              flush=True)


if __name__ == "__main__":
    main()

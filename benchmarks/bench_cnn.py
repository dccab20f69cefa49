"""Scoring throughput of the small CNN detector on CPU (images per second) at 32, 64 and 128 px.

    nice python benchmarks/bench_cnn.py [--threads 1] [--reps 5] [--input pixels]

Scores ``n`` built-in crops (uint8 in, P(generated) out: input scaling, forward pass in
batches of 512) with the default architecture (channels 16, 32, 64; untrained weights score
at the same speed as trained ones). Printed per size: the best and the median of ``--reps``
runs in images per wall second, and images per CPU second of this process (less sensitive
to other load on a shared machine).
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import real_crops  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--input", default="pixels", choices=["pixels", "spectrum"])
    ap.add_argument("--sizes", default="32,64,128")
    a = ap.parse_args(argv)
    import torch
    from forensics.detectors.cnn import CNNConfig, CNNDetector

    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} thread(s), input {a.input}")
    print("| size | images | best img/s (wall) | median img/s (wall) | img per CPU-s |")
    print("|---|---|---|---|---|")
    for s in map(int, a.sizes.split(",")):
        n = {32: 2048, 64: 1024}.get(s, 256)
        X = real_crops(n, s, seed=0)
        y = np.r_[np.zeros(n // 2), np.ones(n - n // 2)]
        det = CNNDetector(CNNConfig(size=s, input=a.input, epochs=0)).fit(X, y)
        det.predict_proba(X[:64])  # warm-up
        walls, cpus = [], []
        for _ in range(a.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            det.predict_proba(X)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        print(f"| {s} | {n} | {n / min(walls):.0f} | {n / statistics.median(walls):.0f} | "
              f"{n / statistics.median(cpus):.0f} |", flush=True)


if __name__ == "__main__":
    main()

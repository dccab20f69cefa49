"""Does the objective change the spectral artefact? Train tiny 32 px runs with one objective and two
last layers (baseline vs N.1.5), sample them and print the high-frequency tail of the azimuthal
log-spectrum (dB) relative to real built-in patches.

    OMP_NUM_THREADS=1 nice python benchmarks/spectrum_by_objective.py --objective infomax --steps 200
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
from forensics.generators.runs import (
    load_run,
    sample_images,  # noqa: E402
)
from forensics.generators.trainer import train_gan  # noqa: E402
from forensics.io.sources import builtin_patches  # noqa: E402
from forensics.spectral.spectrum import azimuthal_profile  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objective", default="infomax")
    ap.add_argument("--setups", default="baseline,N.1.5")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--n", type=int, default=512, help="samples per run and real patches")
    a = ap.parse_args()
    pr = azimuthal_profile(builtin_patches(32, n=a.n, seed=1).images).mean(0)
    tail = slice(int(0.75 * len(pr)), len(pr))
    with tempfile.TemporaryDirectory() as tmp:
        for spec in a.setups.split(","):
            cfg = GanConfig.tiny("dcgan", size=32, steps=a.steps, last_layer=spec, objective=a.objective,
                                 objective_params={"nrkhs": 256} if a.objective == "infomax" else {},
                                 n_images=2048, sample_every=10 ** 6, checkpoint_every=10 ** 6)
            t0 = time.time()
            train_gan(cfg, f"{tmp}/{spec}", progress=False)
            task, _ = load_run(f"{tmp}/{spec}", "cpu")
            p = azimuthal_profile(np.concatenate(list(sample_images(task, a.n, seed=1)))).mean(0)
            print(f"{a.objective} {spec}: {a.steps} steps in {time.time() - t0:.0f} s; fake minus real log-spectrum, "
                  f"mean over the top quarter of frequencies {np.mean(p[tail] - pr[tail]):+.2f} dB, "
                  f"highest bin {p[-1] - pr[-1]:+.2f} dB", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()

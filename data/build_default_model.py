"""Rebuild the default detector shipped in data/models/default (about 20 s on 2 cores).

    python data/build_default_model.py [--detector durall-svm] [--seed 0]

Real class: every built-in real patch (data/real, see SOURCES.md) at 32x32 and 64x64.
Generated class: the same patches passed through the upsampling-artefact simulator
(generators/simulate.py: area downscale by 2, then one transposed convolution k4 s2 p1
whose kernel is bilinear + seeded Gaussian noise, sigma drawn in [0.02, 0.08]).
80% of each class trains the model, 20% measures it (metrics.json).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors import make_detector  # noqa: E402
from forensics.data import builtin_patches  # noqa: E402
from forensics.detect import fit_and_evaluate  # noqa: E402
from forensics.io import write_config, write_json  # noqa: E402
from generators.simulate import simulate_upsampling  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", default="durall-svm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "models" / "default"))
    a = ap.parse_args()
    det = make_detector(a.detector, seed=a.seed)
    Xr, Xf, counts = [], [], {}
    for size in (32, 64):
        real = builtin_patches(size).images
        fake = simulate_upsampling(real, seed=a.seed + size)
        Xr.append(det.transform(real))
        Xf.append(det.transform(fake))
        counts[f"{size}x{size}"] = len(real)
    m = fit_and_evaluate(det, np.concatenate(Xr), np.concatenate(Xf), 0.2, a.seed)
    config = {"command": "data/build_default_model.py", "detector": a.detector, "seed": a.seed,
              "real": "builtin patches (data/real), 32x32 and 64x64", "patches_per_size": counts,
              "fake": "same patches through generators.simulate.simulate_upsampling (seed = seed + size)",
              "preprocess": "none"}
    det.save(a.out, extra={"training": {**config, "metrics": m}})
    write_json(Path(a.out) / "metrics.json", {"detector": a.detector, **m})
    write_config(a.out, config)
    print(f"{a.detector}: real accuracy {m['real_accuracy']:.3f}, generated accuracy "
          f"{m['generated_accuracy']:.3f}, ROC-AUC {m['roc_auc']:.3f} -> {a.out}")


if __name__ == "__main__":
    main()

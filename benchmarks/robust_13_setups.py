"""The robust detector over the 13 counterexample setups, trained on real photos only.

Usage: python benchmarks/robust_13_setups.py STUDY_DIR OUT.json [--folds 3] [--wide] [--target-fpr F]
       [--old] [--extra DIR ...]

The 13 built-in photographs (26 with ``--wide``: builtin-wide) are split by photo into ``folds``
folds: for each fold the detector is fitted on the 32 px patches of the other photos (its
threshold set on photos it held out of its own fit: cross-fitted over 4 groups of them, or one
held-out quarter with ``--old``) and tested on the patches of the fold's photos (real accuracy:
never-seen photos) and on every setup's fakes in STUDY_DIR/fakes/<setup>/ and the ``--extra``
folders. It never sees a generated image. Prints one row per setup and writes OUT.json.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from forensics.detectors.robust import RobustSpectralDetector
from forensics.io.images import load_folder, stack_same_size
from forensics.io.sources import builtin_patches
from forensics.metrics.rates import detection_rate, mean_std, real_accuracy, roc_auc


def folder_images(d, n=None):
    from forensics.io.images import scan_nonempty

    good, _ = load_folder(d, files=scan_nonempty(d)[:n])
    return stack_same_size([r.image for r in good])


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("study")
    p.add_argument("out")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--components", default="all")
    p.add_argument("--target-fpr", type=float, default=None, help="the detector's target_fpr (default: its own)")
    p.add_argument("--old", action="store_true", help="the first version's settings: no level features, one "
                   "simulated upsampling stage, threshold on one held-out quarter of the photos")
    p.add_argument("--wide", action="store_true", help="the 26 photographs of builtin-wide instead of the 13 core ones")
    p.add_argument("--max-fake", type=int, default=None, help="use only the first N fakes of each folder")
    p.add_argument("--first-fold-only", action="store_true", help="quick look: run fold 0 only")
    p.add_argument("--extra", nargs="*", default=[], help="more fake folders (e.g. attacked images)")
    a = p.parse_args(argv)
    ps = builtin_patches(a.size, extra=a.wide)
    photo = np.array([n.split("@")[0] for n in ps.names])
    photos = sorted(set(photo))
    fake_dirs = sorted(d for d in (Path(a.study) / "fakes").iterdir() if d.is_dir()) + [Path(e) for e in a.extra]
    fakes = {}
    for d in fake_dirs:
        fakes[d.name if d.name not in fakes else str(d)] = folder_images(d, a.max_fake)
    rows = {k: {"detection": [], "real_accuracy": [], "auc": []} for k in fakes}
    order = np.random.default_rng(0).permutation(len(photos))
    t0 = time.time()
    for f in range(1 if a.first_fold_only else a.folds):
        test_ph = [photos[i] for i in order[f::a.folds]]
        te = np.isin(photo, test_ph)
        kw = {"level": False, "two_stage": False, "calib_folds": 1} if a.old else {}
        if a.target_fpr is not None:
            kw["target_fpr"] = a.target_fpr
        det = RobustSpectralDetector(size=a.size, components=a.components, seed=f, **kw)
        det.fit(ps.images[~te], groups=photo[~te])
        sr = det.score(ps.images[te])
        ra = real_accuracy(sr, det.threshold_)
        print(f"fold {f}: test photos {', '.join(test_ph)} ({te.sum()} patches), real accuracy {ra:.3f} "
              f"[{time.time() - t0:.0f} s]", file=sys.stderr)
        for k, F in fakes.items():
            sf = det.score(F)
            rows[k]["detection"].append(detection_rate(sf, det.threshold_))
            rows[k]["real_accuracy"].append(ra)
            rows[k]["auc"].append(roc_auc(sr, sf))
    print(f"{'setup':<28} {'detection':>16} {'real accuracy':>16} {'AUC':>7}")
    summary = {}
    for k, r in rows.items():
        d, ra, auc = (mean_std(r[x]) for x in ("detection", "real_accuracy", "auc"))
        summary[k] = {"detection": d, "real_accuracy": ra, "auc": auc, "per_fold": r}
        print(f"{k:<28} {100 * d['mean']:6.1f} ± {100 * d['std']:4.1f} %  {100 * ra['mean']:6.1f} ± {100 * ra['std']:4.1f} %"
              f"  {auc['mean']:.3f}")
    Path(a.out).write_text(json.dumps({"config": vars(a), "n_fakes": {k: len(v) for k, v in fakes.items()},
                                       "results": summary}, indent=2))


if __name__ == "__main__":
    main()

"""Shipped models side by side on images of the wild corpus, and on a study's 32-px images.

    python benchmarks/wild_vs_default.py [--work build/wild] [--models native,robust-32] [--demo DEMO_DIR]

1. The real images of the corpus's ``wild`` photographs (``builtin-all`` minus ``builtin-wide``: no 0.3 model
   saw them) against the fakes made from those photographs, per family kind, and the external faces: ROC-AUC,
   TPR at 5 % FPR, and the real FPR at each model's stored threshold. ``native`` was *trained* on most of these
   families (its held-out figures are the generalization table's): this compares the 0.3 real-only default,
   which never saw any of them, with what the native model reaches when it has.
2. With ``--demo``, a finished ``forensics demo`` / ``counterexample`` folder: detection of every row's fakes and
   real accuracy on its real patches, at each model's threshold.
"""
import argparse
import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from forensics.detectors.store import load_model, model_folder  # noqa: E402
from forensics.evaluation.generalization import unit_of  # noqa: E402
from forensics.io.corpus import read_manifest  # noqa: E402
from forensics.io.images import load_image  # noqa: E402
from forensics.io.sources import builtin_photos  # noqa: E402
from forensics.metrics.rates import roc_auc, tpr_at_fpr  # noqa: E402

KINDS = ("up", "ae-kl", "ae-vq", "gan-dcgan", "gan-ssgan-ms", "external")


def _images(corpus, entries):
    return [load_image(corpus.file(e)).image for e in entries]


def _table(models, reals, fakes: dict, cell, real_name: str, real_cell) -> None:
    """One markdown row per model: ``cell(det, real scores, fake scores)`` per column of ``fakes`` (name ->
    images), then ``real_cell(det, real scores)``."""
    print("| model | " + " | ".join(f"{k} ({len(v)})" for k, v in fakes.items()) + f" | {real_name} |")
    print("|---" * (len(fakes) + 2) + "|")
    for name in models:
        det = load_model(model_folder(name))
        r = det.p_generated(reals)
        cells = [cell(det, r, det.p_generated(ims)) if len(ims) else "–" for ims in fakes.values()]
        print(f"| `{name}` | " + " | ".join(cells) + f" | {real_cell(det, r)} |")


def corpus_table(work: str, models: list[str]) -> None:
    c = read_manifest(os.path.join(work, "corpus"))
    seen = {p[0] for p in builtin_photos(extra=True)}
    wild = {e.group for e in c.entries if e.label == 0} - seen
    reals = _images(c, [e for e in c.entries if e.label == 0 and e.group in wild])
    fakes = {k: [] for k in KINDS}
    for e in c.entries:
        if e.label == 1 and (e.group in wild or e.group == "-"):
            fakes["external" if e.family.startswith("external") else unit_of(e.family, "kind")].append(e)
    print(f"{len(reals)} real images of {len(wild)} wild photographs; AUC / TPR at 5 % FPR")
    _table(models, reals, {k: _images(c, v) for k, v in fakes.items()},
           lambda det, r, f: f"{roc_auc(r, f):.3f} / {100 * tpr_at_fpr(r, f, 0.05):.0f} %",
           "real FPR at its threshold", lambda det, r: f"{100 * np.mean(r > det.threshold_):.1f} %")


def demo_table(demo: str, models: list[str]) -> None:
    with np.load(os.path.join(demo, "real", "images.npz"), allow_pickle=False) as z:
        reals = list(z["images"])
    root = os.path.join(demo, "fakes")
    files = sorted(glob.glob(os.path.join(root, "**", "*.png"), recursive=True))
    fakes: dict = {}  # one column per folder of images (a row family's setups are its subfolders)
    for f in files:
        fakes.setdefault(os.path.relpath(os.path.dirname(f), root), []).append(load_image(f).image)
    print(f"\n{demo}: {len(reals)} real patches; detection % at each model's threshold (AUC)")
    _table(models, reals, fakes, lambda det, r, f: f"{100 * np.mean(f > det.threshold_):.0f} ({roc_auc(r, f):.3f})",
           "real accuracy", lambda det, r: f"{100 * np.mean(r <= det.threshold_):.1f} %")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="build/wild")
    ap.add_argument("--models", default="native,robust-32")
    ap.add_argument("--demo", default=None)
    a = ap.parse_args()
    models = [m for m in a.models.split(",") if m]
    corpus_table(a.work, models)
    if a.demo:
        demo_table(a.demo, models)


if __name__ == "__main__":
    main()

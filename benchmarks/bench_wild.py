"""Leave-one-family-out generalization of several detectors on one labelled corpus (issue 19).

    python benchmarks/bench_wild.py CORPUS_DIR --out OUT [--detectors native,periodic-lr,frank-lr]
        [--by family,kind,layer] [--folds 5] [--repeats 1] [--seed 0] [--param DETECTOR:K=V,...]
        [--processing jpeg:95,...|none] [--units U,...] [--resume]
    python benchmarks/bench_wild.py --demo DEMO_DIR --out OUT ...   # a small corpus made here first

For every detector and hold-out unit: :func:`forensics.evaluation.generalization.run_generalization`
(the same code as ``forensics generalization``) into ``OUT/<detector>-<by>/``; prints each run's
per-unit table and processing table (``table.md``), then one line per held-out unit with every
detector's AUC and detection rate at its calibrated threshold, and the wall time of each run.
``OUT/summary.json`` holds the figures printed.

``--demo DIR`` first writes a small corpus (if DIR has none): 128 px crops of the 26 built-in
photographs (group = photo) and, made from the same crops, the upsampling simulator's four last
layers (``forensics.generators.simulate.simulate_family``: ``up:N-x2`` nearest, ``up:B-x2``
bilinear, ``up:Z-x2`` zero insertion, ``up:baseline-x2`` transposed convolution, each followed by
random convolutions as a generator's last block), plus bicubic x2 of half-size crops as a test-only
family ``external-bicubic:-``. Every image is PNG and unprocessed (no augmentation): it is a check of
the protocol, not of the default model.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from forensics.core.parsing import assignments, names
from forensics.evaluation.generalization import DEFAULT_PROCESSING, GeneralizationConfig, run_generalization
from forensics.io.files import write_json

DEMO_FAMILIES = {"nearest": "up:N-x2", "bilinear": "up:B-x2", "zero": "up:Z-x2", "transposed": "up:baseline-x2"}


def demo_corpus(root: Path, crops_per_photo: int = 6, size: int = 128, seed: int = 0) -> Path:
    """The ``--demo`` corpus (see module) in ``root``; kept when ``root`` already has a manifest."""
    import cv2

    from forensics.generators.simulate import simulate_family
    from forensics.io.corpus import MANIFEST, Entry, write_manifest
    from forensics.io.images import write_png
    from forensics.io.sources import builtin_photos

    if (root / MANIFEST).is_file():
        return root
    rng = np.random.default_rng(seed)
    entries, crops, groups = [], [], []
    for name, im, _enc in builtin_photos(extra=True):
        g = Path(name).stem
        for c in range(crops_per_photo):
            y, x = rng.integers(im.shape[0] - size + 1), rng.integers(im.shape[1] - size + 1)
            crops.append(np.ascontiguousarray(im[y:y + size, x:x + size]))
            groups.append(g)
            write_png(root / "real" / f"{g}_{c}.png", crops[-1])
            entries.append(Entry(f"real/{g}_{c}.png", 0, "real", g))
    crops = np.stack(crops)
    for k, (method, family) in enumerate(DEMO_FAMILIES.items()):
        fakes = simulate_family(crops, seed=seed + 1 + k, methods=(method,))
        folder = family.replace(":", "_")
        for i, (im, g) in enumerate(zip(fakes, groups)):
            write_png(root / folder / f"{g}_{i}.png", im)
            entries.append(Entry(f"{folder}/{g}_{i}.png", 1, family, g))
    for i, (im, g) in enumerate(zip(crops[::3], groups[::3])):  # made from the crops: their photo's group
        half = cv2.resize(im, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
        write_png(root / "external" / f"{g}_{i}.png", cv2.resize(half, (size, size), interpolation=cv2.INTER_CUBIC))
        entries.append(Entry(f"external/{g}_{i}.png", 1, "external-bicubic:-", g))
    write_manifest(root, entries)
    return root


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("corpus", nargs="?", help="a labelled corpus folder (manifest.csv)")
    p.add_argument("--demo", metavar="DIR", help="write the small demo corpus into DIR (if absent) and use it")
    p.add_argument("--out", required=True)
    p.add_argument("--detectors", default="periodic-lr,frank-lr", help="comma-separated detector names")
    p.add_argument("--by", default="family", help="comma-separated hold-out units: family, kind, layer")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-fpr", type=float, default=0.05)
    p.add_argument("--param", action="append", default=[], metavar="DETECTOR:K=V,...",
                   help="parameters of one detector, e.g. frank-lr:size=64 (repeatable)")
    p.add_argument("--processing", default=None, help="KIND:S,... (default the issue's table; 'none': clean only)")
    p.add_argument("--units", default=None, help="hold out only these units")
    p.add_argument("--test-only", default="external-*")
    p.add_argument("--resume", action="store_true")
    a = p.parse_args(argv)
    if bool(a.corpus) == bool(a.demo):
        p.error("give a corpus folder or --demo DIR")
    corpus = demo_corpus(Path(a.demo)) if a.demo else Path(a.corpus)
    params = {}
    for spec in a.param:
        det, _, kv = spec.partition(":")
        params[det] = assignments(kv, f"--param {spec}") or {}
    processing = (DEFAULT_PROCESSING if a.processing is None else
                  () if a.processing == "none" else tuple(names(a.processing)))
    dets, bys = names(a.detectors), names(a.by)
    out = Path(a.out)
    summary = {"corpus": str(corpus), "runs": []}
    by_unit: dict = {}
    for by in bys:
        for det in dets:
            cfg = GeneralizationConfig(corpus=str(corpus), detector=det, out=str(out / f"{det}-{by}"),
                                       params=params.get(det, {}), by=by, folds=a.folds, repeats=a.repeats,
                                       seed=a.seed, target_fpr=a.target_fpr, units=tuple(names(a.units) or ()),
                                       test_only=tuple(names(a.test_only) or ()), processing=processing,
                                       resume=a.resume)
            t0 = time.perf_counter()
            res = run_generalization(cfg, progress=sys.stderr.isatty())
            wall = time.perf_counter() - t0
            print((out / f"{det}-{by}" / "table.md").read_text(encoding="utf-8"))
            print(f"[{det}, by {by}: {wall:.1f} s wall]\n")
            summary["runs"].append({"detector": det, "by": by, "wall_s": wall, "out": cfg.out,
                                    "rows": res["rows"], "processing": res["processing"]})
            for r in res["rows"]:
                by_unit.setdefault((by, r["unit"]), {})[det] = r
    print("# Summary: AUC / detected at the calibrated threshold, per held-out unit\n")
    print("| by | held out | " + " | ".join(dets) + " |")
    print("|---|---|" + "---|" * len(dets))
    for (by, unit), per in by_unit.items():
        cells = []
        for d in dets:
            r = per.get(d)
            ok = r and r["auc"]["n"]
            cells.append(f"{r['auc']['mean']:.3f} / {100 * r['detection_rate']['mean']:.0f} %" if ok else "–")
        print(f"| {by} | `{unit}`{' (test only)' if next(iter(per.values()))['test_only'] else ''} | " + " | ".join(cells) + " |")
    write_json(out / "summary.json", summary)
    print(f"\n-> {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

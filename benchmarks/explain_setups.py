"""Which frequencies drive each detector's verdict, on a folder of setups that is not a full study
(e.g. only ``fakes/<setup>/*.png``, as a GPU run ships them): the counterexample report's
explanation section (:func:`forensics.explain.explainers.explain_groups`, :func:`forensics.explain.report.plot_explanations`)
for detectors trained on real vs baseline.

    nice python benchmarks/explain_setups.py --study gpuA --out runs/explain13

Reals: ``STUDY/real/images.npz`` if present, else the built-in patches. Seeded split: ``n_train``
reals and baseline fakes train each detector; ``n_explain`` held-out reals, held-out baseline
fakes and fakes of every other setup are explained. Writes ``explanations.json``,
``explanations.png``/``.svg``, ``explanations.md`` and ``config.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--detectors", default="durall+-lr,dzanic+-mlp,cnn-spectrum,cnn")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--n-train", type=int, default=100)
    ap.add_argument("--n-explain", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    import torch

    from forensics.detectors import make_detector
    from forensics.explain.explainers import explain_groups
    from forensics.explain.report import explanations_text, plot_explanations
    from forensics.io.files import atomic_write_text, write_config, write_json
    from forensics.io.sources import load_source

    torch.set_num_threads(1)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from lrp_guided import study_generators

    root, out = Path(a.study), Path(a.out)
    crop = f"crop:{a.size}"
    real_src = str(root / "real" / "images.npz") if (root / "real" / "images.npz").is_file() else "builtin"
    real = load_source(real_src, a.size, policy=None if real_src == "builtin" else crop).images
    setups = study_generators(root)
    if "baseline" not in setups:
        raise ValueError(f"{root}: no fakes/baseline (the detectors train on real vs baseline)")
    fakes = {s: load_source(str(root / "fakes" / s), a.size, policy=crop).images for s in setups}
    setups = ["baseline"] + [s for s in setups if s != "baseline"]
    write_config(out, {"benchmark": "explain_setups", "args": vars(a), "real": real_src, "setups": setups})
    rng = np.random.default_rng(a.seed)
    ri, fi = rng.permutation(len(real)), rng.permutation(len(fakes["baseline"]))
    tr_r, te_r = ri[:a.n_train], ri[a.n_train:a.n_train + a.n_explain]
    tr_f, te_f = fi[:a.n_train], fi[a.n_train:a.n_train + a.n_explain]
    block = {"images": f"{a.n_explain} held-out images per group", "detectors": {}}
    for name in a.detectors.split(","):
        t0 = time.perf_counter()
        det = make_detector(name, seed=a.seed, size=a.size)
        prep = (lambda x: x) if det.features is None else det.transform
        det.fit_real_fake(prep(real[tr_r]), prep(fakes["baseline"][tr_f]))
        groups = {"real": prep(real[te_r]), "baseline": prep(fakes["baseline"][te_f])}
        groups.update({s: prep(fakes[s][:a.n_explain]) for s in setups if s != "baseline"})
        block["detectors"][name] = explain_groups(det, groups, (a.size, a.size))
        block["detectors"][name]["seconds"] = time.perf_counter() - t0
        print(f"{name}: {block['detectors'][name]['seconds']:.0f} s (training + explanation)", file=sys.stderr)
    write_json(out / "explanations.json", block)
    plot_explanations(block, out / "explanations.png",
                      f"{root.name}: mean LRP relevance per frequency, per group (trained on real vs baseline)")
    text = explanations_text(block)
    atomic_write_text(out / "explanations.md", text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""Build the default model of `forensics detect`: the robust (real-only) spectral detector.

    python data/build_robust_model.py [--out data/models/default] [--real builtin-wide] [--size 32]
        [--seed 0] [--target-fpr 0.05] [--rates benchmarks/results/robust/gpuA-v2-wide.json]

Real class only: every built-in real patch of --size pixels (``builtin-wide``: the 13 core
photographs and the 13 extra ones, see data/real/SOURCES.md), grouped by photograph so that the
threshold is set on photographs held out of the fit (4-fold cross-fitting by photo, see
detectors/robust.py). The detector never sees a GAN image: its third component learns real vs
the simulated upsampling family (generators/simulate.py: simulate_family).

--target-fpr is the false-positive rate on the cross-fitted held-out photographs (on the
tuning folds, 5 % there gave 4.2 % on unseen photos with builtin-wide; docs/robust-detector.md). --rates names the JSON written by
benchmarks/robust_13_setups.py on held-out photo folds; its per-setup rates go into the model
card (model.json ``training.measured`` and MODEL_CARD.md). Writes model.json, model.npz,
config.json and MODEL_CARD.md (about two minutes on 2 cores).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from forensics.detectors.robust import RobustSpectralDetector  # noqa: E402
from forensics.io.files import atomic_write_text, write_config  # noqa: E402
from forensics.io.sources import builtin_patches  # noqa: E402

ENVELOPE = {
    "colour": True,
    "min_side": 32,
    "sizes_measured": "32x32 (larger images are cut into up to 16 tiles of 32x32 whose scores are averaged; "
                      "rates at other sizes were not measured)",
    "processing": "unprocessed images at their native resolution: no upscaling, no blur, JPEG quality >= 90 "
                  "(forensics robustness: upscaling x2, blur sigma 1 and JPEG <= 75 make real photos look generated)",
    "content": "natural photographs (the 26 built-in ones); the generators measured are 32 px DCGANs",
}


def measured(rates_path, label):
    """Per-setup detection / real accuracy / AUC (mean and std over photo folds) from a benchmark JSON."""
    if not rates_path:
        return None
    r = json.loads(Path(rates_path).read_text(encoding="utf-8"))
    return {"benchmark": "benchmarks/robust_13_setups.py", "study": label, "config": {k: v for k, v in r["config"].items() if k not in ("out", "study")}, "n_fakes": r["n_fakes"],
            "results": {k: {m: v[m] for m in ("detection", "real_accuracy", "auc")} for k, v in r["results"].items()}}


def card(meta, m) -> str:
    tr = meta["training"]
    lines = ["# Model card: the default model of `forensics detect`", "",
             f"**{meta['name']}** (`RobustSpectralDetector`, detectors/robust.py), built by "
             f"`{tr['command']}`; threshold {meta['threshold']:.4f}.", "",
             "## What it was trained on", "",
             f"- Real images only: {tr['n_real']} patches of {tr['size']}x{tr['size']} cut from the "
             f"{tr['n_photos']} built-in photographs ({tr['real']}; data/real/SOURCES.md lists them and their licences).",
             "- No generated image: the classifier component learns real vs simulated upsampling "
             "(nearest, bilinear, zero insertion, transposed convolution; one or two x2 stages; random kernels).",
             f"- Threshold: {100 * tr['target_fpr']:.0f} % false positives on the training photographs, each scored by "
             "a model fitted without it (4-fold cross-fitting by photograph).", "",
             "## Measured rates", ""]
    if m:
        lines += [f"From `{m['benchmark']}` on photo folds the model never saw (detector refitted per fold with the "
                  f"same settings, so these are the rates of this recipe, not of this exact file): "
                  f"{m['study']}, 3 folds of the {'builtin-wide' if m['config'].get('wide') else 'builtin'} photos.", "",
                  "| images | detected | real accuracy (unseen photos) | ROC-AUC |", "|---|---|---|---|"]
        for k, v in m["results"].items():
            d, ra, auc = v["detection"], v["real_accuracy"], v["auc"]
            lines.append(f"| {k} | {100 * d['mean']:.1f} ± {100 * d['std']:.1f} % | "
                         f"{100 * ra['mean']:.1f} ± {100 * ra['std']:.1f} % | {auc['mean']:.3f} |")
    else:
        lines.append("Not recorded in this build (no --rates given); see docs/robust-detector.md.")
    lines += ["", "## Envelope (where the rates hold; `detect` warns outside it)", ""]
    lines += [f"- {k}: {v}" for k, v in ENVELOPE.items()]
    lines += ["", "## Known limits", "",
              "- An attacker who rescales every Fourier magnitude to the real mean spectrum (`forensics attack "
              "--method match2d`) walks past it; see docs/robust-detector.md for the measured rates.",
              "- Processing that reshapes the spectrum of real photos (upscaling, blur, strong JPEG) makes them look "
              "generated: refit or calibrate on processed photos (`forensics calibrate`).",
              "- Measured on small DCGANs at 32 px only."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "models" / "default"))
    p.add_argument("--real", default="builtin-wide", choices=("builtin", "builtin-wide"))
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-fpr", type=float, default=0.05)
    p.add_argument("--rates", default=None, help="benchmark JSON with the measured per-setup rates")
    p.add_argument("--rates-label", default="the 13-setup study (DCGAN tiny, 32 px, 1500 steps)",
                   help="what the benchmark's study was, for the model card")
    a = p.parse_args(argv)
    ps = builtin_patches(a.size, extra=a.real == "builtin-wide")
    groups = np.array([n.split("@")[0] for n in ps.names])
    det = RobustSpectralDetector(size=a.size, target_fpr=a.target_fpr, seed=a.seed).fit(ps.images, groups=groups)
    training = {"command": "data/build_robust_model.py", "real": a.real, "size": a.size, "seed": a.seed,
                "target_fpr": a.target_fpr, "n_real": len(ps), "n_photos": int(len(set(groups))),
                "generated": "none (real images only; simulated upsampling inside the fit)",
                "sizes": {"real": {f"{a.size}x{a.size}": len(ps)}}, "envelope": ENVELOPE,
                "measured": measured(a.rates, a.rates_label)}
    det.save(a.out, extra={"training": training})
    meta = json.loads((Path(a.out) / "model.json").read_text(encoding="utf-8"))
    atomic_write_text(Path(a.out) / "MODEL_CARD.md", card(meta, training["measured"]))
    write_config(a.out, {"command": "data/build_robust_model.py", **vars(a)})
    print(f"robust model: {len(ps)} real patches of {len(set(groups))} photos, threshold {det.threshold_:.4f} -> {a.out}")


if __name__ == "__main__":
    main()

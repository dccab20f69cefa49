"""Rebuild the previous default detector (durall+-lr), shipped in data/models/durall-lr (about 3
minutes on 2 cores). The default model of `forensics detect` (data/models/default) is now the
robust detector: data/build_robust_model.py; docs/robust-detector.md says why.

    python data/build_default_model.py [--detector durall+-lr] [--seed 1] [--gan-steps 1500]

Real class: every built-in real patch (data/real, see SOURCES.md) at 32x32 and 64x64.
Generated class, two sources of transposed-convolution traces:
  - the same patches passed through the upsampling-artefact simulator
    (generators/simulate.py: area downscale by 2, then one transposed convolution k4 s2 p1
    whose kernel is bilinear + seeded Gaussian noise, sigma drawn in [0.02, 0.08]);
  - as many 32x32 samples of a tiny baseline DCGAN (preset tiny, transposed convolutions
    throughout) trained with seed --seed for --gan-steps steps on the 32x32 patches.
No nearest/bilinear-upsampling GAN output is used: those are the counterexamples.
80% of each class trains the model, 20% measures it (metrics.json).
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.detection.training import fit_and_evaluate  # noqa: E402
from forensics.detectors import make_detector  # noqa: E402
from forensics.generators.runs import (
    load_run,
    sample_images,  # noqa: E402
)
from forensics.generators.simulate import simulate_upsampling  # noqa: E402
from forensics.generators.trainer import train_gan  # noqa: E402
from forensics.io.files import write_config, write_json  # noqa: E402
from forensics.io.sources import builtin_patches  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", default="durall+-lr")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gan-steps", type=int, default=1500)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "models" / "durall-lr"))
    a = ap.parse_args()
    det = make_detector(a.detector, seed=a.seed)
    Xr, Xf, counts = [], [], {}
    for size in (32, 64):
        real = builtin_patches(size).images
        Xr.append(det.transform(real))
        Xf.append(det.transform(simulate_upsampling(real, seed=a.seed + size)))
        counts[f"{size}x{size}"] = len(real)
    with tempfile.TemporaryDirectory() as tmp:
        train_gan("dcgan", "baseline", "builtin", 32, a.gan_steps, tmp, preset_name="tiny", seed=a.seed,
                  sample_every=a.gan_steps)
        task, _ = load_run(tmp)
        gan = np.concatenate(list(sample_images(task, counts["32x32"], seed=a.seed + 100)))
    Xf.append(det.transform(gan))
    m = fit_and_evaluate(det, np.concatenate(Xr), np.concatenate(Xf), 0.2, a.seed)
    config = {"command": "data/build_default_model.py", "detector": a.detector, "seed": a.seed,
              "real": "builtin patches (data/real), 32x32 and 64x64", "patches_per_size": counts,
              "fake": ["same patches through generators.simulate.simulate_upsampling (seed = seed + size)",
                       f"{len(gan)} samples of a tiny baseline DCGAN, 32x32, {a.gan_steps} steps, seed {a.seed}"],
              "preprocess": "none",
              "sizes": {"real": counts, "generated": {**counts, "32x32": counts["32x32"] + len(gan)}}}
    det.save(a.out, extra={"training": {**config, "metrics": m}})
    write_json(Path(a.out) / "metrics.json", {"detector": a.detector, **m})
    write_config(a.out, config)
    print(f"{a.detector}: real accuracy {m['real_accuracy']:.3f}, generated accuracy "
          f"{m['generated_accuracy']:.3f}, ROC-AUC {m['roc_auc']:.3f} -> {a.out}")


if __name__ == "__main__":
    main()

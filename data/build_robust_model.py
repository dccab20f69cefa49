"""Build the robust (real-only) spectral detector from the built-in photographs.

    python data/build_robust_model.py [--out data/models/robust] [--size 32] [--seed 0] [--target-fpr 0.05]

Real class only: every built-in real patch (data/real, see SOURCES.md) of --size pixels,
grouped by photograph so that the threshold is set on photographs held out of the fit
(RobustSpectralDetector.holdout = a quarter of the photographs). The detector never sees a
GAN image: its second component learns real vs the simulated upsampling family
(generators/simulate.py: simulate_family). Writes model.json, model.npz and config.json.
This does NOT replace data/models/default; see notes/analyst-readme.md for what that would take.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.training import TrainEstimatorConfig, train_estimator  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "models" / "robust"))
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-fpr", type=float, default=0.05)
    a = p.parse_args(argv)
    r = train_estimator(TrainEstimatorConfig(detector="robust", real="builtin", out=a.out, size=a.size,
                                             target_fpr=a.target_fpr, seed=a.seed))
    print(f"robust model: {r['n_real']} real patches, threshold {r['threshold']:.4f} -> {a.out}")


if __name__ == "__main__":
    main()

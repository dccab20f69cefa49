"""Supervised detectors trained on real vs BASELINE fakes, tested on the other setups
(the study's protocol, for any registered detector) -- e.g. on fakes trained elsewhere (a GPU)
or on sources the study did not test (quantized generators).

Usage: python benchmarks/supervised_vs_setups.py STUDY_DIR [EXTRA_FAKE_DIR ...]
           [--detectors frank-lr,periodic-lr] [--seeds 1]
Real photos are split by photo (fold 0 of benchmarks/robust_13_setups.py); threshold for 5 %
false positives on a quarter of the training photos' patches; fakes: first 500 per setup,
baseline: the first 250 train, the rest are tested. With --seeds N the detector's seed (and the
order of the training patches) varies and each rate is printed as mean +- std over the seeds.
"""
import argparse
from pathlib import Path

import numpy as np

from forensics.detectors import make_detector
from forensics.io.images import load_folder, scan_nonempty, stack_same_size
from forensics.io.sources import builtin_patches
from forensics.metrics.rates import detection_rate, real_accuracy


def imgs(d, n=500):
    return stack_same_size([r.image for r in load_folder(d, files=scan_nonempty(d)[:n])[0]])


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("study")
    p.add_argument("extra", nargs="*", help="more fake folders, tested like the study's setups")
    p.add_argument("--detectors", default="frank-lr,periodic-lr")
    p.add_argument("--seeds", type=int, default=1)
    a = p.parse_args(argv)
    study = Path(a.study)
    dirs = sorted(p for p in (study / "fakes").iterdir() if p.is_dir()) + [Path(e) for e in a.extra]
    ps = builtin_patches(32)
    photo = np.array([n.split("@")[0] for n in ps.names])
    photos = sorted(set(photo))
    order = np.random.default_rng(0).permutation(len(photos))
    te = np.isin(photo, [photos[i] for i in order[0::3]])
    base = imgs(study / "fakes" / "baseline")
    tests = {str(d): (imgs(d)[250:] if d == study / "fakes" / "baseline" else imgs(d)) for d in dirs}
    for name in a.detectors.split(","):
        ra, rates = [], {k: [] for k in tests}
        for seed in range(a.seeds):
            rng = np.random.default_rng(seed)
            tr_idx = np.flatnonzero(~te)
            rng.shuffle(tr_idx)
            cal, fit = tr_idx[: len(tr_idx) // 4], tr_idx[len(tr_idx) // 4:]
            det = make_detector(name, seed=seed)
            det.fit(np.r_[ps.images[fit], base[:250]], np.r_[np.zeros(len(fit)), np.ones(250)].astype(int))
            det.calibrate(ps.images[cal], 0.05)
            ra.append(real_accuracy(det.score(ps.images[te]), det.threshold_))
            for k, f in tests.items():
                rates[k].append(detection_rate(det.score(f), det.threshold_))
        pm = lambda v: f"{100 * np.mean(v):.1f}" + (f" ± {100 * np.std(v):.1f}" if len(v) > 1 else "")  # noqa: E731
        print(f"{name}: real accuracy on unseen photos {pm(ra)}%; detected: "
              + ", ".join(f"{Path(k).relative_to(study) if k.startswith(str(study)) else k} {pm(v)}%"
                          for k, v in rates.items()), flush=True)


if __name__ == "__main__":
    main()

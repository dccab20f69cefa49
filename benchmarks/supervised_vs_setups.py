"""Supervised detectors trained on real vs BASELINE fakes, tested on the other setups
(the study's protocol, with this toolkit's Frank log-DCT and periodic-harmonic detectors).

Usage: python benchmarks/supervised_vs_setups.py STUDY_DIR [EXTRA_FAKE_DIR ...]
Real photos are split by photo (fold 0 of benchmarks/robust_13_setups.py); threshold for 5 %
false positives on a quarter of the training photos' patches; fakes: first 500 per setup,
baseline: the first 250 train, the rest are tested.
"""
import sys
from pathlib import Path

import numpy as np

from forensics import metrics
from forensics.data import builtin_patches
from forensics.detectors.frank import FrankDCTDetector
from forensics.detectors.periodic import PeriodicSpectrumDetector
from forensics.images import load_folder, scan_nonempty, stack_same_size


def imgs(d, n=500):
    return stack_same_size([r.image for r in load_folder(d, files=scan_nonempty(d)[:n])[0]])


study = Path(sys.argv[1])
dirs = sorted(p for p in (study / "fakes").iterdir() if p.is_dir()) + [Path(p) for p in sys.argv[2:]]
ps = builtin_patches(32)
photo = np.array([n.split("@")[0] for n in ps.names])
photos = sorted(set(photo))
order = np.random.default_rng(0).permutation(len(photos))
te = np.isin(photo, [photos[i] for i in order[0::3]])
rng = np.random.default_rng(0)
tr_idx = np.flatnonzero(~te)
rng.shuffle(tr_idx)
cal, fit = tr_idx[: len(tr_idx) // 4], tr_idx[len(tr_idx) // 4:]
base = imgs(study / "fakes" / "baseline")
for cls in (FrankDCTDetector, PeriodicSpectrumDetector):
    det = cls().fit(np.r_[ps.images[fit], base[:250]], np.r_[np.zeros(len(fit)), np.ones(250)].astype(int))
    det.calibrate(ps.images[cal], 0.05)
    ra = metrics.real_accuracy(det.score(ps.images[te]), det.threshold_)
    row = []
    for d in dirs:
        f = imgs(d)[250:] if d.name == "baseline" else imgs(d)
        row.append(f"{d.name} {100 * metrics.detection_rate(det.score(f), det.threshold_):.1f}%")
    print(f"{det.name}: real accuracy on unseen photos {100 * ra:.1f}%; detected: " + ", ".join(row))

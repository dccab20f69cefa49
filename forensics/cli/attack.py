"""The attack verb: post-hoc spectral attacks on generated images, measured."""
from __future__ import annotations

import sys
from pathlib import Path

from forensics.cli.registry import arg, verb
from forensics.core.parsing import names


@verb("attack", "post-hoc spectral attack: make generated images look spectrally real, and measure it",
      """forensics attack --fake fakes/baseline --real builtin --method equalize --out attacked/
      forensics attack --fake fakes/ --real real/ --method match2d --max-gain 1 --model model/ --out notched/""")
@arg("--fake", required=True, metavar="DIR", help="folder of generated images")
@arg("--real", required=True, metavar="DIR", help="folder of real reference images, or 'builtin'")
@arg("--method", required=True, choices=["equalize", "match2d"],
     help="equalize: per-image ring gains toward the real mean spectrum; match2d: the set's 2-D spectrum "
          "scaled toward the real one (with --max-gain 1 a pure notch of its excess peaks)")
@arg("--out", required=True, metavar="DIR", help="attacked PNGs in DIR/images, measurements in DIR/attack.json")
@arg("--strength", type=float, default=1.0, help="0 (no change) to 1 (full, default)")
@arg("--from-freq", type=float, default=0.1, help="equalize: lowest frequency changed (cycles/pixel, default 0.1)")
@arg("--max-gain", type=float, default=8.0, help="match2d: cap of the per-frequency gain (default 8; 1 = notch)")
@arg("--detectors", default=None, help="fresh detectors to measure with (default dzanic+-knn,dzanic+-svm,durall+-lr,durall+-svm)")
@arg("--model", default=None, metavar="MODEL_DIR", help="also score with this saved model")
@arg("--seed", type=int, default=0)
def cmd_attack(a):
    from forensics.evaluation.attack import DEFAULT_DETECTORS, run_attack

    kw = {"from_freq": a.from_freq} if a.method == "equalize" else {"max_gain": a.max_gain}
    r = run_attack(a.fake, a.real, a.method, a.out, a.strength, names(a.detectors) or DEFAULT_DETECTORS,
                   a.model, a.seed, **kw)
    ch = r["image_change"]
    p_db = ch["psnr_db"]["mean"]
    print(f"image change: PSNR {'inf' if p_db is None else f'{p_db:.1f}'} dB "
          f"({ch['psnr_db']['n_unchanged']} unchanged), SSIM {ch['ssim']['mean']:.3f}")
    for name, d in r["detectors"].items():
        print(f"{name:14s} detection rate {100 * d['before']['detection_rate']:5.1f}% -> "
              f"{100 * d['after']['detection_rate']:5.1f}%  (real accuracy {100 * d['real_accuracy']:.1f}%)")
    if r["model"]:
        m = r["model"]
        print(f"{'model ' + m['detector']:14s} detection rate {100 * m['before']['detection_rate']:5.1f}% -> "
              f"{100 * m['after']['detection_rate']:5.1f}%")
    print(f"-> {Path(a.out) / 'attack.json'}", file=sys.stderr)

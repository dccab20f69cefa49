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
@arg("--real", required=True, metavar="DIR", help="folder of real reference images, 'builtin', 'builtin-wide' or 'builtin-all'")
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
    from forensics.detectors.attacks import options_for
    from forensics.evaluation.attack import DEFAULT_DETECTORS, attack_text, run_attack

    r = run_attack(a.fake, a.real, a.method, a.out, a.strength, names(a.detectors) or DEFAULT_DETECTORS, a.model,
                   a.seed, **options_for(a.method, from_freq=a.from_freq, max_gain=a.max_gain))
    print(attack_text(r))
    print(f"-> {Path(a.out) / 'attack.json'}", file=sys.stderr)

"""Verbs for the analyst's workflow: evaluate, calibrate, robustness, train-estimator, fuse."""
from __future__ import annotations

import sys
from pathlib import Path

from forensics.cli.registry import arg, verb
from forensics.core.parsing import names, numbers


def _pct(v):
    return "n/a" if v != v else f"{100 * v:.1f}%"


@verb("evaluate", "metrics of a saved detector on labelled folders: AUC, AP, accuracy, TPR at 1 and 5 pct FPR, plots",
      """forensics evaluate model/ --real photos/ --fake gan_a/ --fake gan_b/ --out eval/
      forensics evaluate model/ --data testset/ --out eval/    # testset/0_real, testset/1_fake (or per-generator subfolders)""")
@arg("model", metavar="MODEL_DIR")
@arg("--real", action="append", default=[], metavar="DIR", help="folder of real images (repeatable)")
@arg("--fake", action="append", default=[], metavar="DIR", help="folder of generated images, one generator each (repeatable)")
@arg("--data", default=None, metavar="DIR", help="a 0_real/1_fake folder, or a folder of such folders")
@arg("--out", required=True, metavar="DIR")
@arg("--threshold", type=float, default=None, help="override the model's stored threshold")
@arg("--preprocess", default=None, metavar="POLICY", help="override the model's stored policy")
@arg("--scheduler", default=None, metavar="ADDRESS", help="run on Dask: local[:N] or a scheduler address")
def cmd_evaluate_analyst(a):
    from forensics.evaluation.evaluate import EvaluateConfig, evaluate

    s = evaluate(EvaluateConfig(model=a.model, out=a.out, real=tuple(a.real), fake=tuple(a.fake), layout=a.data,
                                preprocess=a.preprocess, threshold=a.threshold, scheduler=a.scheduler))
    o = s["overall"]
    print(f"forensics evaluate: {s['detector']}: AUC {o['auc']:.3f}, AP {o['average_precision']:.3f}, "
          f"balanced accuracy {_pct(o['balanced_accuracy'])} (real {_pct(o['real_accuracy'])}, generated "
          f"{_pct(o['generated_accuracy'])}), TPR@5%FPR {_pct(o['tpr_at_5pct_fpr'])}; {s['n_errors']} unscored "
          f"-> {Path(a.out) / 'report.md'}", file=sys.stderr)


@verb("calibrate", "set a saved detector's threshold from a calibration set (written into the model)",
      """forensics calibrate model/ --real held_out_photos/ --target-fpr 0.01
      forensics calibrate model/ --real photos/ --fake fakes/ --mode mcc --out model_mcc/""")
@arg("model", metavar="MODEL_DIR")
@arg("--real", action="append", required=True, metavar="DIR", help="real images not used in training (repeatable)")
@arg("--fake", action="append", default=[], metavar="DIR", help="generated images (modes mcc, balanced-accuracy)")
@arg("--mode", default="fpr", choices=["fpr", "mcc", "balanced-accuracy"])
@arg("--target-fpr", type=float, default=0.05, help="mode fpr: share of real images allowed above the threshold")
@arg("--out", default=None, metavar="DIR", help="write the calibrated model here (default: replace MODEL_DIR)")
@arg("--preprocess", default=None, metavar="POLICY")
@arg("--scheduler", default=None, metavar="ADDRESS", help="run on Dask: local[:N] or a scheduler address")
def cmd_calibrate_analyst(a):
    from forensics.evaluation.calibrate import CalibrateConfig, calibrate

    r = calibrate(CalibrateConfig(model=a.model, real=tuple(a.real), fake=tuple(a.fake), mode=a.mode,
                                  target_fpr=a.target_fpr, out=a.out, preprocess=a.preprocess,
                                  scheduler=a.scheduler))
    m = r["measured_on_calibration_set"]
    print(f"forensics calibrate: threshold {r['previous_threshold']:.4g} -> {r['threshold']:.4g} ({a.mode}); "
          f"on the calibration set real accuracy {_pct(m['real_accuracy'])}, generated {_pct(m['generated_accuracy'])} "
          f"-> {r['out']}", file=sys.stderr)


@verb("robustness", "AUC and TPR at 5 pct FPR under JPEG, resizing, blur, noise and cropping",
      """forensics robustness model/ --real photos/ --fake fakes/ --out rob/
      forensics robustness model/ --real photos/ --fake fakes/ --only jpeg,blur --jpeg 90,70,50 --out rob/""")
@arg("model", metavar="MODEL_DIR")
@arg("--real", required=True, metavar="DIR")
@arg("--fake", required=True, metavar="DIR")
@arg("--out", required=True, metavar="DIR")
@arg("--only", default=None, help="comma-separated subset of jpeg,resize,blur,noise,crop")
@arg("--jpeg", default=None, help="qualities, e.g. 95,75,50")
@arg("--resize", default=None, help="scale factors, e.g. 0.5,2")
@arg("--resize-filter", default="bilinear", choices=["nearest", "bilinear", "bicubic", "area", "lanczos"])
@arg("--blur", default=None, help="Gaussian sigmas in pixels, e.g. 0.5,1,2")
@arg("--noise", default=None, help="noise sigmas in grey levels, e.g. 2,5")
@arg("--crop", default=None, help="fractions of each side kept, e.g. 0.9,0.5")
@arg("--seed", type=int, default=0)
@arg("--preprocess", default=None, metavar="POLICY")
@arg("--scheduler", default=None, metavar="ADDRESS", help="run on Dask: local[:N] or a scheduler address")
def cmd_robustness_analyst(a):
    from forensics.evaluation.robustness import DEFAULT_STRENGTHS, RobustnessConfig, robustness, summary_line

    strengths = {k: numbers(getattr(a, k), f"{k} strengths") for k in DEFAULT_STRENGTHS if getattr(a, k)}
    r = robustness(RobustnessConfig(model=a.model, real=a.real, fake=a.fake, out=a.out,
                                    perturbations=tuple(names(a.only) or ()) if a.only else tuple(DEFAULT_STRENGTHS),
                                    strengths=strengths,
                                    resize_filter=a.resize_filter, seed=a.seed, preprocess=a.preprocess,
                                    scheduler=a.scheduler))
    print(f"forensics robustness: {summary_line(r)} -> {a.out}", file=sys.stderr)


@verb("train-estimator", "train the robust (real-only), Frank log-DCT or periodic-spectrum detector",
      """forensics train-estimator --detector robust --real builtin --out robust_model/
      forensics train-estimator --detector frank --real photos/ --fake fakes/ --out frank_model/""")
@arg("--detector", required=True, choices=["robust", "frank", "periodic"])
@arg("--real", required=True, metavar="DIR", help="folder of real images, 'builtin' (13 photos), 'builtin-wide' (26) or 'builtin-all' (67)")
@arg("--fake", default=None, metavar="DIR", help="generated images (frank, periodic; robust never uses them)")
@arg("--out", required=True, metavar="MODEL_DIR")
@arg("--size", type=int, default=32, help="tile size in pixels (default 32)")
@arg("--target-fpr", type=float, default=0.05, help="false-positive rate of the stored threshold (default 0.05)")
@arg("--preprocess", default="none", metavar="POLICY")
@arg("--seed", type=int, default=0)
def cmd_train_estimator_analyst(a):
    from forensics.detection.training import TrainEstimatorConfig, train_estimator

    r = train_estimator(TrainEstimatorConfig(detector=a.detector, real=a.real, fake=a.fake, out=a.out, size=a.size,
                                             target_fpr=a.target_fpr, preprocess=a.preprocess, seed=a.seed))
    print(f"forensics train-estimator: {r['detector']} on {r['n_real']} real"
          + (f" / {r['n_generated']} generated" if "n_generated" in r else "")
          + f" images, threshold {r['threshold']:.4g} -> {a.out}", file=sys.stderr)


@verb("fuse", "combine saved detectors into one model (mean, max, mean-logit, soft-or, or stacked)",
      """forensics fuse robust_model/ frank_model/ --rule max --out fused/
      forensics fuse a/ b/ --rule stack --real photos/ --fake fakes/ --target-fpr 0.05 --out fused/""")
@arg("models", nargs="+", metavar="MODEL_DIR")
@arg("--out", required=True, metavar="DIR")
@arg("--rule", default="mean-logit", choices=["mean", "max", "mean-logit", "soft-or", "stack"])
@arg("--real", default=None, metavar="DIR")
@arg("--fake", default=None, metavar="DIR")
@arg("--target-fpr", type=float, default=None)
@arg("--preprocess", default=None, metavar="POLICY",
     help="policy of the fused model (default: the members' own, which must agree)")
@arg("--size", type=int, default=None,
     help="side of the built-in patches with --real builtin (default: the policy's size, else the members' largest)")
def cmd_fuse_analyst(a):
    from forensics.detection.training import FuseConfig, fuse

    r = fuse(FuseConfig(models=tuple(a.models), out=a.out, rule=a.rule, real=a.real, fake=a.fake,
                        target_fpr=a.target_fpr, preprocess=a.preprocess, size=a.size))
    print(f"forensics fuse: {a.rule} of {', '.join(r['members'])}, policy {r['preprocess']}, "
          f"threshold {r['threshold']:.4g} -> {a.out}", file=sys.stderr)

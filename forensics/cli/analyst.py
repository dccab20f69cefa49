"""Verbs for the analyst's workflow: evaluate, generalization, calibrate, robustness, train-estimator, fuse."""
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


@verb("generalization", "leave-one-family-out: train without a generator family, test on it; per-family AUC, "
      "TPR and real accuracy, false positives under processing",
      """forensics generalization corpus/ --detector periodic-lr --out gen/
      forensics generalization corpus/ --detector native --hold-out layer --folds 5 --repeats 2 --out gen_layer/
      forensics generalization corpus/ --detector frank-lr --param size=64 --processing jpeg:75,resize:0.5 --out gen/""")
@arg("corpus", metavar="CORPUS_DIR", help="a labelled corpus folder (manifest.csv: path,label,family,group,processing)")
@arg("--detector", required=True, metavar="NAME", help="a detector name, e.g. native, periodic-lr, frank-lr")
@arg("--param", default=None, metavar="K=V,...", help="the detector's parameters, e.g. size=64,C=0.1")
@arg("--hold-out", dest="by", default="family", choices=["kind", "layer", "family"],
     help="the unit held out: a family (default), its kind (gan-dcgan, ae-kl, up, ...) or its last-layer group")
@arg("--folds", type=int, default=5, help="folds of the photo groups (default 5)")
@arg("--repeats", type=int, default=1, help="deal the photo groups into folds this many times, each anew (default 1)")
@arg("--seed", type=int, default=0)
@arg("--target-fpr", type=float, default=0.05, help="false-positive rate of the calibrated threshold (default 0.05)")
@arg("--test-only", default="external-*", metavar="PATTERNS",
     help="families never trained on, reported apart (comma-separated patterns; default external-*)")
@arg("--units", default=None, metavar="UNITS", help="hold out only these units (comma-separated; default every one)")
@arg("--processing", default=None, metavar="KIND:S,...",
     help="processing of the test images (jpeg, resize, blur, noise, crop; default jpeg:95,jpeg:85,jpeg:75,"
          "resize:0.5,resize:2,blur:0.5,blur:1; 'none': clean only)")
@arg("--resize-filter", default="bilinear", choices=["nearest", "bilinear", "bicubic", "area", "lanczos"])
@arg("--out", required=True, metavar="DIR")
@arg("--resume", action="store_true", help="continue an interrupted run in --out (its finished folds are kept)")
def cmd_generalization_analyst(a):
    from forensics.core.parsing import assignments
    from forensics.evaluation.generalization import DEFAULT_PROCESSING, GeneralizationConfig, run_generalization

    processing = (DEFAULT_PROCESSING if a.processing is None else
                  () if a.processing.strip() == "none" else tuple(names(a.processing) or ()))
    r = run_generalization(GeneralizationConfig(
        corpus=a.corpus, detector=a.detector, out=a.out, params=assignments(a.param, "--param") or {}, by=a.by,
        folds=a.folds, repeats=a.repeats, seed=a.seed, target_fpr=a.target_fpr,
        test_only=tuple(names(a.test_only) or ()), units=tuple(names(a.units) or ()), processing=processing,
        resize_filter=a.resize_filter, resume=a.resume))
    print((Path(a.out) / "table.md").read_text(encoding="utf-8"), end="")
    worst = min((row for row in r["rows"] if row["auc"]["n"]), key=lambda row: row["auc"]["mean"], default=None)
    print(f"forensics generalization: {len(r['rows'])} held-out rows"
          + (f", lowest AUC {worst['auc']['mean']:.3f} ({worst['unit']})" if worst else "")
          + f"; {r['n_errors']} files not used -> {Path(a.out) / 'results.json'}", file=sys.stderr)


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

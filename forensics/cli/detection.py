"""Verbs for spectra and detection: spectrum, train-detector, detect."""
from __future__ import annotations

import sys

from forensics.cli.registry import arg, verb
from forensics.core.parsing import names


@verb("spectrum", "azimuthal spectra and decay features of folders of images",
      "forensics spectrum real/ fakes/ --out spec/   # writes profiles.csv, features.csv, spectrum.png")
@arg("paths", nargs="+", metavar="PATH", help="folders (searched recursively) or image files; one group each")
@arg("--out", required=True, metavar="DIR", help="output folder")
@arg("--preprocess", default="none", metavar="POLICY", help="none | crop:S | resize:S[:FILTER] (default none)")
@arg("--features", default="dzanic+,dzanic", metavar="NAME[,NAME..]",
     help="feature sets for features.csv, one column per value (<set>_0..): dzanic, dzanic+, durall, durall+ "
          "(published name = the published code; + = the toolkit's variant; default dzanic+,dzanic)")
@arg("--scheduler", default=None, metavar="ADDRESS", help="run on Dask: local[:N] or a scheduler address")
@arg("--device", default="numpy", help="features on numpy (default), or torch on cpu or cuda")
def cmd_spectrum(a):
    from forensics.evaluation.spectrum_report import spectrum_report

    r = spectrum_report(a.paths, a.out, a.preprocess, features=names(a.features), scheduler=a.scheduler,
                        device=a.device)
    groups = ", ".join(f"{g} (n={n})" for g, n in r["groups"])  # (no usable image at all: an error)
    print(f"forensics spectrum: {groups}; {r['errors']} unreadable -> {r['plot']}", file=sys.stderr)


@verb("train-detector", "train a spectral detector on real vs generated images",
      """forensics train-detector --real real/ --fake fakes/ --detector dzanic+-knn --out model/
      forensics train-detector --real builtin --fake fakes/ --detector durall+-lr --target-fpr 0.05 --out model/""")
@arg("--real", required=True, metavar="DIR", help="folder of real images, 'builtin', 'builtin-wide' or 'builtin-all' (built-in patches of 13, 26 or 67 photos)")
@arg("--fake", required=True, metavar="DIR", help="folder of generated images")
@arg("--detector", required=True, metavar="NAME",
     help="published: dzanic-knn, dzanic-svm, dzanic-mlp, durall-lr, durall-svm; the toolkit's variants "
          "carry a +: dzanic+-knn, durall+-lr, ...; any {dzanic,dzanic+,durall,durall+}-{knn,svm,mlp,lr}")
@arg("--out", required=True, metavar="MODEL_DIR", help="folder for model.json, model.npz, metrics.json")
@arg("--preprocess", default="none", metavar="POLICY", help="policy for both classes, stored with the model")
@arg("--test-fraction", type=float, default=0.2, help="held-out share of each class (default 0.2)")
@arg("--target-fpr", type=float, default=None,
     help="set the threshold for this false-positive rate on held-back training reals (default: 0.5)")
@arg("--patch-size", type=int, default=64, help="patch size when --real builtin (default 64)")
@arg("--seed", type=int, default=0)
def cmd_train_detector(a):
    from forensics.detection.training import train_detector

    m = train_detector(a.real, a.fake, a.detector, a.out, a.preprocess, a.seed, a.test_fraction,
                       a.target_fpr, a.patch_size)
    print(f"{a.detector}: held-out real accuracy {m['real_accuracy']:.3f}, generated accuracy "
          f"{m['generated_accuracy']:.3f}, ROC-AUC {m['roc_auc']:.3f} "
          f"(test {m['n_test']['real']} real / {m['n_test']['generated']} generated) -> {a.out}", file=sys.stderr)


@verb("detect", "score images: real or generated, one row per file",
      """forensics detect photos/ --out verdicts.csv               # default model (data/models/default)
      forensics detect a/ b/ --model model/ --out verdicts.json""")
@arg("paths", nargs="+", metavar="PATH", help="folders (searched recursively) or image files")
@arg("--model", default=None, metavar="MODEL_DIR", help="model folder from train-detector, or a shipped model by name: durall-lr, robust-32 (default: the built-in default model)")
@arg("--out", required=True, metavar="FILE", help="output .csv or .json")
@arg("--preprocess", default=None, metavar="POLICY", help="override the model's stored policy")
@arg("--resume", action="store_true", help="continue an interrupted scan into the same --out (skips scored files)")
@arg("--scheduler", default=None, metavar="ADDRESS", help="run on Dask: local[:N] or a scheduler address")
@arg("--device", default="numpy", help="features on numpy (default), or torch on cpu or cuda")
def cmd_detect(a):
    from forensics.detection.detect import DetectConfig, run_detect, summary_line

    cfg = DetectConfig(tuple(a.paths), a.model, a.out, a.preprocess, a.resume, a.scheduler, a.device)
    r = run_detect(cfg)
    print(f"forensics detect: {summary_line(r, a.out)}"
          + (f" ({r['resumed']} kept from the earlier output)" if r["resumed"] else ""), file=sys.stderr)

"""The ``forensics`` command. Each verb parses its arguments and calls one library function."""
from __future__ import annotations

import argparse
import inspect
import sys
import textwrap

from forensics.errors import UserError

VERBS: dict[str, dict] = {}


def verb(name: str, help: str, example: str):
    """Register ``fn(args)`` as verb ``name`` with ``help`` and an example for ``--help``."""
    def deco(fn):
        VERBS[name] = {"fn": fn, "help": help, "example": inspect.cleandoc(example)}
        return fn
    return deco


VERBS_ARGS: dict[str, list] = {}


def arg(*a, **kw):
    """An ``argparse`` argument of the verb below (decorators apply bottom-up)."""
    def deco(fn):
        VERBS_ARGS.setdefault(fn.__name__, []).insert(0, (a, kw))
        return fn
    return deco


# ---------------------------------------------------------------------------------- verbs
@verb("spectrum", "azimuthal spectra and decay features of folders of images",
      "forensics spectrum real/ fakes/ --out spec/   # writes profiles.csv, features.csv, spectrum.png")
@arg("paths", nargs="+", metavar="PATH", help="folders (searched recursively) or image files; one group each")
@arg("--out", required=True, metavar="DIR", help="output folder")
@arg("--preprocess", default="none", metavar="POLICY", help="none | crop:S | resize:S[:FILTER] (default none)")
def cmd_spectrum(a):
    from forensics.analyze import spectrum_report

    r = spectrum_report(a.paths, a.out, a.preprocess)
    groups = ", ".join(f"{g} (n={n})" for g, n in r["groups"])
    print(f"forensics spectrum: {groups}; {r['errors']} unreadable -> {a.out}/spectrum.png", file=sys.stderr)


@verb("train-detector", "train a spectral detector on real vs generated images",
      """forensics train-detector --real real/ --fake fakes/ --detector dzanic-knn --out model/
      forensics train-detector --real builtin --fake fakes/ --detector durall-lr --target-fpr 0.05 --out model/""")
@arg("--real", required=True, metavar="DIR", help="folder of real images, or 'builtin' (built-in patches)")
@arg("--fake", required=True, metavar="DIR", help="folder of generated images")
@arg("--detector", required=True, metavar="NAME",
     help="dzanic-knn, dzanic-svm, dzanic-mlp, durall-lr, durall-svm, or any "
          "{dzanic,dzanic-faithful,durall}-{knn,svm,mlp,lr}")
@arg("--out", required=True, metavar="MODEL_DIR", help="folder for model.json, model.npz, metrics.json")
@arg("--preprocess", default="none", metavar="POLICY", help="policy for both classes, stored with the model")
@arg("--test-fraction", type=float, default=0.2, help="held-out share of each class (default 0.2)")
@arg("--target-fpr", type=float, default=None,
     help="set the threshold for this false-positive rate on held-back training reals (default: 0.5)")
@arg("--patch-size", type=int, default=64, help="patch size when --real builtin (default 64)")
@arg("--seed", type=int, default=0)
def cmd_train_detector(a):
    from forensics.detect import train_detector

    m = train_detector(a.real, a.fake, a.detector, a.out, a.preprocess, a.seed, a.test_fraction,
                       a.target_fpr, a.patch_size)
    print(f"{a.detector}: held-out real accuracy {m['real_accuracy']:.3f}, generated accuracy "
          f"{m['generated_accuracy']:.3f}, ROC-AUC {m['roc_auc']:.3f} "
          f"(test {m['n_test']['real']} real / {m['n_test']['generated']} generated) -> {a.out}", file=sys.stderr)


@verb("detect", "score images: real or generated, one row per file",
      """forensics detect photos/ --out verdicts.csv               # default model (data/models/default)
      forensics detect a/ b/ --model model/ --out verdicts.json""")
@arg("paths", nargs="+", metavar="PATH", help="folders (searched recursively) or image files")
@arg("--model", default=None, metavar="MODEL_DIR", help="model folder from train-detector (default: built-in)")
@arg("--out", required=True, metavar="FILE", help="output .csv or .json")
@arg("--preprocess", default=None, metavar="POLICY", help="override the model's stored policy")
def cmd_detect(a):
    from forensics.detect import detect, summary_line

    rows = detect(a.paths, a.model, a.out, a.preprocess)
    print(f"forensics detect: {summary_line(rows, a.out)}", file=sys.stderr)


# ----------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="forensics",
        description="Spectral forensics of CNN-generated images.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + "\n".join(
            "  " + v["example"].splitlines()[0] for v in VERBS.values()) + "\n\n'forensics VERB --help' for more.")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    for name, v in VERBS.items():
        sp = sub.add_parser(name, help=v["help"], description=v["help"],
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="example:\n" + textwrap.indent(v["example"], "  "))
        for args, kw in VERBS_ARGS.get(v["fn"].__name__, []):
            sp.add_argument(*args, **kw)
        sp.set_defaults(_fn=v["fn"])
    return p


def main(argv=None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    if not getattr(a, "_fn", None):
        p.print_help()
        return 2
    try:
        a._fn(a)
    except UserError as e:
        print(f"forensics: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("forensics: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("forensics: error: out of memory (try fewer or smaller images)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

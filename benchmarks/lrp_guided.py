"""Explanation-guided training (Sun et al., arXiv 2007.08790) where the paper says it helps:
generalisation to an unseen domain, here an unseen *generator*.

    nice python benchmarks/lrp_guided.py --out runs/lrp_guided [--seeds 10] [--input pixels]

Real images: the built-in 32 px patches. Generators: four simulated upsampling families
applied to *other* built-in patches (area ×½, then ×2 by): ``transposed`` (a stride-2
transposed conv with a noisy bilinear kernel, forensics.generators.simulate), ``nearest``
(pixel repetition), ``bilinear`` (exact bilinear interpolation) and ``zero`` (zero insertion,
then a Gaussian low-pass of random σ: an imperfect interpolator that leaves spectral replicas).

Per seed (which draws the data split, the network's initialisation and the augmentation):

* **leave-one-generator-out**: for each generator g, train the small CNN detector on real vs
  the other three (``n_per_gen`` each, ``3·n_per_gen`` reals), plain (λ = 0) and guided
  (λ = ``guidance``); test on held-out reals vs g: ROC-AUC and balanced accuracy at 0.5;
* **few-shot adaptation**: fine-tune each of those two models on k = 1, 5, 10 images of g
  plus k reals (batch norm frozen; guided models keep guidance, λ = ``guidance_1shot`` at
  k = 1 as in the paper), then test as above.

**Real generators** (``--study STUDY``): the generators are the setups of a counterexample
study, ``STUDY/fakes/<setup>/*.png`` (centre-cropped to ``size``); real images are
``STUDY/real/images.npz`` (what ``forensics counterexample`` stores), else a folder of images
``STUDY/real/``, else the built-in patches. Per seed each setup's images and the reals are
permuted; the first ``n_test`` are its test set, the rest its training pool. Leave-one-out
then trains on ``n_per_gen`` images of every other setup (``--n-fake-train N``: N in all,
split evenly over them) and as many reals, and tests on the held-out setup's test images;
few-shot draws its k images from the held-out setup's training pool. ``--held-out a,b``
restricts which setups are held out; ``--workers N`` runs (seed, held-out) tasks in N
processes (one torch thread each; the results do not depend on N). ``--families`` holds out a
whole family of setups at once (the setups sharing the letter before the first dot: every
``B.*``, every ``N.*``, ...; ``baseline`` alone): trained on the other families, tested on
``n_test`` images drawn from all the family's test sets, few-shot images drawn from its pools.

    nice python benchmarks/lrp_guided.py --study demo --out runs/lrpg_demo3

Writes ``config.json`` (settings, seeds, versions), ``results.json`` (every run and the
mean ± std over seeds, with the paired guided − plain differences) and prints a table.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from forensics.core.config import Config  # noqa: E402

GENERATORS = ("transposed", "nearest", "bilinear", "zero")


@dataclasses.dataclass(frozen=True)
class GuidedStudyConfig(Config):
    seeds: tuple[int, ...] = tuple(range(10))
    size: int = 32
    input: str = "pixels"
    channels: tuple[int, ...] = (8, 16, 32)
    epochs: int = 10
    batch: int = 32
    lr: float = 2e-3
    guidance: float = 1.0  #: λ (the paper's 5-shot value)
    guidance_1shot: float = 0.5  #: λ at k = 1 (the paper's 1-shot value)
    n_per_gen: int = 150  #: training images per seen generator
    n_test: int = 250  #: test images of the held-out generator and of reals
    shots: tuple[int, ...] = (1, 5, 10)
    finetune_epochs: int = 20
    finetune_lr: float = 1e-3
    threads: int = 1
    study: str | None = None  #: a study folder with fakes/<setup>/ (None: the simulated generators)
    real: str | None = None  #: real images for a study (None: STUDY/real, else the built-in patches)
    held_out: tuple[str, ...] = ()  #: generators to hold out (empty: every one)
    n_fake_train: int | None = None  #: study: fake training images in all, split over the seen setups
    workers: int = 1  #: processes running (seed, held-out) tasks
    families: bool = False  #: study: hold out families of setups (B.*, N.*, Z.*, ...) instead of single setups

    def validate(self):
        if not self.seeds or min(self.shots) < 1 or self.n_per_gen < max(self.shots):
            raise ValueError("need seeds, shots >= 1 and n_per_gen >= the largest shot")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if self.n_fake_train is not None and self.n_fake_train < 1:
            raise ValueError(f"n_fake_train must be positive, not {self.n_fake_train}")


def _half(images: np.ndarray) -> np.ndarray:
    """Area ×½ (the mean of each 2×2 block), float64."""
    x = images.astype(np.float64)
    return 0.25 * (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2])


def fake_images(images: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """Images of generator family ``kind`` made from real uint8 ``(N, S, S, 3)`` images."""
    import cv2

    from forensics.generators.simulate import _BILINEAR, simulate_upsampling, transposed_upsample

    if kind == "transposed":
        return simulate_upsampling(images, seed=seed)
    small = _half(images)
    n = len(images)
    if kind == "nearest":
        up = small.repeat(2, axis=1).repeat(2, axis=2)
    elif kind == "bilinear":
        up = transposed_upsample(small, np.broadcast_to(_BILINEAR, (n, 4, 4)))
    elif kind == "zero":
        z = np.zeros((n, 2 * small.shape[1], 2 * small.shape[2], 3))
        z[:, ::2, ::2] = 4.0 * small
        sig = np.random.default_rng(seed).uniform(0.6, 1.0, size=n)
        up = np.stack([cv2.GaussianBlur(z[i], (0, 0), float(sig[i]), borderType=cv2.BORDER_REFLECT)
                       for i in range(n)])
    else:
        raise ValueError(f"unknown generator {kind!r}")
    return np.clip(np.rint(up), 0, 255).astype(np.uint8)


def split(real_all: np.ndarray, cfg: GuidedStudyConfig, seed: int):
    """Disjoint draws of the built-in patches: training reals, test reals, and per generator
    its training and test images (made from patches used nowhere else)."""
    rng = np.random.default_rng([seed, 7])
    idx = rng.permutation(len(real_all))
    n_tr = 3 * cfg.n_per_gen
    need = n_tr + cfg.n_test + len(GENERATORS) * (cfg.n_per_gen + cfg.n_test)
    if need > len(real_all):
        raise ValueError(f"the study needs {need} patches, the built-in set has {len(real_all)}")
    real_tr, real_te = real_all[idx[:n_tr]], real_all[idx[n_tr:n_tr + cfg.n_test]]
    pos = n_tr + cfg.n_test
    gens = {}
    for j, g in enumerate(GENERATORS):
        src = real_all[idx[pos:pos + cfg.n_per_gen + cfg.n_test]]
        pos += cfg.n_per_gen + cfg.n_test
        made = fake_images(src, g, seed=1000 * seed + j)
        gens[g] = (made[:cfg.n_per_gen], made[cfg.n_per_gen:])
    return real_tr, real_te, gens


def study_generators(study) -> list[str]:
    """The setups of a study folder: every folder under ``fakes/`` that holds images (nested
    ones, e.g. an objective's ``fakes/<objective>/<setup>/``, named by their relative path)."""
    from forensics.io.images import scan

    root = Path(study) / "fakes"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no fakes folder (expected fakes/<setup>/*.png)")
    names = sorted(str(d.relative_to(root)) for d in root.rglob("*")
                   if d.is_dir() and any(f.parent == d for f in scan(d)))
    if len(names) < 2:
        raise ValueError(f"{root}: {len(names)} setup folder(s) with images; leave-one-out needs at least 2")
    return names


def family(setup: str) -> str:
    """The family of a setup label: the letter before its first dot (``B.1.5`` -> ``B``), under its
    objective folder if any (``infomax/N.1.5`` -> ``infomax/N``); ``baseline`` is its own family."""
    head, _, last = setup.rpartition("/")
    return (head + "/" if head else "") + last.split(".")[0]


def load_study(cfg: GuidedStudyConfig) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """Real images and each setup's fakes of ``cfg.study`` (uint8, ``size`` px) and where the reals came from."""
    from forensics.io.sources import load_source

    root = Path(cfg.study)
    crop = f"crop:{cfg.size}"
    fakes = {g: load_source(str(root / "fakes" / g), cfg.size, policy=crop).images for g in study_generators(root)}
    real = cfg.real
    if real is None:
        if (root / "real" / "images.npz").is_file():
            real = str(root / "real" / "images.npz")
        elif (root / "real").is_dir():
            real = str(root / "real")
        else:
            real = "builtin"
    imgs = load_source(real, cfg.size, policy=None if real == "builtin" else crop).images
    return imgs, fakes, real


def split_study(real_all: np.ndarray, fakes: dict[str, np.ndarray], cfg: GuidedStudyConfig, seed: int):
    """Per seed: the reals and each setup's images permuted; the first ``n_test`` of each are
    its test set, the rest its training pool (``(pool, test)`` per setup, as :func:`split`)."""
    rng = np.random.default_rng([seed, 7])
    idx = rng.permutation(len(real_all))
    real_te, real_tr = real_all[idx[:cfg.n_test]], real_all[idx[cfg.n_test:]]
    gens = {}
    for g, im in fakes.items():
        j = rng.permutation(len(im))
        gens[g] = (im[j[cfg.n_test:]], im[j[:cfg.n_test]])
    return real_tr, real_te, gens


def evaluate(det, real_te, fake_te) -> dict:
    from forensics.metrics.rates import detection_rate, real_accuracy, roc_auc

    p = det.predict_proba(np.r_[real_te, fake_te])[:, 1]
    pr, pf = p[:len(real_te)], p[len(real_te):]
    return {"auc": roc_auc(pr, pf), "balanced_accuracy": 0.5 * (real_accuracy(pr, 0.5) + detection_rate(pf, 0.5))}


def summarize(runs: list[dict], shots, generators=GENERATORS) -> list[dict]:
    """Mean ± std over seeds per held-out generator and shot count, plain vs guided, with the
    paired (same seed, same split) difference and how many runs guidance won."""
    from forensics.metrics.rates import mean_std

    summary = []
    held_outs = [g for g in generators if any(r["held_out"] == g for r in runs)]
    for held in held_outs + ["all"]:
        for k in (0, *shots):
            sel = [r for r in runs if r["shots"] == k and (held == "all" or r["held_out"] == held)]
            plain = sorted((r for r in sel if not r["guided"]), key=lambda r: (r["seed"], r["held_out"]))
            guided = sorted((r for r in sel if r["guided"]), key=lambda r: (r["seed"], r["held_out"]))
            entry = {"held_out": held, "shots": k, "n": len(plain)}
            for m in ("auc", "balanced_accuracy"):
                a = np.array([r[m] for r in plain])
                b = np.array([r[m] for r in guided])
                entry[m] = {"plain": mean_std(a), "guided": mean_std(b), "guided_minus_plain": mean_std(b - a),
                            "guided_better_runs": int((b > a).sum())}
            summary.append(entry)
    return summary


_DATA: dict = {}  # per process: the loaded images (a study's, or the built-in patches)


def _load(cfg: GuidedStudyConfig) -> dict:
    if _DATA.get("cfg") != cfg:
        from forensics.io.sources import load_source

        _DATA.clear()
        _DATA["cfg"] = cfg
        if cfg.study:
            _DATA["real"], _DATA["fakes"], _DATA["real_source"] = load_study(cfg)
            _DATA["generators"] = tuple(_DATA["fakes"])
        else:
            _DATA["real"], _DATA["real_source"] = load_source("builtin", cfg.size).images, "builtin"
            _DATA["generators"] = GENERATORS
        units: dict[str, list[str]] = {}  # what one task holds out
        for g in _DATA["generators"]:
            units.setdefault(family(g) if cfg.families else g, []).append(g)
        _DATA["units"] = units
    return _DATA


def _split(cfg: GuidedStudyConfig, seed: int):
    d = _load(cfg)
    if cfg.study:
        return split_study(d["real"], d["fakes"], cfg, seed)
    return split(d["real"], cfg, seed)


def task_data(cfg: GuidedStudyConfig, seed: int, held: str) -> dict:
    """What the task (``seed``, ``held``) trains and tests on: ``X, y`` (reals then the seen
    generators' images), the test reals, the held-out unit's training pool and test images, and
    the few-shot picks (indices into the pool and into the training reals) per k."""
    d = _load(cfg)
    generators, units = d["generators"], list(d["units"])
    members = d["units"][held]
    real_tr, real_te, gens = _split(cfg, seed)
    seen = [g for g in generators if g not in members]
    if len(members) > 1:  # a family: its pools together, n_test of its test images
        test = np.concatenate([gens[m][1] for m in members])
        pick = np.random.default_rng([seed, 13, units.index(held)]).permutation(len(test))[:cfg.n_test]
        pool = np.concatenate([gens[m][0] for m in members])
    else:
        pool, test, pick = gens[held][0], gens[held][1], slice(None)
    per_seen = cfg.n_per_gen if cfg.n_fake_train is None else max(1, cfg.n_fake_train // len(seen))
    n_real = per_seen * len(seen)
    if n_real > len(real_tr) or any(per_seen > len(gens[g][0]) for g in seen):
        raise ValueError(f"{per_seen} training images per seen generator and {n_real} reals asked for; "
                         f"there are {len(real_tr)} reals and {min(len(gens[g][0]) for g in seen)} per generator")
    X = np.concatenate([real_tr[:n_real], *[gens[g][0][:per_seen] for g in seen]])
    y = np.r_[np.zeros(n_real), np.ones(len(X) - n_real)]
    fs_rng = np.random.default_rng([seed, 11, units.index(held)])
    fs_pick = {k: (fs_rng.choice(len(pool), k, replace=False), fs_rng.choice(n_real, k, replace=False))
               for k in cfg.shots}
    return {"X": X, "y": y, "real_tr": real_tr, "real_te": real_te, "pool": pool, "test": test[pick],
            "few_shot": fs_pick}


def run_task(cfg: GuidedStudyConfig, seed: int, held: str) -> list[dict]:
    """Leave ``held`` out with seed ``seed``: plain and guided training, then few-shot fine-tuning."""
    import copy

    import torch

    from forensics.detectors.cnn import CNNConfig, CNNDetector

    torch.set_num_threads(cfg.threads)
    t = task_data(cfg, seed, held)
    X, y, real_tr, real_te, pool, test = t["X"], t["y"], t["real_tr"], t["real_te"], t["pool"], t["test"]
    rows = []
    for lam in (0.0, cfg.guidance):
        ccfg = CNNConfig(size=cfg.size, input=cfg.input, channels=cfg.channels, epochs=cfg.epochs,
                         batch=cfg.batch, lr=cfg.lr, guidance=lam, seed=seed)
        det = CNNDetector(ccfg).fit(X, y)
        rows.append({"seed": seed, "held_out": held, "guided": lam > 0, "lambda": lam, "shots": 0,
                     **evaluate(det, real_te, test)})
        for k in cfg.shots:
            fi, ri = t["few_shot"][k]
            ft = copy.deepcopy(det)
            lam_k = 0.0 if lam == 0 else (cfg.guidance_1shot if k == 1 else lam)
            ft.train(np.r_[real_tr[ri], pool[fi]], np.r_[np.zeros(k), np.ones(k)],
                     cfg.finetune_epochs, lr=cfg.finetune_lr, seed_offset=k, freeze_bn=True,
                     guidance=lam_k)
            rows.append({"seed": seed, "held_out": held, "guided": lam > 0, "lambda": lam_k, "shots": k,
                         **evaluate(ft, real_te, test)})
    return rows


def _task(args):
    return run_task(*args)


def run(cfg: GuidedStudyConfig, out: Path) -> dict:
    from forensics.io.files import write_config, write_json

    d = _load(cfg)
    generators = list(d["units"])  # what is held out: generators, or families of them
    held_outs = list(cfg.held_out) or generators
    unknown = [h for h in held_outs if h not in generators]
    if unknown:
        raise ValueError(f"unknown held-out generator(s) {', '.join(unknown)}; the generators are {', '.join(generators)}")
    write_config(out, {"study": "lrp_guided", "config": cfg.to_dict(), "generators": generators,
                       "members": d["units"], "held_out": held_outs, "real": d["real_source"], "n_real_images": int(len(d["real"])),
                       "n_fake_images": {g: int(len(v)) for g, v in d.get("fakes", {}).items()} or None})
    tasks = [(cfg, seed, held) for seed in cfg.seeds for held in held_outs]
    runs: list[dict] = []
    t0 = time.time()

    def done(rows):
        runs.extend(rows)
        z = [r for r in rows if r["shots"] == 0]
        print(f"seed {z[0]['seed']} held-out {z[0]['held_out']:10s} AUC plain {z[0]['auc']:.3f} guided "
              f"{z[1]['auc']:.3f} ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
        write_json(out / "runs.json", sorted(runs, key=lambda r: (r["seed"], generators.index(r["held_out"]))))

    if cfg.workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(cfg.workers) as pool:
            for rows in pool.imap_unordered(_task, tasks):
                done(rows)
    else:
        for t in tasks:
            done(run_task(*t))
    runs.sort(key=lambda r: (r["seed"], generators.index(r["held_out"])))
    summary = summarize(runs, cfg.shots, generators)
    res = {"config": cfg.to_dict(), "generators": generators, "seconds": time.time() - t0, "summary": summary,
           "runs": runs}
    write_json(out / "results.json", res)
    return res


def table(res: dict) -> str:
    lines = ["| held-out generator | shots | AUC plain | AUC guided | Δ (guided − plain) | guided better | "
             "bal. acc. plain | bal. acc. guided |", "|---|---|---|---|---|---|---|---|"]
    for e in res["summary"]:
        a, b = e["auc"], e["balanced_accuracy"]
        f = lambda d: f"{d['mean']:.3f} ± {d['std']:.3f}"  # noqa: E731
        lines.append(f"| {e['held_out']} | {e['shots']} | {f(a['plain'])} | {f(a['guided'])} | "
                     f"{a['guided_minus_plain']['mean']:+.3f} ± {a['guided_minus_plain']['std']:.3f} | "
                     f"{a['guided_better_runs']}/{e['n']} | {f(b['plain'])} | {f(b['guided'])} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--summarize", action="store_true",
                    help="only summarise the runs.json (and config.json) already in --out, e.g. of an interrupted study")
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    ap.add_argument("--input", default="pixels", choices=["pixels", "spectrum"])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--n-per-gen", type=int, default=None, help="training images per seen generator")
    ap.add_argument("--n-test", type=int, default=None, help="test images per class")
    ap.add_argument("--study", default=None, help="take the generators from a study folder (fakes/<setup>/*.png)")
    ap.add_argument("--real", default=None, help="real images for --study (default: STUDY/real, else builtin)")
    ap.add_argument("--held-out", default=None, help="comma-separated generators to hold out (default: all)")
    ap.add_argument("--n-fake-train", type=int, default=None,
                    help="fake training images in all, split over the seen generators (default: n-per-gen each)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default 1)")
    ap.add_argument("--families", action="store_true", default=None,
                    help="with --study: hold out whole families of setups (B.*, N.*, Z.*, baseline)")
    a = ap.parse_args(argv)
    if a.summarize:
        from forensics.io.files import read_json, write_json

        cfg = GuidedStudyConfig.load(Path(a.out) / "config.json")
        runs = read_json(Path(a.out) / "runs.json")
        gens = read_json(Path(a.out) / "config.json").get("generators") or GENERATORS
        res = {"config": cfg.to_dict(), "partial": True, "seeds_done": sorted({r["seed"] for r in runs}),
               "summary": summarize(runs, cfg.shots, tuple(gens)), "runs": runs}
        write_json(Path(a.out) / "results_partial.json", res)
        print(table(res))
        print(f"seeds done: {res['seeds_done']}")
        return
    over = {"epochs": a.epochs, "n_per_gen": a.n_per_gen, "n_test": a.n_test, "study": a.study, "real": a.real,
            "held_out": tuple(a.held_out.split(",")) if a.held_out else None, "n_fake_train": a.n_fake_train,
            "workers": a.workers, "families": a.families}
    cfg = GuidedStudyConfig(seeds=tuple(range(a.seeds)), input=a.input,
                            **{k: v for k, v in over.items() if v is not None})
    res = run(cfg, Path(a.out))
    print(table(res))
    print(f"({res['seconds']:.0f} s) -> {Path(a.out) / 'results.json'}")


if __name__ == "__main__":
    main()

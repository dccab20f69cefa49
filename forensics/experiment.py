"""The counterexample study of Chandrasegaran et al. as stages that cache their outputs.

For one real source and one GAN, each last-layer setup is trained, sampled, and turned
into spectral features; detectors trained on *real vs baseline* are then scored on every
setup's fakes. Stages (each skipped when its output exists with the same settings):

1. ``real/``: the real images (``images.npz``) and their manifest;
2. ``runs/<setup>/``: the GAN runs (an unfinished or shorter run is resumed);
3. ``fakes/<setup>/``: ``n_fake`` PNGs per setup, sampled with a fixed seed;
4. ``features/<feature set>/<group>.npz``;
5. ``results.json`` (protocol below), ``report.md`` and ``report.html``.

Protocol, per detector and repetition ``r`` (seed ``seed + r``, ``reps`` of them): draw
``n_train`` real and ``n_train`` baseline images without replacement; train on them; the
held-out reals give the real-image accuracy; each setup's detection rate is the share of
its held-out fakes called generated (for the baseline, the fakes not drawn for training;
for other setups, all of them); ROC-AUC is held-out reals vs that setup's fakes. Means and
standard deviations over repetitions. The ``matrix`` repeats this with every setup in
the baseline's place ("trained on real vs setup i, tested on setup j").
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from forensics import metrics
from forensics.errors import UserError
from forensics.io import read_json, read_npz, write_config, write_json, write_npz
from forensics.progress import bar

DEFAULT_DETECTORS = ("dzanic-knn", "dzanic-svm", "dzanic-mlp", "durall-lr", "durall-svm")
DEMO = {"real": "builtin", "gan": "dcgan", "setups": ["baseline", "N.1.5", "B.1.5", "Z.1.5"], "size": 32,
        "steps": 1500, "n_fake": 1000, "gan_preset": "tiny"}
#: ``--preset paper``: the paper's 128 px GANs, all 13 setups, epochs as in the paper
PAPER = {"gans": ["dcgan", "lsgan", "wgan-gp"], "size": 128, "n_fake": 1000, "gan_preset": "paper",
         "epochs": {"dcgan": 50, "lsgan": 50, "wgan-gp": 100},
         "detectors": ["dzanic-faithful-knn", "dzanic-faithful-svm", "dzanic-faithful-mlp", "durall-lr", "durall-svm"],
         "policy": "resize:128:area"}


def _fingerprint(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stage_done(folder: Path, key: dict) -> bool:
    f = folder / "stage.json"
    return f.is_file() and read_json(f).get("fingerprint") == _fingerprint(key)


def _mark_done(folder: Path, key: dict, **extra) -> None:
    """Record that a stage finished with these settings (``extra``: e.g. the step reached)."""
    write_json(folder / "stage.json", {"fingerprint": _fingerprint(key), "settings": key, **extra})


def paper_plan(real: str, out, setups=None, steps=None, n_real_images: int | None = None, seed: int = 2021) -> list[dict]:
    """Experiment configurations of ``--preset paper``: one per GAN, written to ``out/<gan>``.
    Steps follow the paper's epochs (DCGAN/LSGAN 50, WGAN-GP 100, over the real set) unless
    ``steps`` is given; ``n_real_images`` is the real set's size when known."""
    from forensics.generators.layers import PAPER_SETUPS
    from forensics.generators.presets import preset

    plans = []
    for gan in PAPER["gans"]:
        p = preset("paper", gan)
        n_critic = 5 if gan == "wgan-gp" else 1
        if steps is None:
            if n_real_images is None:
                raise UserError("--preset paper needs --steps, or a real set whose size is known")
            gan_steps = int(np.ceil(PAPER["epochs"][gan] * n_real_images / (p["batch"] * n_critic)))
        else:
            gan_steps = steps
        plans.append({"real": real, "gan": gan, "setups": list(setups or PAPER_SETUPS), "size": PAPER["size"],
                      "steps": gan_steps, "n_fake": PAPER["n_fake"], "gan_preset": "paper",
                      "detectors": list(PAPER["detectors"]), "seed": seed, "policy": PAPER["policy"],
                      "out": str(Path(out) / gan), "params": p})
    return plans


class Experiment:
    def __init__(self, real: str, gan: str, setups, size: int, steps: int, n_fake: int, out, seed: int = 0,
                 detectors=DEFAULT_DETECTORS, gan_preset: str = "tiny", n_train: int = 100, reps: int = 10,
                 n_real: int | None = None, policy: str | None = None, device: str = "auto",
                 progress: bool = True, gan_overrides: dict | None = None):
        from forensics.detectors import make_detector
        from forensics.generators.layers import LastLayerSpec

        try:
            setups = [str(LastLayerSpec.parse(s)) for s in setups]
        except ValueError as e:
            raise UserError(str(e))
        if "baseline" not in setups:
            raise UserError("--setups must include baseline: the detectors are trained on real vs baseline")
        if n_fake <= n_train:
            raise UserError(f"--n-fake ({n_fake}) must exceed the {n_train} training images per class")
        for d in detectors:
            make_detector(d)  # validates the names up front
        self.real, self.gan, self.setups, self.size, self.steps = real, gan, list(setups), size, steps
        self.n_fake, self.out, self.seed, self.detectors = n_fake, Path(out), seed, list(detectors)
        self.gan_preset, self.n_train, self.reps, self.n_real = gan_preset, n_train, reps, n_real
        self.policy, self.device, self.progress = policy, device, progress
        self.gan_overrides = gan_overrides or {}
        self.timings: dict[str, float] = {}

    def log(self, msg: str) -> None:
        if self.progress:
            print(f"[counterexample] {msg}", file=sys.stderr, flush=True)

    @property
    def config(self) -> dict:
        return {"real": self.real, "gan": self.gan, "setups": self.setups, "size": self.size, "steps": self.steps,
                "n_fake": self.n_fake, "seed": self.seed, "detectors": self.detectors, "gan_preset": self.gan_preset,
                "gan_overrides": self.gan_overrides, "n_train": self.n_train, "reps": self.reps,
                "n_real": self.n_real, "policy": self.policy}

    # ---------------------------------------------------------------------------- stages
    @property
    def real_key(self) -> dict:
        """What the real set depends on (its stage's and its features' cache key)."""
        return {"real": self.real, "size": self.size, "n_real": self.n_real, "seed": self.seed, "policy": self.policy}

    def stage_real(self) -> np.ndarray:
        from forensics.data import load_source

        folder = self.out / "real"
        key = self.real_key
        if _stage_done(folder, key):
            return read_npz(folder / "images.npz")["images"]
        self.log(f"loading real images from {self.real}")
        ds = load_source(self.real, self.size, n=self.n_real, seed=self.seed, policy=self.policy, progress=self.progress)
        if len(ds) <= self.n_train:
            raise UserError(f"{self.real}: {len(ds)} real images, need more than {self.n_train}")
        write_npz(folder / "images.npz", images=ds.images)
        write_json(folder / "manifest.json", ds.manifest)
        _mark_done(folder, key)
        return ds.images

    def stage_train(self, setup: str) -> Path:
        from forensics.generators.config import GanConfig
        from forensics.generators.trainer import CHECKPOINT, train_gan

        run = self.out / "runs" / setup
        key = {"gan": self.gan, "setup": setup, "data": self.real, "size": self.size, "preset": self.gan_preset,
               "overrides": self.gan_overrides, "seed": self.seed, "n_real": self.n_real}
        ckpt = run / CHECKPOINT
        resume = ckpt.is_file() and _stage_done(run, key)
        if resume and read_json(run / "stage.json").get("step", 0) >= self.steps:
            return run
        if ckpt.is_file() and not resume:
            raise UserError(f"{run} holds a run with other settings; remove it or use another --out")
        self.log(f"training {self.gan} {setup} to step {self.steps}" + (" (resuming)" if resume else ""))
        if not resume:
            _mark_done(run, key, step=0)  # an interrupted run is then recognised and resumed
        t0 = time.perf_counter()
        train_gan(GanConfig.from_preset(self.gan_preset, self.gan, self.gan_overrides, last_layer=setup,
                                        data=self.real, size=self.size, steps=self.steps, seed=self.seed,
                                        device=self.device, n_images=self.n_real, sample_every=max(self.steps, 1),
                                        checkpoint_every=max(500, self.steps // 20)),
                  run, resume, progress=self.progress)
        self.timings[f"train {setup}"] = time.perf_counter() - t0
        _mark_done(run, key, step=self.steps)
        return run

    def stage_fakes(self, setup: str, run: Path) -> np.ndarray:
        from forensics.images import iter_loaded, scan
        from forensics.report import write_png
        from forensics.generators.sampling import sample_images
        from forensics.generators.trainer import load_run

        folder = self.out / "fakes" / setup
        key = {"run": str(run), "step": self.steps, "n": self.n_fake, "seed": self.seed + 1}
        files = [folder / f"{i:06d}.png" for i in range(self.n_fake)]
        if _stage_done(folder, key):
            return np.stack([r.image for r in iter_loaded(files)])
        for f in scan(folder) if folder.is_dir() else []:
            f.unlink()  # samples of other settings
        task, _ = load_run(run, self.device)
        imgs = np.concatenate(list(sample_images(task, self.n_fake, seed=self.seed + 1)))
        for f, im in zip(files, imgs):
            write_png(f, im)
        _mark_done(folder, key)
        return imgs

    def stage_features(self, name: str, group: str, images: np.ndarray, source_key: dict) -> np.ndarray:
        from forensics import spectrum

        f = self.out / "features" / name / f"{group}.npz"
        key = {**source_key, "features": name}
        if f.is_file():
            z = read_npz(f)
            if str(z["key"]) == _fingerprint(key):
                return z["X"]
        X = spectrum.features(images, name)
        write_npz(f, X=X, key=np.array(_fingerprint(key)))
        return X

    # ------------------------------------------------------------------------ evaluation
    def evaluate(self, feats: dict[str, dict[str, np.ndarray]]) -> tuple[dict, dict]:
        """``feats[feature set][group]``; returns the ``detectors`` and ``matrix`` results."""
        from forensics.detectors import make_detector

        det_out, matrix = {}, {}
        n_r = len(next(iter(feats.values()))["real"])
        total = len(self.detectors) * len(self.setups) * self.reps
        with bar(total=total, desc="detectors", enabled=self.progress) as pb:
            for name in self.detectors:
                fs = make_detector(name).features
                F = feats[fs]
                per_train = {}
                for train_setup in self.setups:
                    acc = {"real_accuracy": [], "rates": {s: [] for s in self.setups},
                           "aucs": {s: [] for s in self.setups}}
                    for r in range(self.reps):
                        rng = np.random.default_rng(self.seed + r)
                        ri = rng.permutation(n_r)
                        fi = rng.permutation(self.n_fake)
                        tr_r, te_r = ri[:self.n_train], ri[self.n_train:]
                        tr_f, te_f = fi[:self.n_train], fi[self.n_train:]
                        det = make_detector(name, seed=self.seed + r).fit(F["real"][tr_r], F[train_setup][tr_f])
                        sr = det.score(F["real"][te_r])
                        acc["real_accuracy"].append(metrics.real_accuracy(sr, det.threshold_))
                        for s in self.setups:
                            sf = det.score(F[s][te_f] if s == train_setup else F[s])
                            acc["rates"][s].append(metrics.detection_rate(sf, det.threshold_))
                            acc["aucs"][s].append(metrics.roc_auc(sr, sf))
                        pb.update(1)
                    per_train[train_setup] = acc
                base = per_train["baseline"]
                det_out[name] = {s: {"detection_rate": metrics.mean_std(base["rates"][s]),
                                     "real_accuracy": metrics.mean_std(base["real_accuracy"]),
                                     "auc": metrics.mean_std(base["aucs"][s])} for s in self.setups}
                matrix[name] = {t: {"real_accuracy": metrics.mean_std(per_train[t]["real_accuracy"]),
                                    "detection_rate": {s: metrics.mean_std(per_train[t]["rates"][s]) for s in self.setups}}
                                for t in self.setups}
        return det_out, matrix

    # ------------------------------------------------------------------------------- run
    def run(self) -> dict:
        from forensics.detectors import make_detector

        t0 = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        write_config(self.out, {"command": "counterexample", **self.config})
        real = self.stage_real()
        fakes = {}
        for s in self.setups:
            run = self.stage_train(s)
            fakes[s] = self.stage_fakes(s, run)
        fsets = sorted({make_detector(d).features for d in self.detectors})
        feats = {fs: {"real": self.stage_features(fs, "real", real, self.real_key)} for fs in fsets}
        for fs in fsets:
            for s in self.setups:
                feats[fs][s] = self.stage_features(fs, s, fakes[s], {"setup": s, "steps": self.steps,
                                                                    "n": self.n_fake, "seed": self.seed})
        self.log("training and scoring detectors")
        det_out, matrix = self.evaluate(feats)
        results = {"config": {**self.config, "n_real_images": int(len(real)),
                              "protocol": "train on n_train real + n_train baseline (without replacement), "
                                          "test on the rest; reps seeded seed + r"},
                   "detectors": det_out, "matrix": matrix}
        write_json(self.out / "results.json", results)
        from forensics.report import write_experiment_report

        paths = write_experiment_report(self.out, results, real, fakes)
        self.timings["total"] = time.perf_counter() - t0
        write_json(self.out / "timings.json", self.timings)
        return {"results": results, "report": paths}

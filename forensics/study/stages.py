"""The counterexample study of Chandrasegaran et al. as stages that cache their outputs.

For one real source and one GAN, each image source (objective x quantization x last-layer
setup, :class:`Source`) is trained, sampled, and turned into features; detectors trained on
*real vs baseline* are then scored on every source's fakes. Stages, each with a chained key
(its own settings + its upstream stage's key + what it produced) and skipped when the key
still matches:

1. ``real/``: the real images (``images.npz``) and their manifest;
2. ``runs/<source>/``: the GAN runs (an unfinished or shorter run is resumed; a longer one refused), and
   those of the diffusion-era sources (``source_specs``, e.g. ``runs/ae-kl_N.1.3/``; autoencoders train on
   ``real/source-train/``, the real images they do not reconstruct);
3. ``fakes/<source>/``: ``n_fake`` PNGs per source, sampled with a fixed seed (autoencoders: their
   reconstructions of the held-out real images);
4. ``features/<feature set>/<group>.npz``;
5. ``explanations/``: LRP relevance per frequency of the explainable detectors (an MLP or LR on
   spectral features, the CNNs) on ``n_explain`` held-out images per group (after the protocol,
   whose repetition-0 detectors it explains; :meth:`Study.stage_explanations`);
6. ``results.json`` (protocol below), ``report.md`` and ``report.html``.

Protocol, per detector and repetition ``r`` (seed ``seed + r``, ``reps`` of them): draw
``n_train`` real and ``n_train`` baseline images without replacement; train on them; the
held-out reals give the real-image accuracy; each setup's detection rate is the share of
its held-out fakes called generated (for the baseline, the fakes not drawn for training;
for other setups, all of them); ROC-AUC is held-out reals vs that setup's fakes. Means and
standard deviations over repetitions. With ``default_model`` (on with diffusion-era sources),
the default model of ``forensics detect`` is scored on all real images and every group as it stands
(``results["default_model"]``). The ``matrix`` repeats this with every setup in
the baseline's place ("trained on real vs setup i, tested on setup j").
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensics.core.config import chain
from forensics.core.progress import bar
from forensics.io.files import cached_array, cached_arrays, read_json, read_npz, write_config, write_json, write_npz
from forensics.metrics.rates import detection_rate, mean_std, real_accuracy, roc_auc
from forensics.study.config import Source, StudyConfig

#: bumped when the explanations stage starts writing other numbers (its cache keys on it)
EXPLANATIONS_REVISION = 1


def group_file(label: str) -> str:
    """A group's file name in ``features/``: its label with ``__`` for ``/`` and ``_`` for ``:``."""
    return label.replace("/", "__").replace(":", "_")


def held_out_indices(cfg, n_real: int) -> tuple[np.ndarray, np.ndarray]:
    """``(held, rest)``: the indices of the real images the autoencoder rows reconstruct (``min(n_fake,
    half)``, a permutation seeded by ``seed``, sorted) and of the others (their training set). The
    detectors never train on the held ones (:meth:`Study.evaluate`)."""
    n = min(cfg.n_fake, n_real // 2)
    order = np.random.default_rng([cfg.seed, 20]).permutation(n_real)
    return np.sort(order[:n]), np.sort(order[n:])


@dataclass
class Stage:
    """A cached stage's folder and chained key (own settings + upstream key + what it produced)."""

    folder: Path
    key: str

    @classmethod
    def of(cls, folder: Path, upstream: str | None, own: dict, produced=None) -> "Stage":
        return cls(folder, chain(upstream, own, produced))

    def done(self) -> bool:
        f = self.folder / "stage.json"
        try:
            return f.is_file() and read_json(f).get("key") == self.key
        except ValueError:  # a damaged stage.json: redo the stage
            return False

    def mark(self, **info) -> None:
        write_json(self.folder / "stage.json", {"key": self.key, **info})


class Study:
    """Runs a :class:`StudyConfig` in folder ``out``; see :func:`run_study`."""

    def __init__(self, config: StudyConfig, out, progress: bool = True, fid_features=None):
        self.cfg, self.out, self.progress = config, Path(out), progress
        self.fid_features = fid_features  # replaces the Inception network (tests)
        #: wall-clock seconds per stage (:data:`~forensics.study.report.STAGE_TIMES`): ``real``, ``fakes``,
        #: ``features``, ``detectors``, ``report`` and ``total`` always; ``train <source>``, ``explanations``
        #: and ``fid`` only for the work done (absent: cached, or not part of this study)
        self.timings: dict[str, float] = {}
        self.keys: dict[str, str] = {}

    def log(self, msg: str) -> None:
        if self.progress:
            print(f"[counterexample] {msg}", file=sys.stderr, flush=True)

    @contextmanager
    def timed(self, stage: str):
        """Adds the wall-clock time of the ``with`` block to ``timings[stage]``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0

    # ---------------------------------------------------------------------------- stages
    def stage_real(self) -> np.ndarray:
        from forensics.io.sources import load_source

        c = self.cfg
        st = Stage.of(self.out / "real", None, c.key("real", "size", "n_real", "seed", "policy"))
        self.keys["real"] = st.key
        if st.done():
            return read_npz(st.folder / "images.npz")["images"]
        self.log(f"loading real images from {c.real}")
        ds = load_source(c.real, c.size, n=c.n_real, seed=c.seed, policy=c.policy, progress=self.progress)
        if len(ds) <= c.n_train:
            raise ValueError(f"{c.real}: {len(ds)} real images, need more than {c.n_train}")
        write_npz(st.folder / "images.npz", images=ds.images)
        write_json(st.folder / "manifest.json", ds.manifest)
        st.mark(settings=c.key("real", "size", "n_real", "seed", "policy"))
        return ds.images

    def check_inception(self) -> None:
        """The Inception weights, found up front when the FID/KID stage (``fid_n``) or the GAN runs'
        FID schedule (``train_fid``; the paper preset's default leaves it out without the weights) needs them."""
        from forensics.metrics.inception import require_inception

        c = self.cfg
        if self.fid_features is not None:
            return
        uses, avoid = [], {}
        if c.fid_n is not None:
            uses.append("FID/KID per source")
            avoid["fid_n"] = "None"
        if any(self.gan_config(src).fid_schedule is not None for src in c.sources() if src.spec is None):
            uses.append("the GAN runs' FID schedule")
            avoid["train_fid"] = "False"
        if uses:
            require_inception(f"{' and '.join(uses)} need{'s' if len(uses) == 1 else ''}", avoid)

    def gan_config(self, src: "Source"):
        """The :class:`~forensics.generators.config.GanConfig` of source ``src``'s run (the ``paper``
        GAN preset brings the FID schedule, when the Inception weights are installed: early stopping,
        samples from the best-FID checkpoint)."""
        from forensics.generators.config import GanConfig
        from forensics.generators.schedule import preset_schedule

        c = self.cfg
        sched = {}  # the preset's default schedule, if the weights (or a stand-in extractor) allow it
        if c.train_fid is None and c.train_fid_n is None:
            sched["fid_schedule"] = preset_schedule(c.gan_preset, c.gan, check=self.fid_features is None)
        return GanConfig.from_preset(c.gan_preset, c.gan, c.gan_overrides, **sched, last_layer=src.setup,
                                     objective=None if src.primary_loss else src.objective, quant=src.quant,
                                     data=c.real, size=c.size, steps=src.steps or c.steps, seed=c.seed,
                                     device=c.device, n_images=c.n_real, policy=c.policy,
                                     sample_every=max(src.steps or c.steps, 1),
                                     checkpoint_every=max(500, (src.steps or c.steps) // 20)
                                     ).with_fid(c.train_fid, c.train_fid_n)

    def run_key(self, src: "Source") -> Stage:
        c = self.cfg
        own = {"setup": src.setup, **c.key("gan", "gan_preset", "gan_overrides", "seed")}
        if not src.primary_loss or src.quant != "none":  # keys of runs made before objectives stay valid
            own.update(objective=src.objective, quant=src.quant)
        sched = self.gan_config(src).fid_schedule
        if sched is not None:  # (likewise: only runs with a schedule carry it in their key)
            own["fid_schedule"] = sched.to_dict()
        return Stage.of(self.out / "runs" / src.label, self.keys["real"], own)

    def stage_train(self, src: "Source") -> tuple[Path, str]:
        """Train (or resume) the run of source ``src``; returns its folder and its key, which includes
        the step its checkpoint reached."""
        from forensics.generators.checkpoint import load_checkpoint
        from forensics.generators.runs import BEST, CHECKPOINT
        from forensics.generators.trainer import train_gan

        c = self.cfg
        st = self.run_key(src)
        run, ckpt = st.folder, st.folder / CHECKPOINT
        resume = ckpt.is_file() and st.done()
        if ckpt.is_file() and not resume:
            raise FileExistsError(f"{run} holds a GAN run of other settings than this study's (remove the folder, "
                                  f"or write the study to another folder)")
        state = load_checkpoint(ckpt) if resume else {"step": 0}
        step = int(state["step"])
        stopped = bool(state.get("schedule", {}).get("stopped"))  # the FID schedule ended it early
        steps = src.steps or c.steps
        if step > steps:
            raise ValueError(f"{run} was trained to step {step}, beyond the {steps} steps asked for: ask for "
                             f"{step} steps, or remove the run")
        if step < steps and not stopped:
            self.log(f"training {c.gan} {src.label} to step {steps}" + (f" (resuming at {step})" if resume else ""))
            if not resume:
                st.mark(settings={"source": src.label})  # an interrupted run is then recognised and resumed
            t0 = time.perf_counter()
            train_gan(self.gan_config(src), run, resume, progress=self.progress, features=self.fid_features)
            self.timings[f"train {src.label}"] = time.perf_counter() - t0
            step = int(load_checkpoint(ckpt)["step"])
        produced = {"step": step}
        if (run / BEST).is_file():  # the fakes come from the best-FID checkpoint
            produced["best_step"] = int(load_checkpoint(run / BEST)["step"])
        return run, chain(st.key, {}, produced)

    def stage_fakes(self, label: str, run: Path, run_key: str) -> tuple[np.ndarray, str]:
        from forensics.generators.runs import load_run, sample_images

        c = self.cfg

        def make():
            task, _ = load_run(run, c.device)  # the best-FID checkpoint when the run has one
            imgs = np.concatenate(list(sample_images(task, c.n_fake, seed=c.seed + 1)))
            return imgs, {"checkpoint": task.checkpoint, "step": task.step}

        return self.write_fakes(label, run_key, {"n": c.n_fake, "seed": c.seed + 1}, c.n_fake, make)

    def write_fakes(self, folder: str, upstream: str, own: dict, n: int, make) -> tuple[np.ndarray, str]:
        """``fakes/<folder>/``: ``n`` PNGs that ``make() -> (images, info)`` produces, or the cached ones
        when the stage's key (``upstream`` + ``own``) still matches."""
        from forensics.io.images import iter_loaded, scan, write_png

        st = Stage.of(self.out / "fakes" / folder, upstream, own)
        files = [st.folder / f"{i:06d}.png" for i in range(n)]
        if st.done():
            return np.stack([r.image for r in iter_loaded(files)]), st.key
        for f in scan(st.folder) if st.folder.is_dir() else []:
            f.unlink()  # samples of other settings
        imgs, info = make()
        for f, im in zip(files, imgs):
            write_png(f, im)
        st.mark(**info)
        return imgs, st.key

    # ------------------------------------------------------------- diffusion-era sources
    def held_out(self, real: np.ndarray) -> tuple[np.ndarray, Stage]:
        """The real images the autoencoders reconstruct (``min(n_fake, half)`` of them, a permutation
        seeded by ``seed``, in order) and the stage ``real/source-train/`` whose ``images.npz`` holds the
        others, the autoencoders' training set (written here when its key is stale)."""
        held, rest = held_out_indices(self.cfg, len(real))
        own = {"held_out": len(held), "split": "numpy default_rng([seed, 20]).permutation"}
        st = Stage.of(self.out / "real" / "source-train", self.keys["real"], own)
        cached_arrays(st.folder / "images.npz", st.key, lambda: {"images": real[rest]})
        return held, st

    def source_run(self, src: Source, real: np.ndarray):
        """``(SourceConfig, Stage)`` of diffusion-era source ``src``'s run: its key chains every setting its
        images depend on (the spec among them; not the step count, which the produced key adds) on the
        real stage (autoencoders: on their training split's)."""
        c = self.cfg
        if src.autoencoder:
            _, split = self.held_out(real)
            cfg = c.source_config(src, str((split.folder / "images.npz").resolve())).replace(policy=None)
            upstream = split.key
        else:
            cfg, upstream = c.source_config(src, c.real), self.keys["real"]
        d = cfg.to_dict()
        own = {"source": src.spec, **{k: d[k] for k in cfg.RESUME_KEYS if k != "data"}}
        return cfg, Stage.of(self.out / "runs" / src.folder, upstream, own)

    def stage_train_source(self, src: Source, real: np.ndarray) -> tuple[Path, str]:
        """Train (or resume) the run of diffusion-era source ``src``
        (:func:`~forensics.generators.sources.train_source`; an ldm trains its autoencoder first, in
        ``first_stage/``); returns its folder and key (with the step)."""
        from forensics.generators.checkpoint import load_checkpoint
        from forensics.generators.runs import CHECKPOINT
        from forensics.generators.sources import FIRST_STAGE, train_source

        cfg, st = self.source_run(src, real)
        run, ckpt = st.folder, st.folder / CHECKPOINT
        started = ckpt.is_file() or (run / FIRST_STAGE / CHECKPOINT).is_file()
        resume = started and st.done()
        if started and not resume:
            raise FileExistsError(f"{run} holds a source run of other settings than this study's (remove the folder, "
                                  f"or write the study to another folder)")
        step = int(load_checkpoint(ckpt)["step"]) if ckpt.is_file() and resume else 0
        if step > cfg.steps:
            raise ValueError(f"{run} was trained to step {step}, beyond the {cfg.steps} steps asked for: ask for "
                             f"{step} steps, or remove the run")
        if step < cfg.steps:
            self.log(f"training {src.label} to step {cfg.steps}" + (f" (resuming at {step})" if resume else ""))
            if not resume:
                st.mark(settings={"source": src.label})  # an interrupted run is then recognised and resumed
            t0 = time.perf_counter()
            train_source(cfg, run, resume, progress=self.progress)
            self.timings[f"train {src.label}"] = time.perf_counter() - t0
            step = int(load_checkpoint(ckpt)["step"])
        return run, chain(st.key, {}, {"step": step})

    def stage_source_fakes(self, src: Source, run: Path, run_key: str, real: np.ndarray) -> tuple[np.ndarray, str]:
        """``fakes/<source>/``: an autoencoder's reconstructions of the held-out real images (its natural
        output), or ``n_fake`` DDIM samples of a ddpm/ldm (seed ``seed + 1``, the preset's DDIM steps)."""
        from forensics.generators.sources import Source as Generator

        c = self.cfg
        t0 = time.perf_counter()
        if src.autoencoder:
            held, _ = self.held_out(real)
            own = {"output": "reconstructions", "held_out": len(held)}
            n = len(held)
        else:
            own, n = {"output": "samples", "n": c.n_fake, "seed": c.seed + 1}, c.n_fake

        def make():
            g = Generator.load(run, c.device)
            imgs = g.reconstruct(real[held]) if src.autoencoder else g.sample(n, seed=c.seed + 1)
            return imgs, {"step": g.task.step, **own}

        out = self.write_fakes(src.folder, run_key, own, n, make)
        self.timings[f"fakes {src.label}"] = time.perf_counter() - t0
        return out

    def source_outputs(self, real: np.ndarray) -> dict:
        """What each diffusion-era source's row shows (``results["sources"]``)."""
        c = self.cfg
        out = {}
        for src in c.sources():
            if src.spec is None:
                continue
            cfg = c.source_config(src, c.real)
            if src.autoencoder:
                n = min(c.n_fake, len(real) // 2)
                what = f"reconstructions of {n} held-out real images (trained on the other {len(real) - n})"
            else:
                what = f"{c.n_fake} samples, DDIM {cfg.params['ddim_steps']} steps"
            out[src.label] = {"kind": cfg.kind, "factor": cfg.factor, "last_layer": cfg.last_layer,
                              "preset": cfg.preset, "steps": cfg.steps, "output": what,
                              **({"first_stage_steps": cfg.first_stage.steps} if cfg.first_stage else {})}
        return out

    def stage_default_model(self, real: np.ndarray, fakes: dict) -> dict | None:
        """The default model of ``forensics detect`` (trained on real images only, its stored threshold) on
        every real image and every group's fakes: ``{"model", "detector", "threshold", "groups": {group:
        {"detection_rate", "real_accuracy", "auc"}}}``; None when the study's images are below its side."""
        from forensics.detection.scoring import score_images
        from forensics.detectors.store import default_model_dir, load_model

        det = load_model()
        if self.cfg.size < getattr(det, "min_size", 1):
            self.log(f"the default model needs images of {det.min_size} px; not scored")
            return None
        thr = float(det.threshold_)
        sr = np.asarray(score_images(det, list(real)), np.float64)
        groups = {}
        for g, imgs in fakes.items():
            sf = np.asarray(score_images(det, list(imgs)), np.float64)
            groups[g] = {"detection_rate": mean_std([detection_rate(sf, thr)]),
                         "real_accuracy": mean_std([real_accuracy(sr, thr)]), "auc": mean_std([roc_auc(sr, sf)])}
        return {"model": default_model_dir().name, "detector": det.name, "threshold": thr,
                "n_real": len(real), "groups": groups}

    def stage_features(self, name: str, group: str, images: np.ndarray, upstream: str) -> np.ndarray:
        from forensics.spectral import spectrum

        f = self.out / "features" / name / f"{group}.npz"
        key = chain(upstream, {"features": name, "revision": spectrum.FEATURES_REVISION})
        return cached_array(f, key, lambda: spectrum.features(images, name))

    def stage_fid(self, real: np.ndarray, fakes: dict, fake_keys: dict) -> dict:
        """FID and KID of each source's first ``fid_n`` fakes against the first ``fid_n`` real images
        (Inception features cached in ``features/inception-<mode>/``, keys chained on the real and fake
        stages' keys); ``{label: {"fid", "kid", "kid_std", "n_fake", "n_real", "mode", ...}}``."""
        from forensics.metrics.fid import fid_from_features, kid
        from forensics.metrics.inception import InceptionFeatures, extractor_id, features_of

        c = self.cfg
        ext = self.fid_features
        if ext is None:
            from forensics.generators.tensors import resolve_device

            ext = InceptionFeatures(c.fid_mode, device=str(resolve_device(c.device)))
        ident = extractor_id(ext)

        def feats(group, images, upstream):
            f = self.out / "features" / f"inception-{c.fid_mode}" / f"{group}.npz"
            key = chain(upstream, {"fid_n": c.fid_n, "mode": c.fid_mode, "features": ident})

            def compute():
                x = images[:c.fid_n]
                self.log(f"inception features of {group} ({len(x)} images)")
                return features_of(ext, x, chunk=64)

            return cached_array(f, key, compute)

        t0 = time.perf_counter()
        r = feats("real", real, self.keys["real"])
        out = {}
        for label, imgs in fakes.items():
            x = feats(group_file(label), imgs, fake_keys[label])
            k = kid(x, r, subsets=100, subset_size=min(1000, len(x), len(r)), seed=c.seed)
            out[label] = {"fid": fid_from_features(x, r), "kid": k["kid"], "kid_std": k["kid_std"],
                          "kid_subsets": k["subsets"], "kid_subset_size": k["subset_size"],
                          "n_fake": int(len(x)), "n_real": int(len(r)), "mode": c.fid_mode, "features": ident}
        self.timings["fid"] = time.perf_counter() - t0
        return out

    # ------------------------------------------------------------------------ evaluation
    def evaluate(self, feats: dict[str, dict[str, np.ndarray]]) -> tuple[dict, dict]:
        """``feats[feature set][group]``; returns the ``detectors`` and ``matrix`` results."""
        from forensics.detectors import make_detector

        c = self.cfg
        det_out, matrix = {}, {}
        n_r = len(next(iter(feats.values()))["real"])
        groups = [g for g in next(iter(feats.values())) if g != "real"]  # every source; trained on the setups
        total = len(c.detectors) * len(c.setups) * c.reps
        reconstructed = (held_out_indices(c, n_r)[0] if any(src.autoencoder for src in c.sources())
                         else np.zeros(0, np.int64))
        if len(reconstructed) > n_r - c.n_train:
            raise ValueError(f"{len(reconstructed)} reals are reconstructed by the autoencoder rows, more than the "
                             f"{n_r - c.n_train} test reals: lower n_fake or n_train")
        with bar(total=total, desc="detectors", enabled=self.progress) as pb:
            for name in c.detectors:
                fs = make_detector(name, size=c.size).features  # None: the detector learns from images
                F = feats[fs]
                per_train = {}
                for train_setup in c.setups:
                    acc = {"real_accuracy": [], "rates": {s: [] for s in groups}, "aucs": {s: [] for s in groups}}
                    for r in range(c.reps):
                        rng = np.random.default_rng(c.seed + r)
                        ri = rng.permutation(n_r)
                        if len(reconstructed):  # the reals an autoencoder row reconstructs: never trained on
                            ri = np.r_[ri[~np.isin(ri, reconstructed)], ri[np.isin(ri, reconstructed)]]
                        fi = rng.permutation(c.n_fake)
                        tr_r, te_r = ri[:c.n_train], ri[c.n_train:]
                        tr_f, te_f = fi[:c.n_train], fi[c.n_train:]
                        det = make_detector(name, seed=c.seed + r, size=c.size).fit_real_fake(F["real"][tr_r], F[train_setup][tr_f])
                        sr = det.score(F["real"][te_r])
                        acc["real_accuracy"].append(real_accuracy(sr, det.threshold_))
                        for s in groups:
                            sf = det.score(F[s][te_f] if s == train_setup else F[s])
                            acc["rates"][s].append(detection_rate(sf, det.threshold_))
                            acc["aucs"][s].append(roc_auc(sr, sf))
                        if r == 0 and train_setup == "baseline":  # one repetition's scores for the ROC plots
                            self.fitted[name] = (det, te_r, te_f)  # and its detector, for the explanations
                            self.scores.setdefault(name, {"real": sr})
                            for s in groups:
                                self.scores[name][s] = det.score(F[s][te_f] if s == "baseline" else F[s])
                        pb.update(1)
                    per_train[train_setup] = acc
                base = per_train["baseline"]
                det_out[name] = {s: {"detection_rate": mean_std(base["rates"][s]),
                                     "real_accuracy": mean_std(base["real_accuracy"]),
                                     "auc": mean_std(base["aucs"][s])} for s in groups}
                matrix[name] = {t: {"real_accuracy": mean_std(per_train[t]["real_accuracy"]),
                                    "detection_rate": {s: mean_std(per_train[t]["rates"][s]) for s in groups}}
                                for t in c.setups}
        return det_out, matrix

    def stage_explanations(self, feats: dict, fake_keys: dict) -> dict | None:
        """``explanations/``: LRP relevance per frequency (or per feature) of every explainable
        detector, trained on real vs baseline as in repetition 0, on up to ``n_explain`` of that
        repetition's held-out reals and of each group's held-out fakes (:func:`forensics.explain.explainers.explain_groups`).
        ``None`` when no detector is explainable or ``n_explain`` is 0."""
        from forensics.explain.explainers import BANDS, explain_groups, is_explainable

        c = self.cfg
        names = [d for d in c.detectors if is_explainable(d)]
        if not names or c.n_explain == 0:
            return None
        own = {"detectors": names, "n_explain": c.n_explain, "bands": list(BANDS), "eps": 1e-6,
               "revision": EXPLANATIONS_REVISION, **c.key("seed", "n_train", "size")}
        st = Stage.of(self.out / "explanations", self.keys["real"], own, fake_keys)
        if st.done():
            try:
                return read_json(st.folder / "explanations.json")
            except (OSError, ValueError):
                pass  # damaged: recompute
        t0 = time.perf_counter()
        block = {"method": "LRP of the logit (eps rule for linear layers, alpha1beta0 for convolutions); per frequency "
                           "through a virtual inverse-DFT layer (CNN on pixels), the frequency plane (CNN on the "
                           "spectrum) or the features themselves (durall+: azimuthal-spectrum samples); "
                           "positive relevance speaks for generated",
                 "trained_on": "real vs baseline, repetition 0 of the protocol",
                 "images": f"up to {c.n_explain} held-out images per group", "detectors": {}}
        for name in names:
            det, te_r, te_f = self.fitted[name]
            F = feats[det.features]
            n = c.n_explain
            groups = {"real": F["real"][te_r[:n]]}
            for g in (k for k in F if k != "real"):
                groups[g] = F[g][te_f[:n]] if g == "baseline" else F[g][:n]
            t1 = time.perf_counter()
            block["detectors"][name] = explain_groups(det, groups, (c.size, c.size))
            block["detectors"][name]["seconds"] = time.perf_counter() - t1
        self.timings["explanations"] = time.perf_counter() - t0
        block["seconds"] = self.timings["explanations"]
        write_json(st.folder / "explanations.json", block)
        st.mark(settings=own)
        return block

    # ------------------------------------------------------------------------------- run
    def run(self) -> dict:
        from forensics.detectors import make_detector
        from forensics.study.report import write_experiment_report

        c = self.cfg
        t0 = time.perf_counter()
        self.check_inception()  # before any work: the study would otherwise fail after hours of training
        with self.timed("real"):
            real = self.stage_real()  # first: a real source that cannot be read leaves no study folder behind
        self.out.mkdir(parents=True, exist_ok=True)
        write_config(self.out, {"command": "counterexample", "config": c.to_dict()})
        fakes, fake_keys = {}, {}
        for src in c.sources():
            if src.spec is not None:  # a diffusion-era source
                run, run_key = self.stage_train_source(src, real)
                with self.timed("fakes"):
                    fakes[src.label], fake_keys[src.label] = self.stage_source_fakes(src, run, run_key, real)
                continue
            run, run_key = self.stage_train(src)
            with self.timed("fakes"):
                fakes[src.label], fake_keys[src.label] = self.stage_fakes(src.label, run, run_key)
        wanted = {make_detector(d, size=c.size).features for d in c.detectors}
        fsets = sorted(wanted - {None})
        with self.timed("features"):
            feats = {fs: {"real": self.stage_features(fs, "real", real, self.keys["real"])} for fs in fsets}
            for fs in fsets:
                for g, imgs in fakes.items():
                    feats[fs][g] = self.stage_features(fs, group_file(g), imgs, fake_keys[g])
        if None in wanted:  # detectors that learn from the images themselves
            feats[None] = {"real": real, **fakes}
        self.log("training and scoring detectors")
        self.scores: dict[str, dict[str, np.ndarray]] = {}
        self.fitted: dict[str, tuple] = {}
        with self.timed("detectors"):
            det_out, matrix = self.evaluate(feats)
            default = self.stage_default_model(real, fakes) if c.scores_default_model else None
        explanations = self.stage_explanations(feats, fake_keys)
        results = {"config": {**c.to_dict(), "n_real_images": int(len(real)),
                              "protocol": "train on n_train real + n_train baseline (without replacement), "
                                          "test on the rest; reps seeded seed + r"},
                   "stage_keys": {"real": self.keys["real"], "fakes": fake_keys},
                   "detectors": det_out, "matrix": matrix}
        if c.source_specs:
            results["sources"] = self.source_outputs(real)
        if default is not None:
            results["default_model"] = default
        if c.fid_n is not None:
            results["fid"] = self.stage_fid(real, fakes, fake_keys)
        if explanations is not None:
            results["explanations"] = explanations
        with self.timed("report"):
            write_json(self.out / "results.json", results)
            paths = write_experiment_report(self.out, results, real, fakes, self.scores)
        self.timings["total"] = time.perf_counter() - t0
        write_json(self.out / "timings.json", self.timings)
        return {"results": results, "report": paths, "timings": dict(self.timings)}


def run_study(config: StudyConfig, out, progress: bool = True, fid_features=None) -> dict:
    """Run (or resume) the counterexample study ``config`` in folder ``out``: every finished stage whose
    chained key still matches is reused. Returns ``{"results": ..., "report": (md, html), "timings": ...}``
    (seconds per stage, also in ``timings.json``; :func:`~forensics.study.report.timings_text` tables them).
    ``fid_features`` replaces the Inception network (FID stage, FID training schedule) in tests."""
    return Study(config, out, progress, fid_features).run()

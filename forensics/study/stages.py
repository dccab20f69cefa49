"""The counterexample study of Chandrasegaran et al. as stages that cache their outputs.

For one real source and one GAN, each image source (objective x quantization x last-layer
setup, :class:`Source`) is trained, sampled, and turned into features; detectors trained on
*real vs baseline* are then scored on every source's fakes. Stages, each with a chained key
(its own settings + its upstream stage's key + what it produced) and skipped when the key
still matches:

1. ``real/``: the real images (``images.npz``) and their manifest;
2. ``runs/<source>/``: the GAN runs (an unfinished or shorter run is resumed; a longer one refused);
3. ``fakes/<source>/``: ``n_fake`` PNGs per source, sampled with a fixed seed;
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
standard deviations over repetitions. The ``matrix`` repeats this with every setup in
the baseline's place ("trained on real vs setup i, tested on setup j").
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forensics import metrics
from forensics.config import Config, chain
from forensics.detectors.spectral import PAPER_DETECTORS, TOOLKIT_DETECTORS
from forensics.errors import UserError
from forensics.io import cached_array, read_json, read_npz, write_config, write_json, write_npz
from forensics.progress import bar

#: the demo's detectors: the toolkit's variants (defined from 16 px)
DEFAULT_DETECTORS = TOOLKIT_DETECTORS
#: ``--preset paper``: epochs per GAN over the real set (Chandrasegaran et al.)
PAPER_EPOCHS = {"dcgan": 50, "lsgan": 50, "wgan-gp": 100}
PAPER_GANS = ("dcgan", "lsgan", "wgan-gp")
#: the paper's real preprocessing: centre crop to the short side (178 for CelebA), PIL bilinear to 128
PAPER_POLICY = "resize:128:pil-bilinear"
#: bumped when the explanations stage starts writing other numbers (its cache keys on it)
EXPLANATIONS_REVISION = 1


@dataclass(frozen=True)
class SourceFamily(Config):
    """An extra row family of a study: one training objective (and quantization) trained for its own
    few setups only, beside the study's objectives x quantizations x setups product; e.g. the demo's
    ``SourceFamily("ssgan-ms", setups=("baseline", "N.1.5"))`` asks whether the objective changes the
    spectral artefact without multiplying every setup. ``steps`` None: the study's."""

    objective: str = "ssgan-ms"
    setups: tuple[str, ...] = ("baseline", "N.1.5")
    quant: str = "none"
    steps: int | None = None

    @classmethod
    def parse(cls, text: str) -> "SourceFamily":
        """``"OBJECTIVE[@QUANT]:SETUP+SETUP[:STEPS]"``, e.g. ``"ssgan-ms:baseline+N.1.5:750"``."""
        parts = text.strip().split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise ValueError(f"bad source family {text!r}: OBJECTIVE[@QUANT]:SETUP+SETUP[:STEPS]")
        obj, _, quant = parts[0].partition("@")
        try:
            steps = int(parts[2]) if len(parts) == 3 else None
        except ValueError:
            raise ValueError(f"bad source family {text!r}: steps {parts[2]!r} is not a whole number") from None
        return cls(obj.strip(), tuple(x.strip() for x in parts[1].split("+") if x.strip()), quant or "none", steps)

    def validate(self) -> None:
        from forensics.generators.layers import LastLayerSpec
        from forensics.generators.objectives import OBJECTIVES
        from forensics.generators.quant import QuantSpec

        if self.objective not in OBJECTIVES and self.objective not in ("dcgan", "lsgan", "wgan-gp"):
            raise ValueError(f"unknown objective {self.objective!r}; choose from {', '.join(OBJECTIVES)} "
                             f"or the GAN's own loss")
        setups = tuple(str(LastLayerSpec.parse(x)) for x in self.setups)
        if not setups or len(set(setups)) != len(setups):
            raise ValueError(f"give distinct setups for the {self.objective} family, not {self.setups}")
        object.__setattr__(self, "setups", setups)
        object.__setattr__(self, "quant", str(QuantSpec.parse(self.quant)))
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, not {self.steps}")


#: ``forensics demo``'s extra row family: SSGAN-MS (about as fast as DCGAN) at baseline and N.1.5, half
#: the demo's steps, so the demo costs about a quarter more (see :meth:`StudyConfig.demo`)
DEMO_FAMILY = SourceFamily("ssgan-ms", ("baseline", "N.1.5"))


@dataclass(frozen=True)
class StudyConfig(Config):
    """One counterexample study: one real source, one GAN, several last-layer setups, detectors.

    ``device`` is where it runs, not what it computes: it is recorded but kept out of cache keys.
    """

    real: str = "builtin"
    gan: str = "dcgan"
    setups: tuple[str, ...] = ("baseline", "N.1.5", "B.1.5", "Z.1.5")
    size: int = 32
    steps: int = 1500
    n_fake: int = 1000
    seed: int = 0
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    gan_preset: str = "tiny"
    gan_overrides: dict = field(default_factory=dict)
    n_train: int = 100
    reps: int = 10
    n_real: int | None = None
    policy: str | None = None
    device: str = "auto"
    #: image sources beyond the GAN's own loss: training objectives (the GAN's own name = its loss;
    #: e.g. ("dcgan", "infomax", "ssgan-ms", "dag")) x quantizations (("none", "w4a4")); every
    #: combination is trained for every setup. The first combination is the one detectors train on.
    objectives: tuple[str, ...] = ()
    quants: tuple[str, ...] = ("none",)
    #: FID and KID of each source's first ``fid_n`` fakes against (at most) ``fid_n`` of the study's real
    #: images, with the real Inception network (``fid_mode`` resize); None: not measured (the demo)
    fid_n: int | None = None
    fid_mode: str = "clean"
    #: extra row families, each trained for its own setups only (not multiplied by the product above)
    extra: tuple[SourceFamily, ...] = ()
    #: the GAN runs' FID schedule (early stopping, samples from the best-FID checkpoint): None = the GAN
    #: preset's default (``paper``: on, ``tiny``: off), True/False = on/off; ``train_fid_n`` images per
    #: measurement (None: the schedule's default, 1000)
    train_fid: bool | None = None
    train_fid_n: int | None = None
    #: LRP explanations of the explainable detectors (an MLP or LR on spectral features, the CNNs):
    #: relevance per frequency over ``n_explain`` held-out images of each group (0: none)
    n_explain: int = 200

    # ------------------------------------------------------------------ presets
    @classmethod
    def tiny(cls, **changes) -> "StudyConfig":
        """``counterexample --preset tiny``: tiny DCGANs at 32 px on the built-in photos, four setups."""
        return cls(**{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def demo(cls, **changes) -> "StudyConfig":
        """``forensics demo``: :meth:`tiny` plus one cheap extra row family (:data:`DEMO_FAMILY`:
        SSGAN-MS at baseline and N.1.5, trained for half the study's steps) that shows whether the
        training objective changes the spectral artefact; ``extra=()`` leaves it out."""
        c = cls.tiny(**{k: v for k, v in changes.items() if k != "extra"})
        extra = changes.get("extra")
        if extra is None:  # (given families: SourceFamily objects or their dicts)
            extra = (DEMO_FAMILY.replace(steps=max(1, c.steps // 2)),)
        return c.replace(extra=tuple(extra))

    @classmethod
    def paper(cls, real: str, gan: str, n_real_images: int | None = None, steps: int | None = None,
              **changes) -> "StudyConfig":
        """``--preset paper`` for one GAN: the paper's 128 px nets, all 13 setups, its epochs over the
        real set (``steps`` derived from ``n_real_images`` unless given), faithful detectors."""
        from forensics.generators.layers import PAPER_SETUPS
        from forensics.generators.presets import preset

        if gan not in PAPER_EPOCHS:
            raise ValueError(f"the paper preset trains {', '.join(PAPER_GANS)}; not {gan!r}")
        p = preset("paper", gan)
        if steps is None:
            if n_real_images is None:
                raise ValueError("the paper preset needs a step count, or the real set's size to derive it")
            n_critic = 5 if gan == "wgan-gp" else 1
            steps = int(np.ceil(PAPER_EPOCHS[gan] * n_real_images / (p["batch"] * n_critic)))
        base = dict(real=real, gan=gan, setups=tuple(PAPER_SETUPS), size=128, steps=steps, n_fake=1000,
                    seed=2021, detectors=PAPER_DETECTORS, gan_preset="paper", policy=PAPER_POLICY)
        return cls(**{**base, **{k: v for k, v in changes.items() if v is not None}})

    def validate(self) -> None:
        from forensics.generators.layers import LastLayerSpec

        setups = tuple(str(LastLayerSpec.parse(s)) for s in self.setups)  # raises ValueError on a bad spec
        if setups != tuple(self.setups):
            object.__setattr__(self, "setups", setups)  # canonical spelling
        if "baseline" not in setups:
            raise ValueError("the setups must include baseline: the detectors are trained on real vs baseline")
        if len(set(setups)) != len(setups):
            raise ValueError(f"setups repeat: {', '.join(setups)}")
        if self.size < 16 or self.size & (self.size - 1):
            raise ValueError(f"size must be a power of two >= 16, not {self.size}")
        for name, v, lo in (("steps", self.steps, 1), ("reps", self.reps, 1), ("n_train", self.n_train, 2)):
            if v < lo:
                raise ValueError(f"{name} must be at least {lo}, not {v}")
        if self.n_fake <= self.n_train:
            raise ValueError(f"n_fake ({self.n_fake}) must exceed the {self.n_train} training images per class")
        if self.n_real is not None and self.n_real <= self.n_train:
            raise ValueError(f"n_real ({self.n_real}) must exceed the {self.n_train} training images per class")
        if self.n_real is not None:
            from forensics.generators.presets import preset

            batch = preset(self.gan_preset, self.gan, **dict(self.gan_overrides)).get("batch", 1)
            if self.n_real < batch:
                raise ValueError(f"n_real ({self.n_real}) is smaller than one GAN training batch ({batch})")
        if self.fid_n is not None and self.fid_n < 2:
            raise ValueError(f"FID needs at least 2 images per side, not fid_n={self.fid_n}")
        from forensics.fid import MODES

        if self.fid_mode not in MODES:
            raise ValueError(f"unknown FID resize mode {self.fid_mode!r}; choose from {', '.join(MODES)}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), not {self.seed}")
        if not self.detectors:
            raise ValueError("no detectors given")
        if self.n_explain < 0:
            raise ValueError(f"n_explain must be >= 0, not {self.n_explain}")
        from forensics.generators.objectives import OBJECTIVES
        from forensics.generators.quant import QuantSpec

        if len(set(self.objectives)) != len(self.objectives):
            raise ValueError(f"objectives repeat: {', '.join(self.objectives)}")
        for o in self.objectives:
            if o != self.gan and o not in OBJECTIVES:
                raise ValueError(f"unknown objective {o!r}: {self.gan} (the GAN's own loss) or "
                                 f"{', '.join(OBJECTIVES)}")
        if not self.quants or len(set(self.quants)) != len(self.quants):
            raise ValueError(f"give distinct quantizations, not {self.quants}")
        quants = tuple(str(QuantSpec.parse(q)) for q in self.quants)  # canonical spelling
        if quants != tuple(self.quants):
            object.__setattr__(self, "quants", quants)
        from forensics.detectors import expand_names, make_detector
        from forensics.generators.presets import preset

        if "all" in self.detectors:
            object.__setattr__(self, "detectors", tuple(expand_names(self.detectors)))
        for d in self.detectors:
            make_detector(d, size=self.size)  # unknown names fail here, before anything is trained
        preset(self.gan_preset, self.gan, **self.gan_overrides)
        if self.train_fid_n is not None and (self.train_fid is False or (
                self.train_fid is None and self.gan_preset != "paper")):
            raise ValueError(f"an FID sample size for training ({self.train_fid_n}) was given, but the GAN runs "
                             f"train without the FID schedule")
        object.__setattr__(self, "extra", tuple(f if isinstance(f, SourceFamily) else SourceFamily.from_dict(f)
                                                for f in self.extra))
        for f in self.extra:
            if f.objective in ("dcgan", "lsgan", "wgan-gp") and f.objective != self.gan:
                raise ValueError(f"extra family {f.objective!r}: another GAN's loss; use {self.gan} or an objective")
        labels = [x.label for x in self.sources()]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"sources repeat (an extra family overlaps the study's product): {', '.join(dup)}")

    def sources(self) -> list["Source"]:
        """Every (objective, quantization, setup) the study trains, the detectors' source first, then
        the extra families' sources."""
        objs = self.objectives or (self.gan,)
        out = [Source(o, q, s, o == self.gan, i == 0 and j == 0)
               for i, o in enumerate(objs) for j, q in enumerate(self.quants) for s in self.setups]
        out += [Source(f.objective, f.quant, s, f.objective == self.gan, False, f.steps)
                for f in self.extra for s in f.setups]
        return out

    def key(self, *names: str) -> dict:
        """The settings ``names`` (for a stage's own cache key)."""
        return {n: getattr(self, n) for n in names}


@dataclass(frozen=True)
class Source:
    """One image source of a study: a training objective, a quantization and a last-layer setup."""

    objective: str
    quant: str
    setup: str
    primary_loss: bool  #: the objective is the GAN's own loss
    primary: bool  #: the source the detectors are trained on (with its baseline setup)
    steps: int | None = None  #: training steps (None: the study's)

    @property
    def label(self) -> str:
        """Its name in tables and folders: the setup alone for the detectors' source, else
        ``objective[@quant]/setup``."""
        if self.primary:
            return self.setup
        return f"{self.objective}{'' if self.quant == 'none' else '@' + self.quant}/{self.setup}"


def paper_plan(real: str, steps=None, n_real_images: int | None = None, gans=None, **changes) -> list[StudyConfig]:
    """The configurations of ``--preset paper``: one per GAN."""
    return [StudyConfig.paper(real, gan, n_real_images, steps, **changes) for gan in (gans or PAPER_GANS)]


def plan_study(out, preset: str = "tiny", config_file=None, gans=None, **changes) -> list[tuple[StudyConfig, Path]]:
    """The studies to run and their folders: ``config_file`` (a study's ``config.json`` or a config
    JSON) or the ``preset`` (``tiny``: one study in ``out``; ``paper``: one per GAN in ``out/<gan>``),
    with ``changes`` (``None`` values ignored) applied on top. Everything is validated here, so a plan
    that prints is a plan that runs."""
    changes = {k: (tuple(v) if isinstance(v, list) else v) for k, v in changes.items() if v is not None}
    out = Path(out)
    if config_file is not None:
        return [(StudyConfig.load(config_file, **changes), out)]
    if preset == "tiny":
        if gans and len(gans) > 1:
            raise ValueError("the tiny preset runs one GAN per study; run one study per GAN")
        return [(StudyConfig.tiny(**changes, gan=gans[0] if gans else None), out)]
    if preset != "paper":
        raise ValueError(f"unknown study preset {preset!r}; choose tiny or paper")
    n_real = changes.get("n_real")
    if n_real is None and changes.get("steps") is None:
        from forensics.data import folder_files

        real = changes.get("real", "")
        if not Path(real).is_dir():
            raise ValueError(f"{real}: the paper preset derives its training length from a folder of real images; "
                             f"give the number of steps for other sources")
        n_real = len(folder_files(Path(real))[1])
    real = changes.pop("real")
    steps = changes.pop("steps", None)
    return [(c, out / c.gan) for c in paper_plan(real, steps=steps, n_real_images=n_real, gans=gans, **changes)]


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
        self.timings: dict[str, float] = {}
        self.keys: dict[str, str] = {}

    def log(self, msg: str) -> None:
        if self.progress:
            print(f"[counterexample] {msg}", file=sys.stderr, flush=True)

    # ---------------------------------------------------------------------------- stages
    def stage_real(self) -> np.ndarray:
        from forensics.data import load_source

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
        FID schedule (``train_fid``; on by default with the paper preset) needs them."""
        c = self.cfg
        if self.fid_features is not None:
            return
        uses = ["FID/KID per source (--fid)"] if c.fid_n is not None else []
        if any(self.gan_config(src).fid_schedule is not None for src in c.sources()):
            uses.append("the GAN runs' FID schedule (on with the paper preset; --no-train-fid turns it off)")
        if uses:
            from forensics.fid import inception_path

            try:
                inception_path()
            except FileNotFoundError as e:
                raise UserError(f"{' and '.join(uses)} need the Inception weights: {e}") from None

    def gan_config(self, src: "Source"):
        """The :class:`~forensics.generators.config.GanConfig` of source ``src``'s run (the ``paper``
        GAN preset brings the FID schedule: early stopping, samples from the best-FID checkpoint)."""
        from forensics.generators.config import GanConfig

        c = self.cfg
        return GanConfig.from_preset(c.gan_preset, c.gan, c.gan_overrides, last_layer=src.setup,
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
        from forensics.generators.trainer import BEST, CHECKPOINT, train_gan

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
        from forensics.generators.sampling import sample_images
        from forensics.generators.trainer import load_run
        from forensics.images import iter_loaded, scan
        from forensics.report import write_png

        c = self.cfg
        st = Stage.of(self.out / "fakes" / label, run_key, {"n": c.n_fake, "seed": c.seed + 1})
        files = [st.folder / f"{i:06d}.png" for i in range(c.n_fake)]
        if st.done():
            return np.stack([r.image for r in iter_loaded(files)]), st.key
        for f in scan(st.folder) if st.folder.is_dir() else []:
            f.unlink()  # samples of other settings
        task, _ = load_run(run, c.device)  # the best-FID checkpoint when the run has one
        imgs = np.concatenate(list(sample_images(task, c.n_fake, seed=c.seed + 1)))
        for f, im in zip(files, imgs):
            write_png(f, im)
        st.mark(checkpoint=task.checkpoint, step=task.step)
        return imgs, st.key

    def stage_features(self, name: str, group: str, images: np.ndarray, upstream: str) -> np.ndarray:
        from forensics import spectrum

        f = self.out / "features" / name / f"{group}.npz"
        key = chain(upstream, {"features": name, "revision": spectrum.FEATURES_REVISION})
        return cached_array(f, key, lambda: spectrum.features(images, name))

    def stage_fid(self, real: np.ndarray, fakes: dict, fake_keys: dict) -> dict:
        """FID and KID of each source's first ``fid_n`` fakes against the first ``fid_n`` real images
        (Inception features cached in ``features/inception-<mode>/``, keys chained on the real and fake
        stages' keys); ``{label: {"fid", "kid", "kid_std", "n_fake", "n_real", "mode", ...}}``."""
        from forensics import fid

        c = self.cfg
        ext = self.fid_features
        if ext is None:
            from forensics.generators.trainer import resolve_device

            ext = fid.InceptionFeatures(c.fid_mode, device=str(resolve_device(c.device)))
        ident = getattr(ext, "weights", None) or getattr(ext, "__name__", None) or type(ext).__name__

        def feats(group, images, upstream):
            f = self.out / "features" / f"inception-{c.fid_mode}" / f"{group}.npz"
            key = chain(upstream, {"fid_n": c.fid_n, "mode": c.fid_mode, "features": ident})

            def compute():
                x = images[:c.fid_n]
                self.log(f"inception features of {group} ({len(x)} images)")
                return np.concatenate([np.asarray(ext(x[i:i + 64]), np.float64) for i in range(0, len(x), 64)])

            return cached_array(f, key, compute)

        t0 = time.perf_counter()
        r = feats("real", real, self.keys["real"])
        out = {}
        for label, imgs in fakes.items():
            x = feats(label.replace("/", "__"), imgs, fake_keys[label])
            k = fid.kid(x, r, subsets=100, subset_size=min(1000, len(x), len(r)), seed=c.seed)
            out[label] = {"fid": fid.fid_from_features(x, r), "kid": k["kid"], "kid_std": k["kid_std"],
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
                        fi = rng.permutation(c.n_fake)
                        tr_r, te_r = ri[:c.n_train], ri[c.n_train:]
                        tr_f, te_f = fi[:c.n_train], fi[c.n_train:]
                        det = make_detector(name, seed=c.seed + r, size=c.size).fit_real_fake(F["real"][tr_r], F[train_setup][tr_f])
                        sr = det.score(F["real"][te_r])
                        acc["real_accuracy"].append(metrics.real_accuracy(sr, det.threshold_))
                        for s in groups:
                            sf = det.score(F[s][te_f] if s == train_setup else F[s])
                            acc["rates"][s].append(metrics.detection_rate(sf, det.threshold_))
                            acc["aucs"][s].append(metrics.roc_auc(sr, sf))
                        if r == 0 and train_setup == "baseline":  # one repetition's scores for the ROC plots
                            self.fitted[name] = (det, te_r, te_f)  # and its detector, for the explanations
                            self.scores.setdefault(name, {"real": sr})
                            for s in groups:
                                self.scores[name][s] = det.score(F[s][te_f] if s == "baseline" else F[s])
                        pb.update(1)
                    per_train[train_setup] = acc
                base = per_train["baseline"]
                det_out[name] = {s: {"detection_rate": metrics.mean_std(base["rates"][s]),
                                     "real_accuracy": metrics.mean_std(base["real_accuracy"]),
                                     "auc": metrics.mean_std(base["aucs"][s])} for s in groups}
                matrix[name] = {t: {"real_accuracy": metrics.mean_std(per_train[t]["real_accuracy"]),
                                    "detection_rate": {s: metrics.mean_std(per_train[t]["rates"][s]) for s in groups}}
                                for t in c.setups}
        return det_out, matrix

    def stage_explanations(self, feats: dict, fake_keys: dict) -> dict | None:
        """``explanations/``: LRP relevance per frequency (or per feature) of every explainable
        detector, trained on real vs baseline as in repetition 0, on up to ``n_explain`` of that
        repetition's held-out reals and of each group's held-out fakes (:func:`forensics.explain.explain_groups`).
        ``None`` when no detector is explainable or ``n_explain`` is 0."""
        from forensics.explain import BANDS, explain_groups, is_explainable

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
        from forensics.report import write_experiment_report

        c = self.cfg
        t0 = time.perf_counter()
        self.check_inception()  # before any work: the study would otherwise fail after hours of training
        real = self.stage_real()  # first: a real source that cannot be read leaves no study folder behind
        self.out.mkdir(parents=True, exist_ok=True)
        write_config(self.out, {"command": "counterexample", "config": c.to_dict()})
        fakes, fake_keys = {}, {}
        for src in c.sources():
            run, run_key = self.stage_train(src)
            fakes[src.label], fake_keys[src.label] = self.stage_fakes(src.label, run, run_key)
        wanted = {make_detector(d, size=c.size).features for d in c.detectors}
        fsets = sorted(wanted - {None})
        feats = {fs: {"real": self.stage_features(fs, "real", real, self.keys["real"])} for fs in fsets}
        for fs in fsets:
            for g in fakes:
                feats[fs][g] = self.stage_features(fs, g.replace("/", "__"), fakes[g], fake_keys[g])
        if None in wanted:  # detectors that learn from the images themselves
            feats[None] = {"real": real, **fakes}
        self.log("training and scoring detectors")
        self.scores: dict[str, dict[str, np.ndarray]] = {}
        self.fitted: dict[str, tuple] = {}
        det_out, matrix = self.evaluate(feats)
        explanations = self.stage_explanations(feats, fake_keys)
        results = {"config": {**c.to_dict(), "n_real_images": int(len(real)),
                              "protocol": "train on n_train real + n_train baseline (without replacement), "
                                          "test on the rest; reps seeded seed + r"},
                   "stage_keys": {"real": self.keys["real"], "fakes": fake_keys},
                   "detectors": det_out, "matrix": matrix}
        if c.fid_n is not None:
            results["fid"] = self.stage_fid(real, fakes, fake_keys)
        if explanations is not None:
            results["explanations"] = explanations
        write_json(self.out / "results.json", results)
        paths = write_experiment_report(self.out, results, real, fakes, self.scores)
        self.timings["total"] = time.perf_counter() - t0
        write_json(self.out / "timings.json", self.timings)
        return {"results": results, "report": paths}


def summarise_seeds(results: dict[int, dict]) -> dict:
    """Spread over GAN seeds of several studies' ``results.json`` (one per seed, same settings but
    the seed): per detector and setup, the mean, standard deviation, minimum and maximum over seeds
    of each study's mean detection rate, real accuracy and ROC-AUC."""
    seeds = sorted(results)
    first = results[seeds[0]]
    out = {"seeds": seeds, "detectors": {}}
    for det, per_setup in first["detectors"].items():
        out["detectors"][det] = {}
        for setup in per_setup:
            cell = {}
            for m in ("detection_rate", "real_accuracy", "auc"):
                v = np.array([results[s]["detectors"][det][setup][m]["mean"] for s in seeds], float)
                cell[m] = {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                           "min": float(np.min(v)), "max": float(np.max(v)), "per_seed": v.tolist()}
            out["detectors"][det][setup] = cell
    return out


def run_seeds(config: StudyConfig, seeds, out, progress: bool = True) -> dict:
    """The study ``config`` once per GAN seed (``out/seed<S>/``, each cached and resumable as usual),
    then ``out/seeds.json`` and ``out/seeds.md``: the spread over seeds (:func:`summarise_seeds`).
    Bit-identical numbers hold on one machine only; across machines, CPU kernels differ and GAN
    training amplifies it, so a result worth quoting is a spread over seeds."""
    from forensics.report import seeds_text

    out = Path(out)
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"give distinct seeds, not {seeds}")
    results = {s: run_study(config.replace(seed=s), out / f"seed{s}", progress)["results"] for s in seeds}
    summary = {"config": {**config.to_dict(), "seed": seeds}, **summarise_seeds(results)}
    write_json(out / "seeds.json", summary)
    from forensics.io import atomic_write_text

    atomic_write_text(out / "seeds.md", seeds_text(summary) + "\n")
    return summary


def run_study(config: StudyConfig, out, progress: bool = True, fid_features=None) -> dict:
    """Run (or resume) the counterexample study ``config`` in folder ``out``: every finished stage whose
    chained key still matches is reused. Returns ``{"results": ..., "report": (md, html)}``.
    ``fid_features`` replaces the Inception network (FID stage, FID training schedule) in tests."""
    return Study(config, out, progress, fid_features).run()

"""The counterexample study as a typed config: one real source, one GAN, its image sources
(objective x quantization x last-layer setup, plus extra row families) and the detectors, with the
``tiny``, ``demo`` and ``paper`` presets, and the plan of studies a preset runs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np

from forensics.core.config import Config, Count, Range
from forensics.detectors.spectral import PAPER_DETECTORS, TOOLKIT_DETECTORS

#: the demo's detectors: the toolkit's variants (defined from 16 px)
DEFAULT_DETECTORS = TOOLKIT_DETECTORS


#: ``--preset paper``: epochs per GAN over the real set (Chandrasegaran et al.)
PAPER_EPOCHS = {"dcgan": 50, "lsgan": 50, "wgan-gp": 100}


PAPER_GANS = ("dcgan", "lsgan", "wgan-gp")


#: the paper's real preprocessing: centre crop to the short side (178 for CelebA), PIL bilinear to 128
PAPER_POLICY = "resize:128:pil-bilinear"


@dataclass(frozen=True)
class SourceFamily(Config):
    """An extra row family of a study: one training objective (and quantization) trained for its own
    few setups only, beside the study's objectives x quantizations x setups product; e.g. the demo's
    ``SourceFamily("ssgan-ms", setups=("baseline", "N.1.5"))`` asks whether the objective changes the
    spectral artefact without multiplying every setup. ``steps`` None: the study's."""

    objective: str = "ssgan-ms"
    setups: tuple[str, ...] = ("baseline", "N.1.5")
    quant: str = "none"
    steps: Count | None = None

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

    @classmethod
    def parse_list(cls, text: str | None) -> tuple[dict, ...] | None:
        """``"ssgan-ms:baseline+N.1.5:750;infomax:baseline"`` -> the families (as dicts, what a
        :class:`StudyConfig` takes); ``"none"`` -> ``()`` (no family); ``None`` -> ``None`` (the default)."""
        if text is None:
            return None
        if text.strip().lower() == "none":
            return ()
        return tuple(cls.parse(t).to_dict() for t in text.split(";") if t.strip())

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


#: ``forensics demo``'s extra row family: SSGAN-MS (about as fast as DCGAN) at baseline and N.1.5, half
#: the demo's steps, so the demo costs about a quarter more (see :meth:`StudyConfig.demo`)
DEMO_FAMILY = SourceFamily("ssgan-ms", ("baseline", "N.1.5"))

#: ``forensics demo``'s diffusion-era rows: latent diffusion's own decoder (nearest + conv 3x3 on every up-block)
#: vs transposed convolutions, reconstructing held-out reals; measured to add about 2.5-5.5 min (docs/diffusion.md)
DEMO_SOURCES = ("ae-kl:N.1.3", "ae-kl:baseline")


@dataclass(frozen=True)
class StudyConfig(Config):
    """One counterexample study: one real source, one GAN, several last-layer setups, detectors.

    ``device`` is where it runs, not what it computes: it is recorded but kept out of cache keys.
    """

    real: str = "builtin"
    gan: str = "dcgan"
    setups: tuple[str, ...] = ("baseline", "N.1.5", "B.1.5", "Z.1.5")
    size: Annotated[int, Range(16)] = 32  # a power of two
    steps: Count = 1500
    n_fake: Count = 1000
    seed: Annotated[int, Range(0, 2**63 - 1)] = 0  # (the study derives its stages' seeds from it)
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    gan_preset: str = "tiny"
    gan_overrides: dict = field(default_factory=dict)
    n_train: Annotated[int, Range(2)] = 100
    reps: Count = 10
    n_real: Count | None = None
    policy: str | None = None
    device: str = "auto"
    #: image sources beyond the GAN's own loss: training objectives (the GAN's own name = its loss;
    #: e.g. ("dcgan", "infomax", "ssgan-ms", "dag")) x quantizations (("none", "w4a4")); every
    #: combination is trained for every setup. The first combination is the one detectors train on.
    objectives: tuple[str, ...] = ()
    quants: tuple[str, ...] = ("none",)
    #: FID and KID of each source's first ``fid_n`` fakes against (at most) ``fid_n`` of the study's real
    #: images, with the real Inception network (``fid_mode`` resize); None: not measured (the demo)
    fid_n: Annotated[int, Range(2)] | None = None
    fid_mode: str = "clean"
    #: extra row families, each trained for its own setups only (not multiplied by the product above)
    extra: tuple[SourceFamily, ...] = ()
    #: the GAN runs' FID schedule (early stopping, samples from the best-FID checkpoint): None = the GAN
    #: preset's default (``paper``: on when the Inception weights are installed, else off with a warning;
    #: ``tiny``: off), True/False = on/off; ``train_fid_n`` images per measurement (None: the schedule's
    #: default, 1000)
    train_fid: bool | None = None
    train_fid_n: Annotated[int, Range(2)] | None = None
    #: LRP explanations of the explainable detectors (an MLP or LR on spectral features, the CNNs):
    #: relevance per frequency over ``n_explain`` held-out images of each group (0: none)
    n_explain: Annotated[int, Range(0)] = 200
    #: diffusion-era sources beside the GAN setups (``KIND[-fF]:SPEC``, e.g. ``("ae-kl:N.1.3", "ldm:baseline")``,
    #: :mod:`forensics.generators.source_config`), each a row: trained on the study's real images with
    #: ``source_preset``'s nets for ``source_steps`` steps (None: the study's); autoencoders yield
    #: reconstructions of held-out real images (trained on the others), ddpm/ldm DDIM samples
    source_specs: tuple[str, ...] = ()
    source_preset: str = "tiny"
    source_steps: Count | None = None
    #: score the default model of ``forensics detect`` (trained on real images only) on every group,
    #: beside the detectors trained on real vs baseline; None: when the study has ``source_specs``
    default_model: bool | None = None

    # ------------------------------------------------------------------ presets
    @classmethod
    def tiny(cls, **changes) -> "StudyConfig":
        """``counterexample --preset tiny``: tiny DCGANs at 32 px on the built-in photos, four setups."""
        return cls(**{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def demo(cls, **changes) -> "StudyConfig":
        """``forensics demo``: :meth:`tiny` plus one cheap extra row family (:data:`DEMO_FAMILY`:
        SSGAN-MS at baseline and N.1.5, trained for half the study's steps) that shows whether the
        training objective changes the spectral artefact; ``extra=()`` leaves it out. Plus the
        diffusion-era rows :data:`DEMO_SOURCES`, also at half the steps (``source_specs=()`` leaves them out),
        so the demo stays within 10 minutes on 2 cores."""
        c = cls.tiny(**{k: v for k, v in changes.items() if k not in ("extra", "source_specs")})
        extra = changes.get("extra")
        if extra is None:  # (given families: SourceFamily objects or their dicts)
            extra = (DEMO_FAMILY.replace(steps=max(1, c.steps // 2)),)
        specs = changes.get("source_specs")
        steps = changes.get("source_steps", max(1, c.steps // 2))
        return c.replace(extra=tuple(extra), source_specs=tuple(DEMO_SOURCES if specs is None else specs),
                         source_steps=steps)

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
        if self.size & (self.size - 1):
            raise ValueError(f"size must be a power of two >= 16, not {self.size}")
        if self.n_fake <= self.n_train:
            raise ValueError(f"n_fake ({self.n_fake}) must exceed the {self.n_train} training images per class")
        if self.n_real is not None and self.n_real <= self.n_train:
            raise ValueError(f"n_real ({self.n_real}) must exceed the {self.n_train} training images per class")
        if self.n_real is not None:
            from forensics.generators.presets import preset

            batch = preset(self.gan_preset, self.gan, **dict(self.gan_overrides)).get("batch", 1)
            if self.n_real < batch:
                raise ValueError(f"n_real ({self.n_real}) is smaller than one GAN training batch ({batch})")
        from forensics.metrics.inception import MODES

        if self.fid_mode not in MODES:
            raise ValueError(f"unknown FID resize mode {self.fid_mode!r}; choose from {', '.join(MODES)}")
        if not self.detectors:
            raise ValueError("no detectors given")
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
        from forensics.generators.config import check_params

        check_params(self.gan_overrides, preset(self.gan_preset, self.gan, **self.gan_overrides), "gan_overrides")
        if self.train_fid_n is not None and (self.train_fid is False or (
                self.train_fid is None and self.gan_preset != "paper")):
            raise ValueError(f"an FID sample size for training ({self.train_fid_n}) was given, but the GAN runs "
                             f"train without the FID schedule")
        object.__setattr__(self, "extra", tuple(f if isinstance(f, SourceFamily) else SourceFamily.from_dict(f)
                                                for f in self.extra))
        for f in self.extra:
            if f.objective in ("dcgan", "lsgan", "wgan-gp") and f.objective != self.gan:
                raise ValueError(f"extra family {f.objective!r}: another GAN's loss; use {self.gan} or an objective")
        from forensics.generators.source_config import SOURCE_PRESETS, parse_source

        if self.source_preset not in SOURCE_PRESETS:
            raise ValueError(f"unknown source preset {self.source_preset!r}; choose from {', '.join(SOURCE_PRESETS)}")
        specs = tuple(str(parse_source(x)) for x in self.source_specs)  # canonical spelling; a bad spec fails here
        if len(set(specs)) != len(specs):
            raise ValueError(f"sources repeat: {', '.join(specs)}")
        object.__setattr__(self, "source_specs", specs)
        for src in self.sources():
            if src.spec is not None:
                self.source_config(src, data=self.real)  # sizes the nets cannot take fail before any training
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
        out += [Source(spec.partition(":")[0], "none", spec.partition(":")[2], False, False, self.source_steps, spec)
                for spec in self.source_specs]
        return out

    def source_config(self, src: Source, data: str):
        """The :class:`~forensics.generators.source_config.SourceConfig` of diffusion-era source ``src``:
        the study's size, seed, subset, policy and device, trained on ``data`` (for autoencoders the real
        images that are not held out)."""
        from forensics.generators.source_config import SourceConfig
        from forensics.generators.sources import source_config

        steps = src.steps or self.steps
        base = SourceConfig.from_preset(self.source_preset, parse_kind(src.spec), data=data, size=self.size,
                                        steps=steps, seed=self.seed, policy=self.policy, device=self.device,
                                        sample_every=max(steps, 1), checkpoint_every=max(500, steps // 20))
        return source_config(src.spec, base)

    @property
    def scores_default_model(self) -> bool:
        """Whether the default model is scored (``default_model``; None: when there are diffusion-era sources)."""
        return bool(self.source_specs) if self.default_model is None else self.default_model

    def key(self, *names: str) -> dict:
        """The settings ``names`` (for a stage's own cache key)."""
        return {n: getattr(self, n) for n in names}

    def plan(self, out) -> dict:
        """This study as ``--dry-run`` prints it: its folder, settings and the image sources it trains."""
        return {"out": str(out), **self.to_dict(),
                "sources": [{"label": s.label, "steps": s.steps or self.steps} for s in self.sources()]}


def parse_kind(spec: str) -> str:
    """The kind of a diffusion-era source spec (``"ae-kl-f8:N.1.3"`` -> ``"ae-kl"``)."""
    from forensics.generators.source_config import parse_source

    return parse_source(spec).kind


@dataclass(frozen=True)
class Source:
    """One image source of a study: a training objective, a quantization and a last-layer setup; or a
    diffusion-era source (``spec``, e.g. ``ae-kl:N.1.3``: ``objective`` its kind, ``setup`` its upsampling)."""

    objective: str
    quant: str
    setup: str
    primary_loss: bool  #: the objective is the GAN's own loss
    primary: bool  #: the source the detectors are trained on (with its baseline setup)
    steps: int | None = None  #: training steps (None: the study's)
    spec: str | None = None  #: a diffusion-era source's spec (None: a GAN)

    @property
    def autoencoder(self) -> bool:
        """A diffusion-era autoencoder: its images are reconstructions of held-out real images."""
        return self.spec is not None and self.spec.startswith("ae-")

    @property
    def folder(self) -> str:
        """Its folder under ``runs/`` and ``fakes/``: the label, with ``_`` for a spec's ``:``."""
        return self.label.replace(":", "_")

    @property
    def label(self) -> str:
        """Its name in tables and folders: the spec of a diffusion-era source, the setup alone for the
        detectors' source, else ``objective[@quant]/setup``."""
        if self.spec is not None:
            return self.spec
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
        from forensics.io.sources import folder_files

        real = changes.get("real", "")
        if not Path(real).is_dir():
            raise ValueError(f"{real}: the paper preset derives its training length from a folder of real images; "
                             f"give the number of steps for other sources")
        n_real = len(folder_files(Path(real))[1])
    real = changes.pop("real")
    steps = changes.pop("steps", None)
    return [(c, out / c.gan) for c in paper_plan(real, steps=steps, n_real_images=n_real, gans=gans, **changes)]

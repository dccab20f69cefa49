"""The typed configuration of one diffusion-era source run, and its presets.

A :class:`SourceConfig` is to the autoencoders and diffusion models what
:class:`~forensics.generators.config.GanConfig` is to the GANs: a frozen
:class:`~forensics.core.config.Config` holding the kind of source, the spec of the upsampling that
makes its pixels, the data, size, length, seed, hyper-parameters (``params``, from a preset) and the
sample/checkpoint cadence. The run folder's ``config.json`` holds it under ``"config"``, so
``SourceConfig.load(run / "config.json")`` rebuilds the run.

Kinds:

``ae-kl`` / ``ae-vq``
    a convolutional autoencoder of the latent-diffusion kind (Rombach et al. 2022), KL-regularised
    or vector-quantised, downsampling by ``factor`` (4 or 8).
``ddpm``
    a pixel-space DDPM (Ho et al. 2020) whose U-Net up-blocks take the spec.
``ldm``
    a DDPM on the latent of an autoencoder (its ``first_stage``, trained first in the same run
    folder), decoded by that autoencoder's decoder, whose up-blocks take the spec.

``last_layer`` is the spec string of the layers (:mod:`forensics.generators.layers`) of every
upsampling block that makes pixels: all the decoder's (``ae-*``, ``ldm``) or U-Net's (``ddpm``) up-blocks
unless ``inner_layer`` names another spec for the blocks before the last one (``inner_layer="baseline"``
gives the GANs' layout: transposed convolutions, then the spec as the last upsampling).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Annotated

from forensics.core.config import Config, Count, Range, Seed

KINDS = ("ae-kl", "ae-vq", "ddpm", "ldm")
AUTOENCODERS = ("ae-kl", "ae-vq")
FACTORS = (4, 8)
PADDINGS = ("zeros", "replicate", "reflect", "circular")
_SPEC = re.compile(r"^(ae-kl|ae-vq|ddpm|ldm)(?:-f(\d+))?:(.+)$")

#: an autoencoder's hyper-parameters. ``ch_mult``: width multipliers per resolution level, of which a
#: factor-F autoencoder uses the first ``log2(F) + 1``. ``disc_weight`` 0 turns the patch discriminator off
_AE = {"ch": 16, "ch_mult": [1, 2, 2, 4], "n_res": 1, "z_ch": 4, "batch": 8, "lr": 2e-3, "beta1": 0.5,
       "beta2": 0.9, "disc_weight": 0.0, "disc_start": 0, "ndf": 32, "lr_d": 2e-4}
#: a diffusion model's: the U-Net (``ch_mult`` one entry per level, ``attn`` self-attention in the middle
#: block), the noise schedule (``timesteps``, betas from ``beta_start`` to ``beta_end``), the EMA of
#: the weights that samples come from, and the default DDIM step count. ``schedule``: linear betas (DDPM) or
#: linear in their square root (``scaled-linear``, latent diffusion's)
_UNET = {"ch": 32, "ch_mult": [1, 2, 2], "n_res": 1, "attn": True, "batch": 32, "lr": 2e-4, "beta1": 0.9,
         "beta2": 0.999, "timesteps": 1000, "schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02, "ema": 0.995,
         "ddim_steps": 50}

SOURCE_PRESETS: dict[str, dict[str, dict]] = {
    # CPU-sized nets for 32-64 px (the tests, the demo)
    "tiny": {
        "ae-kl": {**_AE, "kl_weight": 1e-6},
        "ae-vq": {**_AE, "n_codes": 256, "beta": 0.25},
        "ddpm": dict(_UNET),
        # the latent U-Net upsamples as latent diffusion's own (nearest + conv 3x3); LDM's schedule
        "ldm": {**_UNET, "ch": 64, "ch_mult": [1, 2], "schedule": "scaled-linear", "beta_start": 0.0015,
                "beta_end": 0.0195, "unet_layer": "N.1.3"},
    },
    # wider nets for 128-256 px on a GPU (steps/s not measured yet: no GPU was lent)
    "gpu": {
        "ae-kl": {**_AE, "ch": 64, "ch_mult": [1, 2, 4, 4], "n_res": 2, "batch": 32, "lr": 4.5e-4, "ndf": 64,
                  "kl_weight": 1e-6},
        "ae-vq": {**_AE, "ch": 64, "ch_mult": [1, 2, 4, 4], "n_res": 2, "batch": 32, "lr": 4.5e-4, "ndf": 64,
                  "n_codes": 1024, "beta": 0.25},
        "ddpm": {**_UNET, "ch": 64, "ch_mult": [1, 2, 2, 4], "n_res": 2, "batch": 64, "ema": 0.9999},
        "ldm": {**_UNET, "ch": 128, "ch_mult": [1, 2, 4], "n_res": 2, "batch": 64, "ema": 0.9999,
                "schedule": "scaled-linear", "beta_start": 0.0015, "beta_end": 0.0195, "unet_layer": "N.1.3"},
    },
}


# ------------------------------------------------------------------------------ the source-spec syntax
@dataclass(frozen=True)
class SourceSpec:
    """One source named as ``KIND[-fF]:SPEC``, e.g. ``ae-kl:N.1.3``, ``ae-vq-f8:P.1.3``, ``ldm:baseline``."""

    kind: str
    last_layer: str
    factor: int | None = None
    """None: the kind's default (4; none for ddpm)"""

    def __str__(self) -> str:
        f = "" if self.factor in (None, 4) else f"-f{self.factor}"
        return f"{self.kind}{f}:{self.last_layer}"


def parse_source(text: str | SourceSpec) -> SourceSpec:
    """``"ae-kl:N.1.3"`` -> ``SourceSpec("ae-kl", "N.1.3")``; ``str(parse_source(s))`` is ``s`` normalised."""
    from forensics.generators.layers import LastLayerSpec

    if isinstance(text, SourceSpec):
        return text
    m = _SPEC.match(str(text).strip())
    if not m:
        raise ValueError(f"bad source spec {text!r}: use KIND[-fF]:SPEC with KIND one of {', '.join(KINDS)}, "
                         "e.g. ae-kl:N.1.3, ae-vq-f8:P.1.3, ldm:baseline")
    kind, f, spec = m.group(1), m.group(2), m.group(3)
    try:
        spec = str(LastLayerSpec.parse(spec))
    except ValueError as e:
        raise ValueError(f"bad source spec {text!r}: {e}") from None
    factor = None if f is None else int(f)
    if kind == "ddpm" and factor is not None:
        raise ValueError(f"bad source spec {text!r}: a pixel-space DDPM has no autoencoder factor")
    if factor is not None and factor not in FACTORS:
        raise ValueError(f"bad source spec {text!r}: the autoencoder factor is 4 or 8")
    return SourceSpec(kind, spec, factor)


def parse_sources(text: str) -> tuple[SourceSpec, ...]:
    """A comma list of source specs (``"ae-kl:N.1.3,ldm:baseline"``)."""
    specs = tuple(parse_source(t) for t in str(text).split(",") if t.strip())
    if not specs:
        raise ValueError("no source spec given")
    return specs


def is_source_spec(text) -> bool:
    """Whether ``text`` is a diffusion-era source spec (rather than, say, a GAN setup such as ``N.1.5``)."""
    try:
        parse_source(text)
    except ValueError:
        return False
    return True


def source_preset(name: str, kind: str, **overrides) -> dict:
    """The hyper-parameters of preset ``name`` for ``kind``, with ``overrides`` (not None) applied."""
    if name not in SOURCE_PRESETS:
        raise ValueError(f"unknown source preset {name!r}; choose from {', '.join(SOURCE_PRESETS)}")
    if kind not in SOURCE_PRESETS[name]:
        raise ValueError(f"unknown source kind {kind!r}; choose from {', '.join(KINDS)}")
    return _with(dict(SOURCE_PRESETS[name][kind]), kind, overrides)


def _with(p: dict, kind: str, overrides: dict) -> dict:
    p = {k: (list(v) if isinstance(v, list) else v) for k, v in p.items()}
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in p:
            raise ValueError(f"{kind} has no hyper-parameter {k!r}; it has {', '.join(sorted(p))}")
        p[k] = [int(x) for x in v] if isinstance(p[k], list) else type(p[k])(v)
    return p


def _check_params(kind: str, preset: str, params: dict, where: str) -> None:
    if preset not in SOURCE_PRESETS:
        raise ValueError(f"unknown source preset {preset!r}; choose from {', '.join(SOURCE_PRESETS)}")
    need = set(SOURCE_PRESETS[preset][kind])
    if set(params) != need:
        missing, extra = sorted(need - set(params)), sorted(set(params) - need)
        raise ValueError(f"{where} hyper-parameters: missing {missing or 'none'}, unknown {extra or 'none'}")
    if not params["ch_mult"] or any(int(m) < 1 for m in params["ch_mult"]):
        raise ValueError(f"{where}: ch_mult must be positive width multipliers, got {params['ch_mult']}")
    for k in ("ch", "batch", "n_res"):
        if int(params[k]) < 1:
            raise ValueError(f"{where}: {k} must be >= 1, got {params[k]}")


@dataclass(frozen=True)
class FirstStage(Config):
    """The autoencoder a latent diffusion model is trained on (trained first, in ``RUN/first_stage``)."""

    kind: str = "ae-kl"
    steps: Count = 1000
    params: dict = field(default_factory=dict)
    """its hyper-parameters: the preset's for ``kind`` (the LDM's preset) with changes"""


@dataclass(frozen=True)
class SourceConfig(Config):
    kind: str = "ae-kl"
    """ae-kl, ae-vq, ddpm or ldm"""
    last_layer: str = "N.1.3"
    """the upsampling of the up-blocks that make pixels (a spec of :mod:`forensics.generators.layers`);
    the default is latent diffusion's own decoder upsampling, nearest + conv 3x3"""
    inner_layer: str | None = None
    """the spec of the up-blocks before the last one; None: ``last_layer`` too"""
    factor: Annotated[int, Range(4, 8)] | None = None
    """the autoencoder's downsampling (ae-*, ldm): 4 (default) or 8; None for ddpm"""
    padding: str = "replicate"
    """padding of the 'same' convolutions: replicate (default: the border adds no position, so a constant
    image stays constant through every N/B network), zeros (as latent diffusion), reflect, circular"""
    data: str = "builtin"
    size: Annotated[int, Range(16)] = 32
    steps: Annotated[int, Range(0)] = 1000  # 0: the initial weights only
    """training steps to reach (in total, when resuming); for ldm the diffusion's (``first_stage.steps``
    the autoencoder's)"""
    preset: str = "tiny"
    params: dict = field(default_factory=dict)
    first_stage: FirstStage | None = None
    """ldm only: its autoencoder (None: the preset's ae-kl, 1000 steps)"""
    seed: Seed = 0
    n_images: Count | None = None
    policy: str | None = None
    sample_every: Count = 500
    checkpoint_every: Count = 500
    device: str = "auto"

    #: settings a resumed run must share with the saved one
    RESUME_KEYS = ("kind", "last_layer", "inner_layer", "factor", "padding", "data", "size", "preset", "params",
                   "first_stage", "seed", "n_images", "policy")

    # ------------------------------------------------------------------ named constructors
    @classmethod
    def from_preset(cls, name: str, kind: str, params: dict | None = None, first_stage: FirstStage | dict | None = None,
                    **changes) -> SourceConfig:
        """Preset ``name``'s hyper-parameters for ``kind`` with ``params`` overriding some; for ldm,
        ``first_stage`` (a :class:`FirstStage`, or a dict of its ``kind``, ``steps`` and ``params``
        changes) its autoencoder. ``changes`` set other fields."""
        p = source_preset(name, kind, **(params or {}))
        fs = None
        if kind == "ldm":
            if isinstance(first_stage, FirstStage):
                fs = first_stage
            else:
                d = dict(first_stage or {})
                fk = d.pop("kind", "ae-kl")
                fs = FirstStage(kind=fk, steps=int(d.pop("steps", 1000)),
                                params=source_preset(name, fk, **d.pop("params", {})))
                if d:
                    raise ValueError(f"first_stage has no setting(s) {', '.join(sorted(d))}: kind, steps, params")
        elif first_stage is not None:
            raise ValueError(f"{kind} has no first stage (only ldm)")
        if kind != "ddpm" and changes.get("factor") is None:
            changes["factor"] = 4
        return cls(kind=kind, preset=name, params=p, first_stage=fs, **changes)

    @classmethod
    def tiny(cls, kind: str = "ae-kl", params: dict | None = None, **changes) -> SourceConfig:
        """CPU-sized networks for 32-64 px."""
        return cls.from_preset("tiny", kind, params, **changes)

    @classmethod
    def gpu(cls, kind: str = "ae-kl", params: dict | None = None, **changes) -> SourceConfig:
        """Wider networks for 128-256 px on a GPU."""
        return cls.from_preset("gpu", kind, params, **changes)

    @classmethod
    def build(cls, config_file=None, preset: str | None = None, source: str | None = None,
              params: dict | None = None, first_stage_steps: int | None = None, **fields) -> SourceConfig:
        """A config from a JSON file (or a run's ``config.json``) and/or a preset and a source spec
        (``ae-kl:N.1.3``: kind, last layer and factor), ``fields``, ``params`` (hyper-parameters) and
        ``first_stage_steps`` (ldm) that are not None overriding it. Naming another kind or ``preset`` than
        the file's takes that preset's hyper-parameters."""
        fields = {k: v for k, v in fields.items() if v is not None}
        kind = None
        if source is not None:
            s = parse_source(source)
            kind, fields["last_layer"] = s.kind, s.last_layer
            if s.kind != "ddpm":
                fields["factor"] = s.factor or 4
        cfg = cls._build(config_file, preset, kind, **fields).with_params(**(params or {}))
        if first_stage_steps is not None:
            if cfg.first_stage is None:
                raise ValueError(f"{cfg.kind} has no first stage: first-stage steps apply to ldm only")
            cfg = cfg.replace(first_stage=cfg.first_stage.replace(steps=int(first_stage_steps)))
        return cfg

    @classmethod
    def _build(cls, config_file, preset: str | None, kind: str | None, **fields) -> SourceConfig:
        if config_file is not None:
            base = cls.load(config_file)
            if (kind or base.kind) != base.kind or (preset or base.preset) != base.preset:
                keep = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)
                        if f.name not in ("kind", "preset", "params", "first_stage", "factor")}
                if (kind or base.kind) != "ddpm" and base.factor is not None:
                    keep["factor"] = base.factor
                base = cls.from_preset(preset or base.preset, kind or base.kind, **{**keep, **fields})
            else:
                base = base.replace(**fields)
        else:
            if kind is None:
                raise ValueError("a source run needs a source spec (such as ae-kl:N.1.3) or a config file")
            base = cls.from_preset(preset or "tiny", kind, **fields)
        return base

    # ------------------------------------------------------------------------- checks
    def validate(self) -> None:
        from forensics.generators.layers import LastLayerSpec

        if self.kind not in KINDS:
            raise ValueError(f"unknown source kind {self.kind!r}; choose from {', '.join(KINDS)}")
        LastLayerSpec.parse(self.last_layer)
        if self.inner_layer is not None:
            LastLayerSpec.parse(self.inner_layer)
        if self.size < 16 or self.size & (self.size - 1):
            raise ValueError(f"image size must be a power of two >= 16, got {self.size}")
        if self.padding not in PADDINGS:
            raise ValueError(f"unknown padding {self.padding!r}; choose from {', '.join(PADDINGS)}")
        if self.kind == "ddpm":
            if self.factor is not None:
                raise ValueError("a pixel-space DDPM has no autoencoder factor; factor must be None")
        elif self.factor not in FACTORS:
            raise ValueError(f"autoencoder factor must be 4 or 8, got {self.factor}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        _check_params(self.kind, self.preset, self.params, self.kind)
        levels = len(self.params["ch_mult"])
        if self.kind in AUTOENCODERS:
            need = self.factor.bit_length()  # log2(factor) + 1 levels
            if levels < need:
                raise ValueError(f"a factor-{self.factor} autoencoder needs {need} ch_mult entries, got {levels}")
        else:
            p = self.params
            if p["schedule"] not in ("linear", "scaled-linear"):
                raise ValueError(f"unknown noise schedule {p['schedule']!r}: linear or scaled-linear")
            if not 1 <= int(p["ddim_steps"]) <= int(p["timesteps"]):
                raise ValueError(f"ddim_steps must be between 1 and timesteps ({p['timesteps']}), "
                                 f"got {p['ddim_steps']}")
            if not 0.0 <= float(p["ema"]) < 1.0:
                raise ValueError(f"ema must be in [0, 1), got {p['ema']}")
            res = self.size // (self.factor or 1)
            if levels < 2 or res >> (levels - 1) < 2:
                raise ValueError(f"a U-Net with {levels} levels (ch_mult) cannot run on {res}x{res} inputs: it needs "
                                 f">= 2 levels and >= 2x2 at the lowest; use a larger size or a smaller factor")
        if self.kind == "ldm":
            if self.first_stage is None:
                raise ValueError("ldm needs its first_stage (an autoencoder); build it with SourceConfig.tiny('ldm')")
            if self.first_stage.kind not in AUTOENCODERS:
                raise ValueError(f"an ldm's first stage is ae-kl or ae-vq, got {self.first_stage.kind!r}")
            if self.first_stage.steps < 0:
                raise ValueError(f"first_stage.steps must be >= 0, got {self.first_stage.steps}")
            _check_params(self.first_stage.kind, self.preset, self.first_stage.params, "first_stage")
            LastLayerSpec.parse(self.params["unet_layer"])
            if len(self.first_stage.params["ch_mult"]) < self.factor.bit_length():
                raise ValueError(f"the first stage needs {self.factor.bit_length()} ch_mult entries "
                                 f"for factor {self.factor}")
        elif self.first_stage is not None:
            raise ValueError(f"{self.kind} has no first stage (only ldm)")
        if self.size // (self.factor or 1) < 2:
            raise ValueError(f"size {self.size} / factor {self.factor} leaves a latent under 2x2")
        for k in ("sample_every", "checkpoint_every"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        if self.n_images is not None and self.n_images < 1:
            raise ValueError(f"n_images must be >= 1, got {self.n_images}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {self.device!r}: auto, cpu or cuda")

    # --------------------------------------------------------------------------- views
    @property
    def label(self) -> str:
        """``kind[-fF]:spec``, e.g. ``ae-kl:N.1.3`` or ``ldm-f8:baseline`` (the syntax of :func:`parse_source`)."""
        return str(SourceSpec(self.kind, self.last_layer, self.factor))

    def autoencoder(self) -> SourceConfig:
        """An ldm's first stage as an autoencoder run config (data, size, seed, specs shared with the ldm)."""
        if self.kind != "ldm":
            raise ValueError(f"{self.kind} has no first stage")
        fs = self.first_stage
        return self.replace(kind=fs.kind, steps=fs.steps, params=fs.params, first_stage=None)

    def resolved(self) -> SourceConfig:
        return self

    def resume_diff(self, other: SourceConfig) -> list[str]:
        """The settings in which ``other`` (a saved run) differs from this one."""
        return [k for k in self.RESUME_KEYS if getattr(self, k) != getattr(other, k)]

    def with_params(self, **params) -> SourceConfig:
        """A copy with some hyper-parameters changed (``None`` values are ignored)."""
        return dataclasses.replace(self, params=_with(self.params, self.kind, params))

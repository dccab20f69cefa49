"""The typed configuration of one GAN run.

A :class:`GanConfig` holds everything a run needs: the GAN (networks and its own loss),
the last upsampling layer, the training objective and its weights, the quantization,
the data, the size and length, the seed, the hyper-parameters and the sample/checkpoint
cadence. Presets are named constructors (``GanConfig.paper("dcgan")``,
``GanConfig.tiny("wgan-gp", objective="dag")``) whose hyper-parameters come from
:mod:`forensics.generators.presets`. The run folder's ``config.json`` holds it under the key
``"config"``, so ``GanConfig.load(run / "config.json")`` rebuilds the run exactly.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated

from forensics.core.config import Config, Count, Range, Seed
from forensics.generators.presets import GANS, PRESETS, preset
from forensics.generators.schedule import FidSchedule, preset_schedule

#: the values each hyper-parameter (``params``) and objective weight (``objective_params``) may take
PARAM_RANGES = {
    "batch": Range(1), "z_dim": Range(1), "ngf": Range(1), "ndf": Range(1), "conv_dim": Range(1), "n_res": Range(0),
    "lr_g": Range(0, lo_open=True), "lr_d": Range(0, lo_open=True),
    "beta1": Range(0, 1, hi_open=True), "beta2": Range(0, 1, hi_open=True),
    "lambda_cls": Range(0), "lambda_rec": Range(0), "lambda_gp": Range(0),
    # objective weights (forensics.generators.objectives)
    "alpha": Range(0), "beta": Range(0), "lambda_d": Range(0), "lambda_g": Range(0), "nrkhs": Range(1),
    "center": Range(),
}
#: the text-valued ones and their choices (None: any text)
PARAM_CHOICES = {"init": ("pytorch", "dcgan"), "loss": None, "policy": None}


def check_params(given: dict, expected: dict, what: str) -> dict:
    """``given`` hyper-parameters checked against ``expected`` (name -> a value of the right type, e.g. a
    preset's): each of the type of its expected value (an int is taken for a float) and inside its
    :data:`PARAM_RANGES`; returns them with floats as floats. ``what`` names them in errors
    (``params``)."""
    out = {}
    for k, v in given.items():
        want = expected.get(k)
        label = f"{what}.{k}"
        if isinstance(want, (int, float)) and not isinstance(want, bool):
            out[k] = PARAM_RANGES.get(k, Range()).check(label, v, type(want), setting=k)
        elif isinstance(want, str) or (want is None and k in PARAM_CHOICES):
            if not (isinstance(v, str) or (want is None and v is None)):
                raise ValueError(f"{label} must be text, got {v!r}")
            choices = PARAM_CHOICES.get(k)
            if choices and v not in choices:
                raise ValueError(f"{label} must be one of {', '.join(choices)}, got {v!r}")
            out[k] = v
        else:
            out[k] = v
    return out


@dataclass(frozen=True)
class GanConfig(Config):
    gan: str = "dcgan"
    """networks and base loss: dcgan, lsgan, wgan-gp or stargan"""
    last_layer: str = "baseline"
    data: str = "builtin"
    size: Annotated[int, Range(16)] = 32
    """a power of two"""
    steps: Annotated[int, Range(0)] = 1000
    """generator steps to train to (in total, when resuming)"""
    preset: str = "paper"
    """the preset ``params`` came from (recorded; ``params`` is what is used)"""
    params: dict = field(default_factory=dict)
    """hyper-parameters: learning rates, betas, batch, widths, ..."""
    objective: str | None = None
    """None: the GAN's own loss; or hinge, infomax, ssgan, ssgan-ms, dag (unconditional GANs)"""
    objective_params: dict = field(default_factory=dict)
    """the objective's weights (e.g. ``{"alpha": 0.2, "beta": 0.2}``); missing ones take its defaults"""
    quant: str = "none"
    """``none`` or ``wNaM``: N-bit weights, M-bit activations in G and D"""
    seed: Seed = 0
    n_images: Count | None = None
    policy: str | None = None
    """how real images are brought to ``size`` (None: centre square crop + area resize); a study
    passes its own, so GANs and detectors see the same real images"""
    attrs: tuple[str, ...] | None = None
    """StarGAN: the attributes it is conditioned on"""
    attributes: str | None = None
    """attribute table file (StarGAN), when the data folder has none of its own"""
    sample_every: Count = 500
    checkpoint_every: Count = 500
    device: str = "auto"
    fid_schedule: FidSchedule | None = None
    """the paper's FID schedule (FID every epoch, learning-rate cut on plateau, early stopping,
    samples from the best-FID checkpoint; :mod:`forensics.generators.schedule`); None: train ``steps`` steps.
    The ``paper`` preset turns it on for unconditional GANs unless told otherwise (:meth:`build`: when
    the Inception weights are installed)"""

    #: settings a run's ``config.json`` may lack (written before they existed; the default is what it did)
    LATER_FIELDS = ("fid_schedule",)
    #: settings a resumed run must share with the saved one
    RESUME_KEYS = ("gan", "last_layer", "data", "size", "preset", "params", "objective", "objective_params",
                   "quant", "seed", "n_images", "policy", "attrs", "attributes", "fid_schedule")

    # ------------------------------------------------------------------ named constructors
    @classmethod
    def from_preset(cls, name: str, gan: str, params: dict | None = None, **changes) -> "GanConfig":
        """Preset ``name``'s hyper-parameters for ``gan`` with ``params`` overriding some of them;
        ``changes`` set other fields. The seed is the preset's unless given."""
        p = preset(name, gan, **(params or {}))
        seed = p.pop("seed")
        if changes.get("seed") is None:
            changes["seed"] = seed
        if "fid_schedule" not in changes:  # an explicit None turns it off
            changes["fid_schedule"] = preset_schedule(name, gan, check=False)
        return cls(gan=gan, preset=name, params=p, **changes)

    @classmethod
    def paper(cls, gan: str = "dcgan", params: dict | None = None, **changes) -> "GanConfig":
        """Chandrasegaran et al.'s hyper-parameters (see :mod:`forensics.generators.presets`)."""
        return cls.from_preset("paper", gan, params, **changes)

    @classmethod
    def tiny(cls, gan: str = "dcgan", params: dict | None = None, **changes) -> "GanConfig":
        """Half-width networks for CPU runs."""
        return cls.from_preset("tiny", gan, params, **changes)

    @classmethod
    def build(cls, config_file=None, preset: str | None = None, gan: str | None = None,
              params: dict | None = None, fid: bool | None = None, fid_n: int | None = None,
              **fields) -> "GanConfig":
        """A config from a JSON file (or a run's ``config.json``) and/or a preset, with ``fields``
        and ``params`` (hyper-parameters) that are not ``None`` overriding it. Naming another
        ``gan`` or ``preset`` than the file's takes that preset's hyper-parameters (and its FID
        schedule default). ``fid`` True/False turns the FID schedule on (the paper's) or off;
        ``fid_n`` sets its number of images per measurement. With neither, a preset's default schedule
        is left out, with a warning, when the Inception weights are not installed
        (:func:`~forensics.generators.schedule.preset_schedule`); one asked for still needs them."""
        default = fid is None and fid_n is None
        return cls._build(config_file, preset, gan, params, default, **fields).with_fid(fid, fid_n)

    def with_fid(self, on: bool | None = None, n: int | None = None) -> "GanConfig":
        """A copy with the FID schedule turned on (its own, or the paper's) or off (``on``; None keeps
        it) and its images per measurement set to ``n`` (None keeps them)."""
        sched = self.fid_schedule
        if on is not None:
            sched = (sched or FidSchedule.paper()) if on else None
        if n is not None:
            if sched is None:
                raise ValueError(f"an FID sample size ({n}) was given, but the FID schedule is off")
            sched = sched.replace(n=int(n))
        return self if sched == self.fid_schedule else self.replace(fid_schedule=sched)

    @classmethod
    def _build(cls, config_file=None, preset: str | None = None, gan: str | None = None,
               params: dict | None = None, check_weights: bool = False, **fields) -> "GanConfig":
        fields = {k: v for k, v in fields.items() if v is not None}

        def from_preset(name, gan, **changes):  # with the preset's default schedule, if the weights allow it
            if check_weights and "fid_schedule" not in changes:
                changes["fid_schedule"] = preset_schedule(name, gan)
            return cls.from_preset(name, gan, **changes)

        if "attrs" in fields:
            fields["attrs"] = tuple(fields["attrs"])
        if config_file is not None:
            base = cls.load(config_file)
            if fields.get("objective", base.objective) != base.objective and "objective_params" not in fields:
                fields["objective_params"] = {}  # the saved weights belong to the saved objective
            if (gan or base.gan) != base.gan or (preset or base.preset) != base.preset:
                d = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)
                     if f.name not in ("gan", "preset", "params", "attrs", "objective_params", "fid_schedule")}
                base = from_preset(preset or base.preset, gan or base.gan, **{**d, **fields})
            else:
                base = base.replace(**fields)
        else:
            if gan is None:
                raise ValueError("a GAN run needs a GAN (dcgan, lsgan, wgan-gp or stargan) or a config file")
            base = from_preset(preset or "paper", gan, **fields)
        return base.with_params(**(params or {}))

    # ------------------------------------------------------------------------- checks
    def validate(self) -> None:
        from forensics.generators.layers import LastLayerSpec
        from forensics.generators.objectives import OBJECTIVES, objective_defaults
        from forensics.generators.quant import QuantSpec

        if self.gan not in GANS:
            raise ValueError(f"unknown GAN {self.gan!r}; choose from {', '.join(GANS)}")
        LastLayerSpec.parse(self.last_layer)
        if self.size & (self.size - 1):
            raise ValueError(f"image size must be a power of two >= 16, got {self.size}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        need = set(PRESETS[self.preset][self.gan]) - {"seed"}
        if set(self.params) != need:
            missing, extra = sorted(need - set(self.params)), sorted(set(self.params) - need)
            raise ValueError(f"{self.gan} hyper-parameters: missing {missing or 'none'}, unknown {extra or 'none'}")
        object.__setattr__(self, "params", check_params(self.params, PRESETS[self.preset][self.gan], "params"))
        if self.objective is not None:
            if self.gan == "stargan":
                raise ValueError("StarGAN trains with its own objective; objective must be None")
            if self.objective not in OBJECTIVES:
                raise ValueError(f"unknown objective {self.objective!r}; choose from {', '.join(OBJECTIVES)}")
        known = objective_defaults(self.objective or self.gan) if self.gan != "stargan" else {}
        extra = sorted(set(self.objective_params) - set(known))
        if extra:
            raise ValueError(f"objective {self.objective or self.gan!r} has no parameter(s) {', '.join(extra)}; "
                             f"it has {', '.join(known) or 'none'}")
        object.__setattr__(self, "objective_params", check_params(self.objective_params, known, "objective_params"))
        QuantSpec.parse(self.quant)
        if self.gan == "stargan" and not self.attrs:
            raise ValueError("StarGAN needs attribute names to condition on (attrs)")
        if self.gan != "stargan" and self.attrs:
            raise ValueError(f"{self.gan} is unconditional; attrs must be empty")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {self.device!r}: auto, cpu or cuda")
        if self.fid_schedule is not None and self.gan == "stargan":
            raise ValueError("the FID schedule samples unconditional GANs; StarGAN runs train without it")

    # --------------------------------------------------------------------------- views
    @property
    def objective_name(self) -> str:
        """The objective that runs (the GAN's own when ``objective`` is None)."""
        return self.objective or self.gan

    def resolved(self) -> "GanConfig":
        """This config with the objective's default weights written out (what ``config.json`` records)."""
        from forensics.generators.objectives import objective_defaults

        if self.gan == "stargan":
            return self
        return self.replace(objective_params={**objective_defaults(self.objective_name), **self.objective_params})

    def resume_diff(self, other: "GanConfig") -> list[str]:
        """The settings in which ``other`` (a saved run) differs from this one."""
        a, b = self.resolved(), other.resolved()
        return [k for k in self.RESUME_KEYS if getattr(a, k) != getattr(b, k)]

    def with_params(self, **params) -> "GanConfig":
        """A copy with some hyper-parameters changed (``None`` values are ignored)."""
        p = dict(self.params)
        for k, v in params.items():
            if v is None:
                continue
            if k not in p:
                raise ValueError(f"{self.gan} has no hyper-parameter {k!r}; it has {', '.join(sorted(p))}")
            p[k] = type(p[k])(v)
        return dataclasses.replace(self, params=p)

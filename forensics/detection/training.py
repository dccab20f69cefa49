"""Training the analyst's detectors (``forensics train-estimator``) and fusing saved ones
(``forensics fuse``). Training sets are loaded into memory (they are what the model learns from);
scoring and evaluation stream."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics.config import Config
from forensics.io import write_config

ESTIMATORS = ("robust", "frank", "periodic")


@dataclass(frozen=True)
class TrainEstimatorConfig(Config):
    detector: str
    real: str  # a folder, "builtin" or "builtin-wide" (the built-in photographs' patches of `size`)
    out: str
    fake: str | None = None  # not used by "robust", which learns from real images only
    size: int = 32
    target_fpr: float = 0.05
    preprocess: str = "none"
    seed: int = 0

    def validate(self):
        if self.detector not in ESTIMATORS:
            raise ValueError(f"unknown detector {self.detector!r}; choose from {', '.join(ESTIMATORS)}")
        if self.detector != "robust" and not self.fake:
            raise ValueError(f"the {self.detector} detector learns from generated images too; give a folder of them")
        if not 0 < self.target_fpr < 1:
            raise ValueError(f"target false-positive rate must be between 0 and 1, got {self.target_fpr}")


def _images(src: str, size: int, policy: str):
    """Images and a group label per image (the photograph, for ``builtin``)."""
    from forensics.data import BUILTIN_SOURCES, builtin_patches
    from forensics.images import load_folder

    if src in BUILTIN_SOURCES:
        ps = builtin_patches(size, extra=src == "builtin-wide")
        return list(ps.images), np.array([n.split("@")[0] for n in ps.names])
    good, _ = load_folder(src, policy)
    return [r.image for r in good], None


def train_estimator(cfg: TrainEstimatorConfig) -> dict:
    """Fit one of :data:`ESTIMATORS` and save it (model.json, model.npz, config.json)."""
    from forensics.detectors.frank import FrankDCTDetector
    from forensics.detectors.periodic import PeriodicSpectrumDetector
    from forensics.detectors.robust import RobustSpectralDetector

    real, groups = _images(cfg.real, cfg.size, cfg.preprocess)
    info = {"n_real": len(real)}
    if cfg.detector == "robust":
        det = RobustSpectralDetector(size=cfg.size, target_fpr=cfg.target_fpr, seed=cfg.seed, preprocess=cfg.preprocess)
        det.fit(real, groups=groups)
    else:
        fake, _ = _images(cfg.fake, cfg.size, cfg.preprocess)
        cls = FrankDCTDetector if cfg.detector == "frank" else PeriodicSpectrumDetector
        det = cls(size=cfg.size, seed=cfg.seed, preprocess=cfg.preprocess)
        # hold a quarter of the real images out of the fit to set the threshold on
        rng = np.random.default_rng(cfg.seed)
        perm = rng.permutation(len(real))
        k = max(1, len(real) // 4)
        cal, fit_real = [real[i] for i in perm[:k]], [real[i] for i in perm[k:]]
        det.fit(fit_real + fake, np.r_[np.zeros(len(fit_real)), np.ones(len(fake))].astype(int))
        det.calibrate(cal, cfg.target_fpr)
        info.update(n_generated=len(fake), n_calibration_real=k)
    det.save(cfg.out, extra={"training": {**cfg.to_dict(), **info}})
    write_config(cfg.out, {"command": "train-estimator", "config": cfg.to_dict(), **info})
    return {"detector": det.name, "threshold": float(det.threshold_), **info}


@dataclass(frozen=True)
class FuseConfig(Config):
    models: tuple[str, ...]
    out: str
    rule: str = "mean-logit"
    real: str | None = None  # with fake: fit "stack" / set the threshold on these
    fake: str | None = None
    target_fpr: float | None = None
    preprocess: str | None = None  # None: the members' own policy (they must agree)
    size: int | None = None  # side of the built-in patches (real="builtin"); None: see fusion_patch_size

    def validate(self):
        from forensics import checks
        from forensics.detectors.fusion import RULES
        from forensics.images import Policy

        if self.rule not in RULES:
            raise ValueError(f"unknown fusion rule {self.rule!r}; choose from {', '.join(RULES)}")
        if len(self.models) < 2:
            raise ValueError("a fusion needs at least two models")
        if self.rule == "stack" and not (self.real and self.fake):
            raise ValueError("stacking needs real and generated images")
        if self.target_fpr is not None and not self.real:
            raise ValueError("a target false-positive rate needs real images")
        if self.target_fpr is not None:
            checks.finite("target false-positive rate", self.target_fpr, 0, 1, lo_open=True, hi_open=True)
        if self.preprocess is not None:
            Policy.parse(self.preprocess)
        if self.size is not None:
            checks.whole("patch size", self.size, 8, 4096)


def fusion_policy(members, preprocess: str | None) -> str:
    """The fusion's preprocessing: ``preprocess`` if given, else the policy its members were
    trained with (``ValueError`` if they differ: one fused model scores one kind of input)."""
    from forensics.images import Policy

    if preprocess is not None:
        return str(Policy.parse(preprocess))
    pols = sorted({str(Policy.parse(getattr(m, "preprocess", "none"))) for m in members})
    if len(pols) > 1:
        raise ValueError(f"the member models preprocess differently ({', '.join(pols)}); choose one policy for "
                         "the fusion")
    return pols[0]


def fusion_patch_size(det, policy: str, size: int | None) -> int:
    """Side of the built-in real patches a fusion is fitted on: ``size``, else the policy's size,
    else the largest side a member needs (at least 32)."""
    from forensics.images import Policy

    return size or Policy.parse(policy).size or max(32, det.min_size)


def fuse(cfg: FuseConfig) -> dict:
    from forensics.detectors.fusion import fuse_models

    det = fuse_models(cfg.models, cfg.rule)
    det.preprocess = fusion_policy(det.members_, cfg.preprocess)
    det.target_fpr = cfg.target_fpr
    if cfg.real:  # stacking needs both classes; a target false-positive rate only the real images
        size = fusion_patch_size(det, det.preprocess, cfg.size)
        real, _ = _images(cfg.real, size, det.preprocess)
        fake = _images(cfg.fake, size, det.preprocess)[0] if cfg.fake else []
        det.fit(real + fake, np.r_[np.zeros(len(real)), np.ones(len(fake))].astype(int))
    det.save(cfg.out, extra={"fusion": cfg.to_dict()})
    write_config(cfg.out, {"command": "fuse", "config": cfg.to_dict()})
    return {"members": [m.name for m in det.members_], "threshold": float(det.threshold_),
            "preprocess": det.preprocess}

"""Training detectors, one home for every kind: the spectral detectors on real vs generated folders
(``forensics train-detector``), the CNN (``train-cnn``), the analyst's estimators (``train-estimator``)
and fusions of saved models (``fuse``). They share one protocol: a seeded held-out share of each
class (:func:`holdout`), a quarter of the training reals kept out of the fit when a threshold is set
for a target false-positive rate (:func:`calibration_share`), and the same held-out figures
(:func:`heldout_metrics`). Training sets are loaded into memory (they are what the model learns
from), except the spectral features, which stream; scoring and evaluation always stream."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np

from forensics.core import checks
from forensics.core.config import Config, Fraction, Range, Seed
from forensics.core.errors import UserError, warn
from forensics.core.progress import bar
from forensics.detection.detect import size_name, sizes_text
from forensics.detection.scoring import CHUNK
from forensics.detectors.cnn import CNNConfig, CNNDetector
from forensics.detectors.store import load_model
from forensics.io.files import check_output, write_config, write_json
from forensics.io.images import Policy, Prefetcher, map_chunks, scan_nonempty, warn_skipped
from forensics.io.sources import is_builtin, load_source, source_images
from forensics.metrics.rates import detection_rate, real_accuracy, roc_auc
from forensics.spectral import spectrum

ESTIMATORS = ("robust", "frank", "periodic")


# ------------------------------------------------------------------------------ the protocol
def holdout(n: int, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` indices of ``n`` images of one class: a permutation drawn from ``rng``, its
    first ``round(test_fraction * n)`` (at least one) held out for testing."""
    perm = rng.permutation(n)
    k = max(1, int(round(test_fraction * n)))
    if n - k < 1:
        raise ValueError(f"too few images ({n}) to hold out a test share")
    return perm[k:], perm[:k]


def calibration_share(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(calibration, fit)``: the first quarter (at least one) of the (shuffled) training indices
    ``train``, kept out of the fit to set the threshold on, and the rest."""
    k = max(1, len(train) // 4)
    return train[:k], train[k:]


def heldout_metrics(real_scores, fake_scores, threshold: float) -> dict:
    """Real accuracy, generated accuracy and ROC-AUC on the held-out images."""
    return {"real_accuracy": real_accuracy(real_scores, threshold),
            "generated_accuracy": detection_rate(fake_scores, threshold),
            "roc_auc": roc_auc(real_scores, fake_scores)}


# ------------------------------------------------------------------------- spectral detectors
def train_detector(real: str, fake: str, name: str, out, policy: str | None = None, seed: int = 0,
                   test_fraction: float = 0.2, target_fpr: float | None = None, patch_size: int = 64) -> dict:
    """Train detector ``name`` on real vs generated folders; save the model and metrics.json."""
    from forensics.detectors import IMAGE_DETECTORS, make_detector

    checks.seed(seed)
    checks.finite("test fraction", test_fraction, 0, 1, lo_open=True, hi_open=True)
    if target_fpr is not None:
        checks.finite("target false-positive rate", target_fpr, 0, 1, hi_open=True)
    checks.whole("patch size", patch_size, 8, 4096)
    if name in IMAGE_DETECTORS:
        raise ValueError(f"{name}: train-detector trains the spectral detectors; the CNN trains with train-cnn, "
                         f"robust/frank/periodic with train-estimator")
    det = make_detector(name, seed=seed, preprocess=str(Policy.parse(policy)))
    pol = Policy.parse(policy)
    check_output(out, "dir")
    Xr, size_r = source_features(det, real, patch_size, pol, "real")
    Xf, size_f = source_features(det, fake, patch_size, pol, "generated")
    for what, X in (("real", Xr), ("generated", Xf)):
        n_ok = int(np.isfinite(X).all(axis=1).sum())
        if n_ok < 2:
            raise ValueError(f"{what}: {n_ok} usable image(s); training and testing need at least 2 per class")
    if set(size_r) != set(size_f):
        warn(f"real images are {sizes_text(size_r)} but generated images are {sizes_text(size_f)}: the detector "
             f"may learn the size instead of the spectrum (give both classes one size, e.g. a resize policy"
             + (f", or patches of {sizes_text(size_f)} for the built-in reals" if is_builtin(real) else "") + ")")
    m = fit_and_evaluate(det, Xr, Xf, test_fraction, seed, target_fpr)
    config = {"command": "train-detector", "detector": name, "real": real, "fake": fake,
              "preprocess": str(pol), "seed": seed, "test_fraction": test_fraction,
              "target_fpr": target_fpr, "n_images": {"real": len(Xr), "generated": len(Xf)},
              "sizes": {"real": dict(size_r), "generated": dict(size_f)}}
    det.save(out, extra={"training": {**config, "metrics": m}})
    write_json(Path(out) / "metrics.json", {"detector": name, **m})
    write_config(out, config)
    return m


def source_features(det, src: str, patch_size: int, policy, what: str) -> tuple[np.ndarray, Counter]:
    """``det``'s features of every usable image of ``src`` (``builtin`` / ``builtin-wide``: the
    built-in patches of ``patch_size``; else a folder), streamed chunk by chunk so that only the
    features are ever held, never the whole folder's images, and how many images of each size
    (``"WxH"``) were used. Unreadable files are reported and skipped; images below
    ``det.min_size`` are an error."""
    sizes: Counter = Counter()
    if is_builtin(src):
        images = np.stack(source_images(src, patch_size).images)
        small = sum(min(im.shape[:2]) < det.min_size for im in images)
        feats = [det.transform(images)] if not small else []
        sizes[size_name(patch_size, patch_size)] = len(images)
    else:
        files = scan_nonempty(src)
        small = 0

        def keep(r) -> bool:
            nonlocal small
            if not r.ok:
                warn_skipped(r)
                return False
            if min(r.image.shape[:2]) < det.min_size:
                small += 1
                return False
            sizes[size_name(*r.image.shape[:2])] += 1
            return True

        feats = []
        with bar(total=len(files), desc=f"features of {what}", enabled=True) as pb:
            prefetch = Prefetcher(files, policy, ahead=2 * CHUNK)
            for loaded, _, f in map_chunks(prefetch, spectrum.single_threaded(det.transform), keep, CHUNK):
                if f is not None:
                    feats.append(f)
                pb.update(len(loaded))
    if small:
        raise UserError(f"{small} {what} images are smaller than {det.min_size} px, the minimum for {det.name}")
    if not feats:
        raise UserError(f"{src}: none of its images could be used")
    return np.concatenate(feats), sizes


def fit_and_evaluate(det, real_X: np.ndarray, fake_X: np.ndarray, test_fraction: float, seed: int,
                     target_fpr: float | None = None) -> dict:
    """Stratified split of precomputed features, fit, optional threshold calibration on a
    quarter of the training reals (held out from the fit), held-out metrics."""
    rng = np.random.default_rng(seed)
    rtr, rte = holdout(len(real_X), test_fraction, rng)
    ftr, fte = holdout(len(fake_X), test_fraction, rng)
    cal = None
    if target_fpr is not None:
        cal, rtr = calibration_share(rtr)
    det.fit_real_fake(real_X[rtr], fake_X[ftr])
    if cal is not None:
        det.calibrate(real_X[cal], target_fpr)
    sr, sf = det.score(real_X[rte]), det.score(fake_X[fte])
    thr = det.threshold_
    return {
        **heldout_metrics(sr, sf, thr),
        "threshold": float(thr),
        "n_train": {"real": int(len(rtr)), "generated": int(len(ftr))},
        "n_test": {"real": int(len(rte)), "generated": int(len(fte))},
        "n_calibration_real": 0 if cal is None else int(len(cal)),
        "target_fpr": target_fpr,
    }


# ------------------------------------------------------------------------------------ the CNN
def train_cnn(real: str, fake: str, out, cfg: CNNConfig, test_fraction: float = 0.2,
              n: int | None = None, progress: bool = True) -> dict:
    """Train the CNN detector on ``real`` (a folder, ``.npz``/IDX or ``builtin``) vs ``fake``
    (the same kinds), both centre-cropped to ``cfg.size`` (cropping, not resizing, keeps the
    upsampling traces); hold out ``test_fraction`` of each class (seeded); save the model,
    ``metrics.json`` and ``config.json`` in ``out``. Returns the held-out metrics."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test fraction {test_fraction} is not between 0 and 1")
    pol = f"crop:{cfg.size}"
    R = load_source(real, cfg.size, n=n, seed=cfg.seed, policy=pol, progress=progress)  # (builtin: patches)
    G = load_source(fake, cfg.size, n=n, seed=cfg.seed, policy=pol, progress=progress)
    rng = np.random.default_rng([cfg.seed, 3])
    rtr, rte = holdout(len(R.images), test_fraction, rng)
    ftr, fte = holdout(len(G.images), test_fraction, rng)
    rtr, rte, ftr, fte = R.images[rtr], R.images[rte], G.images[ftr], G.images[fte]
    det = CNNDetector(cfg).fit(np.r_[rtr, ftr], np.r_[np.zeros(len(rtr)), np.ones(len(ftr))], progress=progress)
    pr, pf = det.predict_proba(rte)[:, 1], det.predict_proba(fte)[:, 1]
    m = {**heldout_metrics(pr, pf, det.threshold_), "n_train": det.n_train_,
         "n_test": {"real": len(rte), "generated": len(fte)}}
    run = {"command": "train-cnn", "real": real, "fake": fake, "preprocess": pol, "test_fraction": test_fraction,
           "config": cfg.to_dict()}
    det.save(out, extra={"training": {**run, "metrics": m}})
    write_json(Path(out) / "metrics.json", m)
    write_config(out, run)
    return m


# ------------------------------------------------------------- the analyst's estimators, fusion
@dataclass(frozen=True)
class TrainEstimatorConfig(Config):
    detector: str
    real: str  # a folder, "builtin" or "builtin-wide" (the built-in photographs' patches of `size`)
    out: str
    fake: str | None = None  # not used by "robust", which learns from real images only
    size: Annotated[int, Range(8, 4096)] = 32
    target_fpr: Fraction = 0.05
    preprocess: str = "none"
    seed: Seed = 0

    def validate(self):
        if self.detector not in ESTIMATORS:
            raise ValueError(f"unknown detector {self.detector!r}; choose from {', '.join(ESTIMATORS)}")
        if self.detector != "robust" and not self.fake:
            raise ValueError(f"the {self.detector} detector learns from generated images too; give a folder of them")


def _images(src: str, size: int, policy: str):
    """Images and a group label per image (the photograph, for ``builtin``)."""
    s = source_images(src, size, policy)
    return s.images, s.groups


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
        cal_ix, fit_ix = calibration_share(np.random.default_rng(cfg.seed).permutation(len(real)))
        cal, fit_real = [real[i] for i in cal_ix], [real[i] for i in fit_ix]
        k = len(cal_ix)
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
    target_fpr: Fraction | None = None
    preprocess: str | None = None  # None: the members' own policy (they must agree)
    #: side of the built-in patches (real="builtin"); None: see fusion_patch_size
    size: Annotated[int, Range(8, 4096)] | None = None

    def validate(self):
        from forensics.detectors.fusion import RULES

        if self.rule not in RULES:
            raise ValueError(f"unknown fusion rule {self.rule!r}; choose from {', '.join(RULES)}")
        if len(self.models) < 2:
            raise ValueError("a fusion needs at least two models")
        if self.rule == "stack" and not (self.real and self.fake):
            raise ValueError("stacking needs real and generated images")
        if self.target_fpr is not None and not self.real:
            raise ValueError("a target false-positive rate needs real images")
        if self.preprocess is not None:
            Policy.parse(self.preprocess)


def fusion_policy(members, preprocess: str | None) -> str:
    """The fusion's preprocessing: ``preprocess`` if given, else the policy its members were
    trained with (``ValueError`` if they differ: one fused model scores one kind of input)."""
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
    return size or Policy.parse(policy).size or max(32, det.min_size)


def fuse(cfg: FuseConfig) -> dict:
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


def fuse_models(model_dirs, rule: str = "mean-logit", threshold: float = 0.5):
    """A :class:`~forensics.detectors.fusion.ScoreFusion` of saved model folders."""
    from forensics.detectors.fusion import ScoreFusion

    members = [load_model(d) for d in model_dirs]
    for d, m in zip(model_dirs, members):
        if not hasattr(m, "_state"):  # a CNN or hash model has files of its own, not an embeddable record
            raise ValueError(f"{d}: a {type(m).__name__} cannot be a fusion member (members are spectral and "
                             f"image-feature detectors saved as model.json + model.npz)")
    return ScoreFusion(rule=rule, threshold=threshold).with_members(members)

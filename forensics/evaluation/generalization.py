"""Leave-one-family-out generalization: how a detector does on a generator family it never saw.

The input is a labelled corpus folder (:mod:`forensics.io.corpus`: ``family`` ``KIND:SPEC``,
``group`` the source photograph). Families are grouped into *units* by ``by``:

``family``
    the exact family string (``gan-dcgan:N.1.5``);
``kind``
    the generator kind, the part before ``:`` without a quantization suffix (``@w4a4``) or an
    autoencoder factor (``-f8``): ``gan-dcgan@w4a4:N.1.5`` and ``gan-dcgan:baseline`` are both
    ``gan-dcgan``, so holding out a GAN objective also holds out its quantized variants;
``layer``
    the last-layer group of the spec: ``baseline``, ``N``, ``B``, ``Z``, ``P`` or ``other``
    (``up:N-x2`` and ``ae-kl:N.1.3`` are ``N``; ``up:bicubic-x2`` and ``-`` are ``other``).

**The split** (:func:`plan_splits`, a pure function of the manifest). Per repeat, the photo
groups are dealt into ``folds`` folds (seeded), and so are the images made from noise (group
``-``: each its own group; dealt family by family, so that each fold holds its share of every family). For fold ``j`` its *test share* is every image of its groups. Of the
other groups, a quarter of those with real photos (:func:`forensics.detection.training.calibration_share`)
are *calibration* groups. Then, for every unit ``F``:

- **train**: the real images and the fakes of units other than ``F`` outside the test share and
  the calibration groups (no fake of ``F``, no test-only family, no image that shares a photo with
  a test or calibration image);
- **calibration**: the real images of the calibration groups, held out of the fit: the
  threshold is set on them at ``target_fpr`` (the threshold a user would calibrate on photos of
  their own, never on the test images);
- **test**: the fakes of ``F`` and the real images in the test share.

Each fake is tested once per repeat (in the fold that holds its group). One more split per fold,
``(all)``, trains on every trainable family: it gives the "AUC when seen" column (a unit's
in-distribution figure, same test images) and the rows of the **test-only** families
(``test_only`` patterns, e.g. ``external-*``): they are never in any training set.

**Figures** per unit and fold: the number of test fakes, ROC-AUC (test reals vs the unit's test
fakes), TPR at ``target_fpr`` on the test reals (an oracle threshold, the curve's figure), and at
the calibrated threshold the detection rate and the real accuracy. The tables give mean ± std over
folds and repeats (population std; folds without a test fake of the unit do not count).

**Processing**: the test reals and fakes of each fold re-encoded as JPEG, resized, blurred ...
(:func:`forensics.io.processing.perturb`, identical for both classes), scored by the same models
at the same calibrated thresholds: real false-positive rate and detection rate of the held-out
fakes under each.

Images are decoded once (native resolution, no policy) and held; a file that cannot be read, or is
smaller than the detector's ``min_size``, is an error row (named, counted, left out of every set).
A detector that can take features (``features_of``: the spectral detectors; ``image_features`` +
``fit_features`` + ``p_generated_features``: the tiled estimators ``frank-lr``, ``periodic-lr``) has them
computed once per image (and once per processed image and fold), not once per model.
Folds are logged as they finish (``folds.json.partial``), so an interrupted run resumes.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np

from forensics.core.config import Config, Count, Range, Seed, fingerprint
from forensics.core.errors import UserError
from forensics.core.progress import bar
from forensics.detection.training import calibration_share
from forensics.detectors.names import make_detector
from forensics.evaluation.robustness import STRENGTH_RANGES, Perturbation
from forensics.io.corpus import read_manifest
from forensics.io.files import RowLog, atomic_write_text, check_output, write_config, write_json
from forensics.io.images import load_folder
from forensics.io.processing import RESIZE_FILTERS
from forensics.metrics.rates import detection_rate, mean_std, real_accuracy, roc_auc, threshold_at_fpr, tpr_at_fpr

#: how families are grouped into held-out units
BY = ("kind", "layer", "family")
LAYER_GROUPS = ("baseline", "N", "B", "Z", "P")
#: the split of each fold trained on every trainable family
ALL = "(all)"
CLEAN = "none"
#: the processing of the issue's table: JPEG q 95/85/75, resize x0.5/x2, blur sigma 0.5/1
DEFAULT_PROCESSING = ("jpeg:95", "jpeg:85", "jpeg:75", "resize:0.5", "resize:2", "blur:0.5", "blur:1")
#: images scored per call of the detector (bounds the memory of its per-image features)
SCORE_BATCH = 256


def unit_of(family: str, by: str) -> str:
    """The held-out unit of a family (see module)."""
    kind, _, spec = family.partition(":")
    if by == "family":
        return family
    if by == "kind":
        return re.sub(r"-f\d+$", "", kind.split("@")[0])
    if by == "layer":
        head = re.split(r"[.\-]", spec, maxsplit=1)[0]
        if head.lower() == "baseline":
            return "baseline"
        return head if head in LAYER_GROUPS else "other"
    raise ValueError(f"unknown unit {by!r}; choose from {', '.join(BY)}")


def is_test_only(family: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(family, p) for p in patterns)


def parse_processing(spec: str) -> tuple[str, float]:
    """``"jpeg:75"`` -> ``("jpeg", 75.0)``, the strength checked against the perturbation's range."""
    kind, sep, s = spec.partition(":")
    if not sep or kind not in STRENGTH_RANGES:
        raise ValueError(f"processing {spec!r}: expected KIND:STRENGTH, KIND one of {', '.join(STRENGTH_RANGES)}")
    try:
        v = float(s)
    except ValueError:
        raise ValueError(f"processing {spec!r}: the strength {s!r} is not a number") from None
    return kind, STRENGTH_RANGES[kind].check(f"{kind} strength", v, setting="processing")


@dataclass(frozen=True)
class GeneralizationConfig(Config):
    corpus: str
    detector: str  # a registered name (make_detector), e.g. native, periodic-lr, frank-lr
    out: str
    params: dict = field(default_factory=dict)  # the detector's parameters, e.g. {"size": 64}
    by: str = "family"  # kind | layer | family
    folds: Annotated[int, Range(2, 1000)] = 5  # folds of the photo groups
    repeats: Count = 1  # the photo groups dealt into folds this many times, each anew (seeded by seed, repeat)
    seed: Seed = 0
    target_fpr: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] = 0.05
    test_only: tuple[str, ...] = ("external-*",)  # family patterns never trained on
    units: tuple[str, ...] = ()  # hold out only these units (default: every one)
    processing: tuple[str, ...] = DEFAULT_PROCESSING  # KIND:STRENGTH of forensics.io.processing.perturb
    resize_filter: str = "bilinear"
    resume: bool = False

    def validate(self):
        from forensics.detectors.names import detector_names

        if self.detector not in detector_names():
            raise ValueError(f"unknown detector {self.detector!r}; choose from {', '.join(detector_names())}")
        if self.by not in BY:
            raise ValueError(f"unknown hold-out unit {self.by!r}; choose from {', '.join(BY)}")
        if self.resize_filter not in RESIZE_FILTERS:
            raise ValueError(f"unknown resize filter {self.resize_filter!r}; choose from {', '.join(RESIZE_FILTERS)}")
        for p in self.processing:
            parse_processing(p)
        if len(set(self.processing)) != len(self.processing) or CLEAN in self.processing:
            raise ValueError("processing: each KIND:STRENGTH once (the clean images are always measured)")


# ------------------------------------------------------------------------------------- the split
@dataclass(frozen=True)
class Split:
    """Index sets (into the corpus entries) of one held-out unit in one fold."""

    repeat: int
    fold: int
    unit: str  # the held-out unit, or ALL
    train: np.ndarray  # fitted on (real and generated)
    calibration: np.ndarray  # real images, held out of the fit, that set the threshold
    test_real: np.ndarray
    test_fake: np.ndarray


@dataclass(frozen=True)
class Fold:
    repeat: int
    fold: int
    test_groups: tuple[str, ...]  # photo groups of the test share (an image made from noise: "-#<its path>")
    calibration_groups: tuple[str, ...]
    splits: tuple[Split, ...]

    @property
    def key(self) -> str:
        return f"r{self.repeat}-f{self.fold}"


def plan_splits(entries, by: str = "family", folds: int = 5, repeats: int = 1, seed: int = 0,
                test_only=("external-*",), units=(), usable=None) -> list[Fold]:
    """The leave-one-unit-out splits of ``entries`` (:class:`forensics.io.corpus.Entry`), see the module:
    a pure function of the manifest, the settings and ``usable`` (entries that could be read; the others
    are in no set). Raises ``ValueError`` when a split would have nothing to train or calibrate on."""
    n = len(entries)
    usable = np.ones(n, bool) if usable is None else np.asarray(usable, bool)
    label = np.array([e.label for e in entries], np.int64)
    fake = label == 1
    held = np.array([e.label == 1 and is_test_only(e.family, test_only) for e in entries], bool)
    unit = np.array([unit_of(e.family, by) if fake[i] and not held[i] else "" for i, e in enumerate(entries)],
                    dtype=object)
    present = list(dict.fromkeys(unit[fake & ~held]))
    chosen = list(units) or present
    missing = [u for u in chosen if u not in present]
    if missing:
        raise UserError(f"no trainable family of the corpus is in unit(s) {', '.join(missing)} (by {by}); "
                        f"the units are {', '.join(present) or 'none'}")
    if not present:
        raise UserError("the corpus has no generated image of a trainable family")
    # each image's content key: its photo group, or its own key for an image made from noise
    key = np.array([e.group if e.group != "-" else f"-#{e.path}" for e in entries], dtype=object)
    linked = sorted({e.group for e in entries if e.group != "-"})
    loose = np.flatnonzero([e.group == "-" for e in entries])
    if len(linked) + len(loose) < folds:
        raise UserError(f"the corpus has {len(linked)} photo groups and {len(loose)} images without one: "
                        f"fewer than the {folds} folds")
    real_keys = set(key[label == 0])
    out = []
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        fold_of_group = {}
        for j, part in enumerate(np.array_split(rng.permutation(len(linked)), folds)):
            fold_of_group.update((linked[i], j) for i in part)
        fold_of = np.array([fold_of_group.get(e.group, -1) for e in entries], np.int64)
        nxt = len(linked) % folds  # the images made from noise: dealt round-robin, family by family, from the
        for fam in dict.fromkeys(entries[i].family for i in loose):  # first fold with fewest groups
            part = rng.permutation([i for i in loose if entries[i].family == fam])
            fold_of[part] = (nxt + np.arange(len(part))) % folds
            nxt = (nxt + len(part)) % folds
        for j in range(folds):
            test = fold_of == j
            rest = sorted({k for k in key[~test] if k in real_keys})
            if not rest:
                raise UserError(f"fold {j}: no real image outside the test share to calibrate and train on")
            perm = np.random.default_rng([seed, r, j]).permutation(len(rest))
            cal_keys = {rest[i] for i in calibration_share(perm)[0]}
            cal = np.array([k in cal_keys for k in key], bool)
            side = usable & ~test & ~cal
            splits = []
            for u in [*chosen, ALL]:
                tr = side & ((label == 0) | (fake & ~held & (unit != u)))
                tf = usable & test & fake & ((unit == u) if u != ALL else True)
                if not (tr & fake).any() or not (tr & ~fake).any():
                    what = "generated" if not (tr & fake).any() else "real"
                    raise UserError(f"holding out {u} (fold {j}) leaves no {what} image to train on")
                splits.append(Split(r, j, u, np.flatnonzero(tr), np.flatnonzero(usable & cal & ~fake),
                                    np.flatnonzero(usable & test & ~fake), np.flatnonzero(tf)))
            if not len(splits[0].calibration):
                raise UserError(f"fold {j}: none of the calibration photos could be read")
            out.append(Fold(r, j, tuple(sorted(set(key[test]))), tuple(sorted(cal_keys)), tuple(splits)))
    return out


# ------------------------------------------------------------------------------------- running
def figures(real, fake, threshold: float, target_fpr: float) -> dict:
    """The figures of one test set (scores that are not finite, images the detector could not
    score after processing, are left out and counted)."""
    real, fake = np.asarray(real, float), np.asarray(fake, float)
    r, f = real[np.isfinite(real)], fake[np.isfinite(fake)]
    return {"n_real": int(r.size), "n_fake": int(f.size), "n_unscored": int(real.size - r.size + fake.size - f.size),
            "auc": roc_auc(r, f), "tpr_at_fpr": tpr_at_fpr(r, f, target_fpr),
            "n_detected": int((f > threshold).sum()), "detection_rate": detection_rate(f, threshold),
            "n_false_positive": int((r > threshold).sum()), "real_accuracy": real_accuracy(r, threshold)}


class _Inputs:
    """What the detectors are given for the corpus entries, computed once: the images, or their features
    where the detector can take them (``features_of``: the spectral detectors' feature rows;
    ``image_features``: per-image feature arrays, e.g. tile features, fitted with ``fit_features`` and
    scored with ``p_generated_features``). Entries without an image, or below the detector's ``min_size``,
    have none and score NaN."""

    def __init__(self, det, images: list, min_size: int):
        self.det, self.min_size = det, min_size
        ok = [i for i, im in enumerate(images) if im is not None and min(im.shape[:2]) >= min_size]
        self.ok = np.zeros(len(images), bool)
        self.ok[ok] = True
        self.mode = ("rows" if hasattr(det, "features_of") else
                     "per-image" if hasattr(det, "image_features") and hasattr(det, "fit_features") else "images")
        self.data: list = list(images)
        if self.mode == "rows":  # one matrix, rows stacked by image size
            self.data = [None] * len(images)
            by_shape: dict = {}
            for i in ok:
                by_shape.setdefault(images[i].shape, []).append(i)
            for idx in by_shape.values():
                for s in range(0, len(idx), SCORE_BATCH):
                    part = idx[s:s + SCORE_BATCH]
                    F = np.asarray(det.features_of(np.stack([images[i] for i in part])), np.float64)
                    for i, f in zip(part, F):
                        self.data[i] = f
        elif self.mode == "per-image":
            for s in range(0, len(ok), SCORE_BATCH):
                part = ok[s:s + SCORE_BATCH]
                for i, f in zip(part, det.image_features([images[i] for i in part])):
                    self.data[i] = f

    def derived(self, images: list) -> _Inputs:
        """The same for other images (e.g. processed ones), with the same detector."""
        return _Inputs(self.det, images, self.min_size)

    def take(self, idx):
        got = [self.data[i] for i in idx]
        return np.stack(got) if self.mode == "rows" else got

    def fit(self, det, idx, y):
        return det.fit_features(self.take(idx), y) if self.mode == "per-image" else det.fit(self.take(idx), y)

    def score(self, det, idx) -> np.ndarray:
        """P(generated) of the entries ``idx`` (NaN where they have no input), in batches."""
        idx = np.asarray(idx, np.int64)
        out = np.full(len(idx), np.nan)
        ok = np.flatnonzero(self.ok[idx])
        for s in range(0, len(ok), SCORE_BATCH):
            part = ok[s:s + SCORE_BATCH]
            X = self.take(idx[part])
            out[part] = det.p_generated_features(X) if self.mode == "per-image" else det.p_generated(X)
        return out


def _condition_inputs(base: _Inputs, images: list, idx: np.ndarray, cond: str, cfg) -> _Inputs:
    """The inputs of the images ``idx`` under processing ``cond`` (the others left as ``None``)."""
    if cond == CLEAN:
        return base
    kind, strength = parse_processing(cond)
    done = Perturbation(kind, strength, cfg.seed, cfg.resize_filter)([images[i] for i in idx], positions=idx)
    out: list = [None] * len(images)
    for i, im in zip(idx, done):
        out[i] = im
    return base.derived(out)


def _run_fold(cfg: GeneralizationConfig, fold: Fold, entries, images: list, base: _Inputs, labels,
              advance=lambda: None) -> dict:
    """Fit every split of the fold, score its test share clean and under each processing: one log row
    (``advance()`` after each split fitted and scored clean, for a progress bar)."""
    models = []
    for s in fold.splits:
        det = make_detector(cfg.detector, seed=cfg.seed + fold.repeat, **cfg.params)
        try:
            base.fit(det, s.train, labels[s.train])
        except ValueError as e:
            raise UserError(f"{cfg.detector}: fitting without {s.unit} (repeat {fold.repeat}, fold {fold.fold}) "
                            f"failed: {e}") from None
        cal = base.score(det, s.calibration)
        if not np.isfinite(cal).any():
            raise UserError(f"fold {fold.fold}: the detector scored none of the calibration photos")
        models.append((s, det, threshold_at_fpr(cal, cfg.target_fpr)))
        advance()
    reals = fold.splits[0].test_real
    everything = np.union1d(reals, fold.splits[-1].test_fake)  # the (all) split tests every fake of the share
    row_of = [e.family if is_test_only(e.family, cfg.test_only) else unit_of(e.family, cfg.by) if e.label else ""
              for e in entries]  # the row of the (all) model's tables a fake counts in
    all_rows = list(dict.fromkeys(row_of[i] for i in np.flatnonzero(labels)))
    records = [{"unit": s.unit, "threshold": thr, "n_train_real": int((labels[s.train] == 0).sum()),
                "n_train_fake": int((labels[s.train] == 1).sum()), "n_calibration": len(s.calibration),
                "train_families": sorted({entries[i].family for i in s.train if labels[i]}), "conditions": {}}
               for s, _, thr in models]
    for cond in (CLEAN, *cfg.processing):
        inp = _condition_inputs(base, images, everything, cond, cfg)
        for rec, (s, det, thr) in zip(records, models):
            r = inp.score(det, reals)
            f = inp.score(det, s.test_fake)
            rows = {}
            if s.unit != ALL:
                rows[s.unit] = figures(r, f, thr, cfg.target_fpr)
            else:  # per unit (seen in training) and per test-only family
                names = np.array([row_of[i] for i in s.test_fake], dtype=object)
                for name in all_rows:
                    rows[name] = figures(r, f[names == name], thr, cfg.target_fpr)
            rec["conditions"][cond] = rows
    train_groups = sorted({entries[i].group for i in fold.splits[-1].train} - {"-"})
    return {"fold": fold.key, "repeat": fold.repeat, "index": fold.fold, "test_groups": list(fold.test_groups),
            "calibration_groups": list(fold.calibration_groups), "train_groups": train_groups, "splits": records}


def _load(corpus, min_size: int, name: str, progress: bool):
    """Every entry's image (``None`` where it failed) and the error rows ``{path, family, reason}``."""
    files = list(dict.fromkeys(corpus.file(e) for e in corpus.entries))
    good, bad = load_folder(corpus.folder, files=files, progress=progress, desc="loading corpus", min_good=0,
                            min_side=min_size, who=f"the {name} detector")
    got = {str(r.path): r.image for r in good}
    why = {str(r.path): r.error for r in bad}
    images = [got.get(str(corpus.file(e))) for e in corpus.entries]
    errors = [{"path": e.path, "family": e.family, "reason": why.get(str(corpus.file(e)), "not loaded")}
              for e, im in zip(corpus.entries, images) if im is None]
    return images, errors


def _check_resumable(log_file: Path, header: dict) -> None:
    """A finished run's ``folds.json`` resumes only with the settings and corpus it was made with
    (a partial file is checked by :class:`~forensics.io.files.RowLog` itself)."""
    from forensics.io.files import read_json

    partial = log_file.with_name(log_file.name + ".partial")
    if log_file.is_file() and not partial.exists():
        try:
            old = read_json(log_file).get("header")
        except (OSError, ValueError, AttributeError):
            old = None
        if old != header:
            raise UserError(f"{log_file}: made with other settings or another corpus; cannot resume from it "
                            "(run without resuming to start over)")


def run_generalization(cfg: GeneralizationConfig, progress: bool = True) -> dict:
    """Run the leave-one-unit-out protocol (see module) and write into ``cfg.out``: ``results.json``
    (config, per-unit rows, processing table, the split of every fold, error rows), ``table.md``,
    ``folds.json`` (every fold's figures per split and condition) and ``config.json``. Returns the
    results."""
    out = check_output(cfg.out, "dir")
    corpus = read_manifest(cfg.corpus)
    if not corpus.entries:
        raise UserError(f"{cfg.corpus}: the corpus manifest lists no image")
    try:
        det0 = make_detector(cfg.detector, seed=cfg.seed, **cfg.params)
    except TypeError as e:
        raise UserError(f"{cfg.detector}: bad detector parameters {cfg.params} ({e})") from None
    min_size = int(getattr(det0, "min_size", 1))
    labels = np.array([e.label for e in corpus.entries], np.int64)
    settings = {k: v for k, v in cfg.to_dict().items() if k not in ("out", "resume")}
    header = {"settings": fingerprint(settings), "corpus": fingerprint([list(vars(e).values()) for e in corpus.entries])}
    if cfg.resume:
        _check_resumable(out / "folds.json", header)
    # opened before any work: an interrupted run's folds are resumed, or kept and the run refused
    log = RowLog(out / "folds.json", header, resume=cfg.resume, key="fold")
    try:
        images, errors = _load(corpus, min_size, cfg.detector, progress)
        usable = np.array([im is not None for im in images], bool)
        folds = plan_splits(corpus.entries, cfg.by, cfg.folds, cfg.repeats, cfg.seed, cfg.test_only, cfg.units,
                            usable)
        base = _Inputs(det0, images, min_size)
        with bar(total=sum(len(f.splits) for f in folds), desc="fits", enabled=progress) as pb:
            for fold in folds:
                if log.done(fold.key):
                    pb.update(len(fold.splits))
                else:
                    log.append([_run_fold(cfg, fold, corpus.entries, images, base, labels, pb.update)])
    except BaseException:
        log.close()
        if not log.n_rows:
            log.discard()
        raise
    log.close()
    done = {r["fold"]: r for r in log.rows()}
    rows = [done[f.key] for f in folds]
    results = summarise(cfg, corpus, folds, rows, errors)
    log.finish((), {"header": header, "settings": settings})
    write_json(out / "results.json", results)
    atomic_write_text(out / "table.md", table_markdown(results))
    write_config(out, {"command": "generalization", "config": cfg.to_dict()})
    return results


# ------------------------------------------------------------------------------------- summaries
def _ms(values) -> dict:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return {**mean_std(v), "n": len(v)} if v else {"mean": float("nan"), "std": float("nan"), "n": 0}


def _row(name: str, figs: list[dict], seen: list[dict], repeats: int, families, test_only: bool) -> dict:
    return {"unit": name, "test_only": test_only, "families": families,
            "n_test_fake": sum(f["n_fake"] for f in figs) / repeats, "n_test_real": sum(f["n_real"] for f in figs) / repeats,
            **{k: _ms(f[k] for f in figs) for k in ("auc", "tpr_at_fpr", "detection_rate", "real_accuracy")},
            "auc_seen": _ms(f["auc"] for f in seen)}


def summarise(cfg: GeneralizationConfig, corpus, folds: list[Fold], rows: list[dict], errors: list[dict]) -> dict:
    """results.json from the fold rows (see :func:`run_generalization`)."""
    conds = (CLEAN, *cfg.processing)
    fams: dict = {}
    for e in corpus.entries:
        if e.label:
            fams.setdefault(e.family if is_test_only(e.family, cfg.test_only) else unit_of(e.family, cfg.by),
                            set()).add(e.family)
    units = [s.unit for s in folds[0].splits if s.unit != ALL]
    test_only = list(dict.fromkeys(e.family for e in corpus.entries
                                   if e.label and is_test_only(e.family, cfg.test_only)))

    def figs(unit, cond, model):
        return [sp["conditions"][cond][unit] for r in rows for sp in r["splits"]
                if sp["unit"] == model and unit in sp["conditions"][cond]]

    table = [_row(u, figs(u, CLEAN, u), figs(u, CLEAN, ALL), cfg.repeats, sorted(fams[u]), False) for u in units]
    table += [_row(t, figs(t, CLEAN, ALL), [], cfg.repeats, [t], True) for t in test_only]
    processing = []
    for c in conds:
        lofo = [f for u in units for f in figs(u, c, u)]
        n, hit = sum(f["n_fake"] for f in lofo), sum(f["n_detected"] for f in lofo)
        per = {u: _ms(f["detection_rate"] for f in figs(u, c, u)) for u in units}
        per.update({t: _ms(f["detection_rate"] for f in figs(t, c, ALL)) for t in test_only})
        processing.append({"processing": c, "real_fpr": _ms(1 - f["real_accuracy"] for f in lofo),
                           "detection_rate": hit / n if n else float("nan"), "n_fake": n,
                           "auc": _ms(f["auc"] for f in lofo), "n_unscored": sum(f["n_unscored"] for f in lofo),
                           "per_unit": per})
    split = [{"fold": r["fold"], "repeat": r["repeat"], "index": r["index"], "test_groups": r["test_groups"],
              "calibration_groups": r["calibration_groups"], "train_groups": r["train_groups"],
              "training": {sp["unit"]: {"families": sp["train_families"], "n_real": sp["n_train_real"],
                                        "n_fake": sp["n_train_fake"], "threshold": sp["threshold"]}
                           for sp in r["splits"]}} for r in rows]
    labels = [e.label for e in corpus.entries]
    return {"config": cfg.to_dict(), "detector": cfg.detector, "by": cfg.by, "target_fpr": cfg.target_fpr,
            "corpus": {"folder": str(corpus.folder), "n_images": len(labels), "n_real": labels.count(0),
                       "n_generated": labels.count(1), "n_groups": len({e.group for e in corpus.entries} - {"-"}),
                       "families": corpus.families()},
            "units": units, "test_only": test_only, "rows": table, "processing": processing, "split": split,
            "n_errors": len(errors), "errors": errors}


def _pct(m: dict) -> str:
    if not m["n"]:
        return "–"
    return f"{100 * m['mean']:.1f}" + (f" ± {100 * m['std']:.1f}" if m["n"] > 1 else "")


def _num(m: dict) -> str:
    if not m["n"]:
        return "–"
    return f"{m['mean']:.3f}" + (f" ± {m['std']:.3f}" if m["n"] > 1 else "")


def _cond_name(c: str) -> str:
    if c == CLEAN:
        return "none"
    kind, v = parse_processing(c)
    return {"jpeg": f"JPEG q{v:g}", "resize": f"resize ×{v:g}", "blur": f"blur σ {v:g}", "noise": f"noise σ {v:g}",
            "crop": f"crop {v:g}"}[kind]


def table_markdown(res: dict) -> str:
    """The tables of a :func:`run_generalization` result, as Markdown (what ``table.md`` holds)."""
    c, cfg = res["corpus"], res["config"]
    fpr = f"{100 * res['target_fpr']:g} %"
    by = res["by"]
    lines = [f"# Leave-one-{by}-out generalization of `{res['detector']}`", "",
             f"Corpus `{c['folder']}`: {c['n_images']} images ({c['n_real']} real, {c['n_generated']} generated in "
             f"{len(c['families'])} families, {c['n_groups']} photo groups); {res['n_errors']} could not be used. "
             f"{cfg['folds']} folds of the photo groups × {cfg['repeats']} repeat(s), seed {cfg['seed']}"
             + (f", detector parameters {cfg['params']}" if cfg["params"] else "") + ".", "",
             (f"Each {by} held out in turn: trained on the other families' fakes and the real photos of the training "
             "groups, tested on its fakes and the real photos of the held-out groups (no test image shares a photo "
             "with a training image). Threshold: the one giving "
             f"{fpr} false positives on the real photos of a quarter of the training groups, held out of the fit. "
             f"TPR at {fpr} FPR: on the test reals' own threshold. 'AUC seen': the same test images, the model "
             "trained on every family. Mean ± std over folds."), "",
             (f"| held out | n fakes | AUC | TPR at {fpr} FPR | detected at threshold | real accuracy at threshold "
              "| AUC seen |"), "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        name = f"`{r['unit']}`" + (" (test only)" if r["test_only"] else "")
        lines.append(f"| {name} | {r['n_test_fake']:g} | {_num(r['auc'])} | {_pct(r['tpr_at_fpr'])} % | "
                     f"{_pct(r['detection_rate'])} % | {_pct(r['real_accuracy'])} % | {_num(r['auc_seen'])} |")
    if by != "family":
        lines += ["", "Families per unit: " + "; ".join(f"`{r['unit']}`: {', '.join(r['families'])}"
                                                         for r in res["rows"] if not r["test_only"])]
    lines += ["", "## Under processing (the same models and thresholds)", "",
              (f"Real FPR: share of held-out real photos above the threshold (mean ± std over the models of every "
               f"held-out {by} and fold); detected: all held-out fakes, each judged by the model that did not see "
               "its family."), "",
              "| processing | real FPR | held-out fakes detected | AUC |", "|---|---|---|---|"]
    for p in res["processing"]:
        det = "–" if not p["n_fake"] else f"{100 * p['detection_rate']:.1f} %"
        lines.append(f"| {_cond_name(p['processing'])} | {_pct(p['real_fpr'])} % | {det} | {_num(p['auc'])} |")
    conds = [p["processing"] for p in res["processing"]]
    lines += ["", f"Detected at the threshold, per held-out {by} (%):", "",
              "| held out | " + " | ".join(_cond_name(c) for c in conds) + " |", "|---|" + "---|" * len(conds)]
    for r in res["rows"]:
        cells = [_pct(p["per_unit"][r["unit"]]) for p in res["processing"]]
        lines.append(f"| `{r['unit']}`{' (test only)' if r['test_only'] else ''} | " + " | ".join(cells) + " |")
    if res["n_errors"]:
        shown = res["errors"][:10]
        lines += ["", f"Not used ({res['n_errors']}): " + "; ".join(f"`{e['path']}`: {e['reason']}" for e in shown)
                  + (" ..." if res["n_errors"] > len(shown) else "")]
    return "\n".join(lines) + "\n"

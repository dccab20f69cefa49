"""The detector contract and code-free model files.

Detectors are scikit-learn estimators (``BaseEstimator`` + ``ClassifierMixin``): parameters in
``__init__`` (``get_params(deep=True)``, ``set_params``, ``sklearn.base.clone``), learned state
in attributes with a trailing underscore, labels 1 = generated, 0 = real, and

``fit(X, y) -> self``
    images (a batch or a list of mixed sizes) or their feature matrix (2-D float);
    ``fit_real_fake(real, fake)`` is the same with the two classes given apart;
``predict_proba(X)``, ``p_generated(X)``
    calibrated probabilities (``p_generated`` is column 1, NaN where features are undefined);
``predict(X)``
    the published decision rule by default (the sign of the decision function for an SVM),
    or ``p_generated > threshold_`` once a threshold is set (``calibrate``); ``threshold_`` is
    always the probability at which the two agree;
``score(X, y)``
    scikit-learn's mean accuracy; ``score(X)`` without labels is ``p_generated(X)`` (kept for
    the toolkit's older callers);
``save(dir)`` / ``load(dir)``
    ``dir/model.json`` (parameters, threshold, provenance) and ``dir/model.npz`` (arrays, read
    with ``allow_pickle=False``): loading a model never executes code. A model folder is
    replaced as a whole: the new one is written beside it and swapped in, so a crash never
    leaves a ``model.json`` beside another model's ``model.npz``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from forensics.core.checks import finite
from forensics.core.errors import UserError, one_line
from forensics.detectors.formats import FORMAT, FORMAT_VERSION, MODEL_FILES
from forensics.io.files import read_npz, write_json, write_npz
from forensics.metrics.rates import threshold_at_fpr


def is_features(x) -> bool:
    """True for a 2-D float matrix of features, False for a batch or list of images."""
    return isinstance(x, np.ndarray) and x.ndim == 2 and np.issubdtype(x.dtype, np.floating)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    return fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


def replace_folder(new: Path, folder: Path) -> None:
    """Put the complete folder ``new`` in the place of ``folder``: an atomic exchange where the
    system has one; else ``folder`` is moved aside first and :func:`recover_folder` completes
    an interrupted swap."""
    if not folder.exists():
        os.replace(new, folder)
        return
    if not _exchange(new, folder):
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        os.replace(folder, old)
        os.replace(new, folder)
        new = old
    shutil.rmtree(new, ignore_errors=True)


def recover_folder(folder: Path) -> None:
    """Finish a swap interrupted between its two renames: the new, complete model folder is
    still beside the missing one."""
    if folder.exists():
        return
    for cand in sorted(folder.parent.glob(f".{folder.name}.new-*")):
        if (cand / "model.json").is_file() and (cand / "model.npz").is_file() and (cand / ".complete").is_file():
            os.replace(cand, folder)
            return


class RealFakeContract:
    """What every detector adds to scikit-learn's classifier API (label 1 = generated): ``p_generated``,
    fitting with the classes given apart, ``score`` without labels as P(generated), and a threshold
    calibrated on real images. Spectral detectors, the CNN and the hash-kNN detector share it, so a
    study, ``detect`` and ``calibrate`` treat them alike. ``features`` names the cached feature set
    a study may compute once for all repetitions (None: the detector takes images)."""

    name = "detector"
    features: str | None = None
    min_size = 1

    def _features(self, x):
        return np.asarray(x)

    def fit_real_fake(self, real, fake):
        """``fit`` with the real and the generated images (or features) given apart."""
        Xr, Xf = self._features(real), self._features(fake)
        y = np.r_[np.zeros(len(Xr), np.int64), np.ones(len(Xf), np.int64)]
        return self.fit(np.concatenate([Xr, Xf]), y)

    def p_generated(self, X) -> np.ndarray:
        """P(generated) per image."""
        return self.predict_proba(X)[:, 1]

    def predict(self, X) -> np.ndarray:
        """1 (generated) where ``p_generated`` exceeds the stored threshold, else 0."""
        return (self.p_generated(X) > self.threshold_).astype(np.int64)

    def score(self, X, y=None, sample_weight=None):
        """Mean accuracy on ``(X, y)`` (scikit-learn); without ``y``, ``p_generated(X)``."""
        if y is None:
            return self.p_generated(X)
        return super().score(X, y, sample_weight=sample_weight)

    def calibrate(self, real, target_fpr: float = 0.05):
        """Set the threshold so that at most ``target_fpr`` of these real images (ideally not
        seen in training) are called generated; ``predict`` then uses it."""
        finite("target false-positive rate", target_fpr, 0, 1, hi_open=True)  # a stored threshold is finite
        self.threshold_ = threshold_at_fpr(self.p_generated(real), target_fpr)
        self.rule_ = "threshold"
        return self


class Detector(RealFakeContract, ClassifierMixin, BaseEstimator):
    """Base class: subclasses implement ``_features``, ``fit``, ``_proba``, ``_state``/``_set_state``."""

    name = "detector"

    # -- the contract -----------------------------------------------------------------------
    def p_generated(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, X) -> np.ndarray:
        p = self.p_generated(X)
        return np.stack([1.0 - p, p], axis=1)

    # -- persistence --------------------------------------------------------------------
    def _state(self) -> tuple[dict, dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_state(self, meta: dict, arrays: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, folder, extra: dict | None = None) -> Path:
        """Write ``model.json`` + ``model.npz`` as folder ``folder``, replacing a model folder
        there as a whole (see module). A folder holding other files is not replaced."""
        folder = Path(folder)
        if folder.exists():
            other = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [folder.name]
            other = [n for n in other if n not in MODEL_FILES]
            if other or not folder.is_dir():
                raise FileExistsError(f"{folder}: holds files that are not a model's ({', '.join(other[:3])}); "
                                      "not replacing it")
        meta, arrays = self._state()
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))
        try:
            write_npz(tmp / "model.npz", **arrays)
            write_json(tmp / "model.json", {
                "format": FORMAT, "format_version": FORMAT_VERSION, "class": type(self).__name__,
                "name": self.name, "params": self.get_params(deep=False), "threshold": self.threshold_,
                "state": meta, **(extra or {}),
            })
            (tmp / ".complete").touch()
            os.chmod(tmp, 0o777 & ~_umask())
            replace_folder(tmp, folder)
        except BaseException:
            if not folder.exists() and (tmp / ".complete").is_file():
                recover_folder(folder)  # interrupted between the renames: finish the swap
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        (folder / ".complete").unlink(missing_ok=True)
        return folder

    @staticmethod
    def load(folder) -> "Detector":
        """Load a model folder written by :meth:`save` whose class is registered; raises ``ValueError``
        (or ``FileNotFoundError``) with a one-line reason when it is not a compatible model. Any model
        folder: :func:`forensics.detectors.store.load_detector` (it registers every class first)."""
        folder = Path(folder)
        recover_folder(folder)
        mj, mz = folder / "model.json", folder / "model.npz"
        if not folder.is_dir():
            raise UserError(f"{folder}: model folder not found")
        if not mj.is_file() or not mz.is_file():
            raise UserError(f"{folder}: not a forensics model (needs model.json and model.npz)")
        try:
            meta = json.loads(mj.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UserError(f"{mj}: unreadable model description ({e})")
        if meta.get("format") != FORMAT:
            raise UserError(f"{mj}: not a forensics detector model")
        version = meta.get("format_version")
        if version not in (1, FORMAT_VERSION):
            raise UserError(f"{mj}: model format version {version} is not supported "
                            f"(this toolkit reads versions 1 and {FORMAT_VERSION}); retrain it")
        cls = REGISTRY.get(meta.get("class"))
        if cls is None:
            raise UserError(f"{mj}: unknown detector class {meta.get('class')!r}")
        try:
            arrays = read_npz(mz, finite=True)
            if version == 1:
                meta = cls.upgrade_v1(meta)
            det = cls(**meta["params"])
            det._set_state(meta["state"], arrays)
            det.threshold_ = float(meta["threshold"])
            det.meta_ = meta
        except UserError:
            raise
        except Exception as e:  # corrupt or hand-edited files: one clear line
            raise UserError(f"{folder}: incompatible or damaged model ({type(e).__name__}: {one_line(e)})")
        return det

    @staticmethod
    def upgrade_v1(meta: dict) -> dict:  # pragma: no cover - per class
        raise ValueError("format version 1 is not readable for this class")


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


#: the saved classes by name; each registers itself when its module is imported (all of them:
#: :func:`forensics.detectors.store.model_classes`)
REGISTRY: dict[str, type] = {}


def register(cls):
    REGISTRY[cls.__name__] = cls
    return cls

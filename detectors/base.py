"""The detector contract and code-free model files.

Every detector follows scikit-learn's conventions: parameters in ``__init__`` (and
``get_params``), learned state in attributes with a trailing underscore, and

``fit(real, fake) -> self``
    real and generated images, or their feature matrices (2-D float arrays);
``score(x) -> P(generated)``
    one probability per image (label convention: 1 = generated, 0 = real);
``predict(x)``
    1 where ``score > threshold_`` (the stored threshold), else 0;
``save(dir)`` / ``load(dir)``
    ``dir/model.json`` (parameters, threshold, provenance) and ``dir/model.npz`` (arrays,
    read with ``allow_pickle=False``): loading a model never executes code.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np

from forensics.errors import UserError
from forensics.io import read_npz, write_json, write_npz

FORMAT = "forensics-detector"
FORMAT_VERSION = 1


def is_features(x) -> bool:
    """True for a 2-D float matrix of features, False for a batch or list of images."""
    return isinstance(x, np.ndarray) and x.ndim == 2 and np.issubdtype(x.dtype, np.floating)


class Detector:
    """Base class: subclasses implement :meth:`transform` and the estimator state."""

    name = "detector"

    # -- scikit-learn style parameters --------------------------------------------------
    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p for p, v in sig.parameters.items()
                if p != "self" and v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)]

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in self._param_names()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- the contract -----------------------------------------------------------------------
    def transform(self, images) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def features_of(self, x) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) if is_features(x) else self.transform(x)

    def fit(self, real, fake):  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, x) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, x) -> np.ndarray:
        return (self.score(x) > self.threshold_).astype(np.int64)

    def calibrate(self, real, target_fpr: float = 0.05) -> "Detector":
        """Set the threshold so that at most ``target_fpr`` of these real images (ideally not
        seen in training) are called generated."""
        s = np.sort(self.score(real))
        k = int(np.floor(target_fpr * len(s)))
        # the smallest threshold t with #(s > t) <= k
        self.threshold_ = float(s[len(s) - k - 1]) if k < len(s) else float(s[0])
        return self

    # -- persistence --------------------------------------------------------------------
    def _state(self) -> tuple[dict, dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_state(self, meta: dict, arrays: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, folder, extra: dict | None = None) -> Path:
        """Write ``model.json`` + ``model.npz`` into ``folder`` (created if needed)."""
        folder = Path(folder)
        meta, arrays = self._state()
        write_npz(folder / "model.npz", **arrays)
        write_json(folder / "model.json", {
            "format": FORMAT, "format_version": FORMAT_VERSION, "class": type(self).__name__,
            "name": self.name, "params": self.get_params(), "threshold": self.threshold_,
            "state": meta, **(extra or {}),
        })
        return folder

    @staticmethod
    def load(folder) -> "Detector":
        """Load a model folder written by :meth:`save`; raises :class:`UserError` when the
        folder is not a compatible model."""
        folder = Path(folder)
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
        if meta.get("format_version") != FORMAT_VERSION:
            raise UserError(f"{mj}: model format version {meta.get('format_version')} is not supported "
                            f"(this toolkit reads version {FORMAT_VERSION}); retrain it")
        cls = REGISTRY.get(meta.get("class"))
        if cls is None:
            raise UserError(f"{mj}: unknown detector class {meta.get('class')!r}")
        try:
            arrays = read_npz(mz)
            det = cls(**meta["params"])
            det._set_state(meta["state"], arrays)
            det.threshold_ = float(meta["threshold"])
            det.meta_ = meta
        except UserError:
            raise
        except Exception as e:  # corrupt or hand-edited files: one clear line
            raise UserError(f"{folder}: incompatible or damaged model ({type(e).__name__}: {e})")
        return det


REGISTRY: dict[str, type] = {}


def register(cls):
    REGISTRY[cls.__name__] = cls
    return cls

"""``forensics calibrate``: set a saved detector's threshold from a calibration set, written into
the model folder (which is replaced as a whole)."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np

from forensics.core.config import Config, Range
from forensics.core.errors import UserError
from forensics.detection.scoring import score_paths
from forensics.detectors.store import load_model, model_folder
from forensics.io.engine import engine
from forensics.io.files import write_config, write_json
from forensics.io.sources import data_dir
from forensics.metrics.rates import best_threshold, binary_metrics, threshold_at_fpr

MODES = ("fpr", "mcc", "balanced-accuracy")


@dataclass(frozen=True)
class CalibrateConfig(Config):
    model: str
    real: tuple[str, ...]
    mode: str = "fpr"
    target_fpr: Annotated[float, Range(0, 1, hi_open=True)] = 0.05
    fake: tuple[str, ...] = ()
    out: str | None = None  # None: rewrite the model folder in place (atomically)
    preprocess: str | None = None
    scheduler: str | None = None  # a Dask scheduler address, or local / local:N (None: this process)

    def validate(self):
        if self.scheduler is not None:
            from forensics.io.engine import parse_scheduler

            parse_scheduler(self.scheduler)
        if self.mode not in MODES:
            raise ValueError(f"unknown calibration mode {self.mode!r}; choose from {', '.join(MODES)}")
        if self.mode != "fpr" and not self.fake:
            raise ValueError(f"calibration by {self.mode} needs generated images as well as real ones")
        if not self.real:
            raise ValueError("calibration needs a folder of real images")


def _describe_folder(d, scores) -> dict:
    return {"path": str(Path(d).resolve()), "n_images": int(len(scores)), "n_scored": int(np.isfinite(scores).sum())}


def calibrate(cfg: CalibrateConfig, progress: bool = True) -> dict:
    """Set a model's threshold from a calibration set and record the set in ``model.json``.
    The new model is written to a fresh folder that then replaces the old one (or goes to
    ``cfg.out``), so a reader never sees a half-written model."""
    from forensics.io.files import read_json

    shipped = (data_dir() / "models").resolve()
    if cfg.out is None and shipped in model_folder(cfg.model).resolve().parents:
        raise UserError(f"{cfg.model}: a shipped model is not changed in place; give --out DIR for the calibrated copy")
    det = load_model(cfg.model)
    with engine(cfg.scheduler) as c:  # one cluster for every folder
        rs = [score_paths(det, d, cfg.preprocess, desc="calibration real", progress=progress, client=c,
                          model_dir=cfg.model)[1] for d in cfg.real]
        fs = [score_paths(det, d, cfg.preprocess, desc="calibration generated", progress=progress, client=c,
                          model_dir=cfg.model)[1] for d in cfg.fake]
    real = np.concatenate(rs)
    fake = np.concatenate(fs) if fs else np.zeros(0)
    r_ok, f_ok = real[np.isfinite(real)], fake[np.isfinite(fake)]
    if not len(r_ok):
        raise ValueError("none of the real calibration images could be scored")
    thr = threshold_at_fpr(r_ok, cfg.target_fpr) if cfg.mode == "fpr" else best_threshold(r_ok, f_ok, cfg.mode)
    old = float(det.threshold_)
    m = binary_metrics(r_ok, f_ok, thr)
    record = {"mode": cfg.mode, "target_fpr": cfg.target_fpr if cfg.mode == "fpr" else None,
              "previous_threshold": old, "threshold": thr,
              "real": [_describe_folder(d, s) for d, s in zip(cfg.real, rs)],
              "generated": [_describe_folder(d, s) for d, s in zip(cfg.fake, fs)],
              "preprocess": cfg.preprocess if cfg.preprocess is not None else getattr(det, "preprocess", "none"),
              "measured_on_calibration_set": {k: m[k] for k in ("real_accuracy", "generated_accuracy", "auc",
                                                               "balanced_accuracy")}}
    src = model_folder(cfg.model)
    dst = Path(cfg.out) if cfg.out else src
    tmp = dst.parent / f".{dst.name}.calibrating"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    meta = read_json(tmp / "model.json")
    meta["threshold"] = thr
    meta["calibration"] = record
    write_json(tmp / "model.json", meta)
    write_config(tmp, {"command": "calibrate", "config": cfg.to_dict()}, name="calibration.json")
    from forensics.detectors.base import replace_folder

    replace_folder(tmp, dst)  # the calibrated model replaces the old one as a whole
    return {"threshold": thr, "previous_threshold": old, "out": str(dst), **record}

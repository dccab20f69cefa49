"""``forensics detect`` as a library function: a scan of folders into one row per file, streamed to its
output file (resumable), with warnings where inputs fall outside the model's measured envelope."""
from __future__ import annotations

import dataclasses
import itertools
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import numpy as np

from forensics.core.config import Config, Range
from forensics.core.errors import warn
from forensics.core.progress import bar
from forensics.detection.scoring import CHUNK, score_chunks
from forensics.detectors.store import load_model, model_description, model_folder, stored_policy
from forensics.io.engine import engine, parse_scheduler
from forensics.io.files import RowLog, check_output, printable
from forensics.io.images import Policy, Prefetcher, scan_nonempty

COLUMNS = ["path", "score", "label", "threshold", "detector", "width", "height", "error"]
DEVICES = ("numpy", "cpu", "cuda")


@dataclasses.dataclass(frozen=True)
class DetectConfig(Config):
    """One ``detect`` scan: inputs, model folder (None: the built-in one), output file,
    policy override, resume, Dask scheduler and feature device (``numpy``, or torch on
    ``cpu``/``cuda``)."""

    paths: tuple[str, ...] = ()
    model: str | None = None
    out: str | None = None
    preprocess: str | None = None
    resume: bool = False
    scheduler: str | None = None
    device: str = "numpy"
    chunk: Annotated[int, Range(1, 1 << 20)] = CHUNK

    def validate(self):
        if not self.paths:
            raise ValueError("no input paths given")
        if self.out is not None and Path(self.out).suffix.lower() not in (".csv", ".json"):
            raise ValueError(f"{self.out}: output must end in .csv or .json")
        if self.resume and self.out is None:
            raise ValueError("resuming a scan needs its output file")
        if self.preprocess is not None:
            Policy.parse(self.preprocess)
        check_device(self.device)
        if self.scheduler is not None:
            parse_scheduler(self.scheduler)


def check_device(device: str) -> str:
    if device not in DEVICES and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ValueError(f"unknown device {device!r}: use numpy (NumPy FFTs), cpu or cuda (torch FFTs)")
    return device


def _row(r, s, name: str, thr: float) -> dict:
    row = {"path": str(r.path), "threshold": thr, "detector": name,
           "width": r.width, "height": r.height, "error": r.error}
    if r.ok and s is not None and np.isfinite(s):
        row.update(score=round(float(s), 6), label="generated" if s > thr else "real")
    else:
        row.update(score=None, label="error", error=r.error or f"{name} features are undefined for this image")
    return row


def iter_rows(cfg: DetectConfig, files=None, skip=None, det=None, progress: bool = False, kept=()):
    """The rows of scan ``cfg`` in file order (``skip(path) -> bool`` leaves files out),
    streamed chunk by chunk (on Dask workers with ``cfg.scheduler``). At the end, one warning
    line per kind of input outside the model's envelope (:class:`Envelope`), counted over
    ``kept`` (rows already in the output, e.g. of the scan being resumed) and the new rows."""
    model_dir = model_folder(cfg.model)
    files = scan_nonempty(list(cfg.paths)) if files is None else files
    if skip is not None:
        files = [f for f in files if not skip(f)]
    pol = Policy.parse(cfg.preprocess if cfg.preprocess is not None else stored_policy(model_dir))
    prefetch = Prefetcher(files, pol) if cfg.scheduler is None and files else None  # decodes while the model loads
    try:
        det = det or load_model(model_dir)
        thr = float(det.threshold_)
        device = cfg.device
        if device != "numpy" and getattr(det, "features", None) is None:
            warn(f"{det.name} has no torch feature path: its features are computed with NumPy, "
                 f"device {device!r} is not used")
            device = "numpy"
        env = Envelope(det, pol)
        env.add(kept)
        if files:
            with bar(total=len(files), desc=f"detect ({det.name})", enabled=progress) as pb, \
                    engine(cfg.scheduler) as c:
                chunks = score_chunks(det, files, pol, model_dir, c, device, cfg.chunk, prefetch=prefetch,
                                      mark_grey=env.colour)
                for loaded, scores in chunks:
                    rows = [_row(r, s, det.name, thr) for r, s in zip(loaded, scores)]
                    env.add(rows, [bool(r.grey) for r in loaded])  # marked where decoded (also on Dask workers)
                    pb.update(len(loaded))
                    del loaded, scores  # the images go before the next chunk is awaited
                    yield rows
        for line in env.warnings():
            warn(line)
    finally:
        if prefetch is not None:
            prefetch.close()


#: file names a summary warning shows (then "and N more")
SHOW_NAMES = 3


class Envelope:
    """Where a scan's rows fall outside the model card's envelope (sizes it was not trained on,
    with the stored policy ``none``; greyscale images, for a colour-only model): per kind the
    count and the first few file names, in file order, so a run warns once per kind (however
    many chunks, on Dask workers or not, and over the rows kept when resuming)."""

    def __init__(self, det, pol: Policy):
        self.known = training_sizes(det) if pol.mode == "none" else None
        self.colour = bool(training_envelope(det).get("colour"))
        self.n = self.n_grey_checked = 0
        self.sizes: Counter = Counter()  # the unseen sizes, by count (first seen first among equals)
        self.odd: list[str] = []  # the first names of each kind
        self.grey: list[str] = []
        self.n_grey = 0

    def add(self, rows, grey=None) -> None:
        """Count ``rows`` (:data:`COLUMNS` dicts, also as read back from a CSV output); ``grey``:
        their greyscale marks, None where not checked (rows kept from an earlier output)."""
        for i, r in enumerate(rows):
            self.n += 1
            if self.known and r.get("label") != "error":
                size = size_name(r.get("height"), r.get("width"))
                if size not in self.known:
                    self.sizes[size] += 1
                    _first(self.odd, r.get("path"))
            if grey is not None and self.colour:
                self.n_grey_checked += 1
                if grey[i]:
                    self.n_grey += 1
                    _first(self.grey, r.get("path"))

    def warnings(self) -> list[str]:
        """One line per kind of input outside the envelope (none when all are inside)."""
        out = []
        n_odd = sum(self.sizes.values())
        if n_odd:
            out.append(f"{n_odd} of {self.n} images ({sizes_text(self.sizes)}) differ in size from the model's "
                       f"training images ({', '.join(sorted(self.known))}): {_names(self.odd, n_odd)}; "
                       "its rates were measured on those sizes only")
        if self.n_grey:
            unchecked = self.n - self.n_grey_checked
            of = f"{self.n} images" if not unchecked else f"the {self.n_grey_checked} images scored in this run"
            out.append(f"{self.n_grey} of {of} are greyscale: {_names(self.grey, self.n_grey)}; the model "
                       "was trained on colour photographs only and its rates were not measured on greyscale images"
                       + (f" (the {unchecked} rows kept from the earlier output are not rechecked)" if unchecked else ""))
        return out


def _first(names: list, path) -> None:
    if len(names) < SHOW_NAMES:
        name = printable(Path(str(path)).name)
        names.append(name if name.isprintable() else repr(name)[1:-1])  # one line, whatever the name holds


def _names(names: list, n: int) -> str:
    return ", ".join(names) + (f" and {n - len(names)} more" if n > len(names) else "")


def run_detect(cfg: DetectConfig, progress: bool = True, sink=None) -> dict:
    """Scan ``cfg.paths`` into ``cfg.out`` (rows streamed to ``OUT.partial`` and flushed in
    order, so an interrupted scan resumes with ``cfg.resume``); returns the label counts."""
    if cfg.out is None:
        raise ValueError("run_detect writes a file: give an output path")
    out = check_output(cfg.out, "file")
    model_dir = model_folder(cfg.model)
    files = scan_nonempty(list(cfg.paths))
    meta = model_description(model_dir)  # cheap; the full load overlaps decoding (iter_rows)
    pol = str(Policy.parse(cfg.preprocess if cfg.preprocess is not None else stored_policy(model_dir)))
    name = meta.get("name") if isinstance(meta.get("name"), str) else meta["class"]
    header = {"detector": name, "threshold": float(meta["threshold"]), "preprocess": pol,
              "model": str(model_dir.resolve())}
    log = RowLog(out, header, resume=cfg.resume)
    try:
        kept = itertools.islice(log.rows(), log.n_before)  # read before the first new row is appended
        for rows in iter_rows(cfg, files, log.done if cfg.resume else None, None, progress, kept):
            log.append(rows)
            if sink is not None:
                sink(rows)
    except BaseException:
        log.close()
        if not log.n_rows:  # nothing scored yet (e.g. the model failed to load): leave no partial file
            log.discard()
        raise
    finally:
        log.close()
    log.finish(COLUMNS, {"detector": name, "threshold": float(meta["threshold"]), "preprocess": pol,
                         "model": str(model_dir)})
    n_odd = sum(printable(str(f)) != str(f) for f in files)
    if n_odd:
        print(f"forensics: note: {n_odd} file names are not valid UTF-8; written with \\xNN escapes",
              file=sys.stderr)
    return {"n": sum(log.counts.values()), "resumed": log.n_before, **log.counts, "out": str(out)}


def detect(paths, model_dir=None, out=None, policy: str | None = None, progress: bool = True, **kw) -> list[dict]:
    """Score every image under ``paths``; returns one row per file (see ``COLUMNS``).

    Files that cannot be decoded, or are too small for the detector's features, get
    ``label = "error"`` and the reason; the rest are scored. With ``out`` (``.csv`` or
    ``.json``) the rows are also written there (see :func:`run_detect`, which streams them
    without holding them all).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    cfg = DetectConfig(tuple(map(str, paths)), None if model_dir is None else str(model_dir),
                       None if out is None else str(out), policy, **kw)
    if out is not None:
        rows: list[dict] = []
        run_detect(cfg, progress, sink=rows.extend)
        return rows
    return [r for rows in iter_rows(cfg, progress=progress) for r in rows]


def sizes_text(sizes) -> str:
    names = sorted(sizes, key=lambda k: -sizes[k] if isinstance(sizes, Counter) else 0)
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more sizes" if len(names) > 4 else "")


def training_envelope(det) -> dict:
    """The ``envelope`` of a saved model's card (``training.envelope`` in model.json): what its
    rates hold for, e.g. ``{"colour": true}``; empty when not recorded."""
    tr = getattr(det, "meta_", {}).get("training", {})
    env = tr.get("envelope") if isinstance(tr, dict) else None
    return env if isinstance(env, dict) else {}


def training_sizes(det) -> set[str] | None:
    """The image sizes (``"WxH"``) a saved model was trained on, from its model card, if recorded."""
    tr = getattr(det, "meta_", {}).get("training", {})
    sizes = tr.get("sizes") if isinstance(tr, dict) else None
    if isinstance(sizes, dict):
        return {k for part in sizes.values() if isinstance(part, dict) for k in part}
    return None


def summary_line(rows, out=None) -> str:
    """One line of counts, from the rows or from :func:`run_detect`'s counts."""
    if isinstance(rows, dict):
        counts = {k: rows.get(k, 0) for k in ("real", "generated", "error")}
        n = rows["n"]
    else:
        counts = {k: sum(r["label"] == k for r in rows) for k in ("real", "generated", "error")}
        n = len(rows)
    s = f"{n} files: {counts['real']} real, {counts['generated']} generated, {counts['error']} error"
    return s + (f" -> {out}" if out else "")


def size_name(h: int, w: int) -> str:
    return f"{w}x{h}"

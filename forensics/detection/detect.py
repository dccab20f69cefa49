"""``forensics detect`` and ``forensics train-detector`` as library functions."""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from forensics import checks, metrics, spectrum
from forensics.config import Config
from forensics.data import BUILTIN_SOURCES, builtin_patches, data_dir
from forensics.errors import UserError, one_line, warn
from forensics.images import Policy, Prefetcher, map_chunks, scan_nonempty, warn_skipped
from forensics.io import RowLog, check_output, printable, write_config, write_json
from forensics.progress import bar

COLUMNS = ["path", "score", "label", "threshold", "detector", "width", "height", "error"]
CHUNK = 128
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
    chunk: int = CHUNK

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
            from forensics.distributed import parse_scheduler

            parse_scheduler(self.scheduler)
        checks.whole("chunk", self.chunk, 1, 1 << 20)


def check_device(device: str) -> str:
    if device not in DEVICES and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ValueError(f"unknown device {device!r}: use numpy (NumPy FFTs), cpu or cuda (torch FFTs)")
    return device


def default_model_dir() -> Path:
    return data_dir() / "models" / "default"


def load_model(model_dir=None):
    """The model in ``model_dir``, or the default model shipped in ``data/models/default``;
    checked to be complete and usable (one-line ``ValueError`` otherwise)."""
    from forensics.detectors.base import load_detector

    folder = Path(model_dir if model_dir is not None else default_model_dir())
    checks.model_description(folder)
    try:
        det = load_detector(folder)
    except (ValueError, OSError):
        raise
    except RecursionError:
        raise ValueError(f"{folder}: model description is nested too deeply") from None
    except Exception as e:  # whatever a tampered file provokes inside the loader
        raise ValueError(f"{folder}: incompatible or damaged model ({type(e).__name__}: {one_line(e)})") from None
    checks.fitted_model(det, folder)
    return det


def _stored_policy(model_dir) -> str:
    """The preprocessing policy recorded in a model folder, read without loading it (so
    decoding can start while the detector's libraries import)."""
    meta = checks.model_description(Path(model_dir or default_model_dir()))
    return str(meta["params"].get("preprocess", "none"))


class MinSide:
    """``keep`` for :func:`map_chunks`: decoded images at least ``side`` px, else an error row;
    with ``mark_grey``, each decoded record also says whether it is greyscale (``r.grey``: it runs
    where the image is decoded, so the mark comes back from Dask workers too)."""

    def __init__(self, side: int, who: str, mark_grey: bool = False):
        self.side, self.who, self.mark_grey = side, who, mark_grey

    def __call__(self, r) -> bool:
        if r.ok and min(r.image.shape[:2]) < self.side:
            r.error = f"image is {r.image.shape[1]}x{r.image.shape[0]}; {self.who} needs at least {self.side}x{self.side}"
        if self.mark_grey and r.ok:
            r.grey = is_greyscale(r.image)
        return r.ok


def score_images(det, images, device: str = "numpy"):
    """``det``'s scores of decoded images, features on NumPy or torch (``device``)."""
    if device == "numpy" or getattr(det, "features", None) is None:
        return det.p_generated(images)
    from forensics import spectrum_torch

    return det.p_generated(spectrum_torch.features(images, det.features, device))


def model_stamp(model_dir) -> tuple:
    """The names, sizes and modification times of a model folder's files (a worker reloads
    its cached copy when they change)."""
    folder = Path(model_dir)
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))


class ChunkScorer:
    """Scores of one chunk of decoded images, NaN where the detector cannot score one: picklable
    for Dask workers (built with ``model_dir`` only, the model is loaded once per worker) or
    holding a loaded ``det`` in process. ``transform(images, positions) -> images`` (file
    positions, for seeding) runs first; images it leaves below the detector's minimum side
    get NaN."""

    def __init__(self, model_dir=None, device: str = "numpy", transform=None, det=None):
        self.model_dir = None if model_dir is None else str(model_dir)
        self.device, self.transform, self.det = device, transform, det

    def __getstate__(self):
        return {**self.__dict__, "det": None}  # a worker loads its own copy

    def __call__(self, images, positions=None):
        if self.det is not None:
            det = self.det
        else:
            from forensics.distributed import cached_model

            det = cached_model(self.model_dir, model_stamp(self.model_dir))
        if self.transform is not None:
            images = self.transform(images, positions)
        side = getattr(det, "min_size", 1)
        ok = [j for j, im in enumerate(images) if min(im.shape[:2]) >= side]
        s = np.full(len(images), np.nan)
        if ok:
            s[ok] = spectrum.single_threaded(score_images)(det, [images[j] for j in ok], self.device)
        return s


def _decoded(r) -> bool:
    """``keep`` for transformed scans: every decoded image (sizes are checked after the transform)."""
    return r.ok


def score_chunks(det, files, policy, model_dir=None, client=None, device: str = "numpy", chunk: int = CHUNK,
                 transform=None, prefetch=None, mark_grey: bool = False):
    """The one scoring path of ``detect``, ``evaluate``, ``calibrate`` and ``robustness``:
    ``(loaded, scores)`` per chunk of ``files``, in file order; ``scores`` (P(generated)) is
    aligned with ``loaded`` and NaN where a file could not be decoded (``loaded[i].error``
    says why) or scored. In process (decoding ahead, ``prefetch`` if one was started) or, with
    a Dask ``client``, on its workers, which load the model from ``model_dir``."""
    keep = MinSide(getattr(det, "min_size", 1), det.name, mark_grey) if transform is None else _decoded
    pos = transform is not None
    if client is None:
        prefetch = prefetch if prefetch is not None else Prefetcher(files, policy)
        chunks = map_chunks(prefetch, ChunkScorer(device=device, transform=transform, det=det), keep, chunk,
                            positions=pos)
    else:
        from forensics.distributed import dask_chunks

        if model_dir is None:
            raise ValueError("scoring on a Dask cluster needs the model's folder")
        remote = ChunkScorer(Path(model_dir).resolve(), device, transform)
        chunks = dask_chunks(client, files, policy, keep, remote, min(chunk, 64), positions=pos)
    for loaded, kept, res in chunks:
        s = np.full(len(loaded), np.nan)
        if res is not None:
            at = {id(r): j for j, r in enumerate(loaded)}
            s[[at[id(r)] for r in kept]] = res
        del kept, res
        yield loaded, s


def _row(r, s, name: str, thr: float) -> dict:
    row = {"path": str(r.path), "threshold": thr, "detector": name,
           "width": r.width, "height": r.height, "error": r.error}
    if r.ok and s is not None and np.isfinite(s):
        row.update(score=round(float(s), 6), label="generated" if s > thr else "real")
    else:
        row.update(score=None, label="error", error=r.error or f"{name} features are undefined for this image")
    return row


def iter_rows(cfg: DetectConfig, files=None, skip=None, det=None, progress: bool = False):
    """The rows of scan ``cfg`` in file order (``skip(path) -> bool`` leaves files out),
    streamed chunk by chunk (on Dask workers with ``cfg.scheduler``)."""
    model_dir = Path(cfg.model) if cfg.model is not None else default_model_dir()
    files = scan_nonempty(list(cfg.paths)) if files is None else files
    if skip is not None:
        files = [f for f in files if not skip(f)]
    pol = Policy.parse(cfg.preprocess if cfg.preprocess is not None else _stored_policy(model_dir))
    prefetch = Prefetcher(files, pol) if cfg.scheduler is None and files else None  # decodes while the model loads
    try:
        det = det or load_model(model_dir)
        thr = float(det.threshold_)
        device = cfg.device
        if device != "numpy" and getattr(det, "features", None) is None:
            warn(f"{det.name} has no torch feature path: its features are computed with NumPy, "
                 f"device {device!r} is not used")
            device = "numpy"
        if not files:
            return
        with bar(total=len(files), desc=f"detect ({det.name})", enabled=progress) as pb, \
                _engine(cfg.scheduler) as c:
            colour_only = bool(training_envelope(det).get("colour"))
            chunks = score_chunks(det, files, pol, model_dir, c, device, cfg.chunk, prefetch=prefetch,
                                  mark_grey=colour_only)
            known = training_sizes(det) if pol.mode == "none" else None
            odd: Counter = Counter()
            n = n_grey = 0
            for loaded, scores in chunks:
                n_grey += sum(bool(r.grey) for r in loaded)  # marked where decoded (also on Dask workers)
                rows = [_row(r, s, det.name, thr) for r, s in zip(loaded, scores)]
                if known:
                    odd.update(size_name(r["height"], r["width"]) for r in rows
                               if r["label"] != "error" and size_name(r["height"], r["width"]) not in known)
                n += len(rows)
                pb.update(len(loaded))
                del loaded, scores  # the images go before the next chunk is awaited
                yield rows
            if odd:
                warn(f"{sum(odd.values())} of {n} images ({_sizes_text(odd)}) differ in size from the model's "
                     f"training images ({', '.join(sorted(known))}); its rates were measured on those sizes only")
            if n_grey:
                warn(f"{n_grey} of {n} images are greyscale; the model was trained on colour photographs only "
                     "and its rates were not measured on greyscale images")
    finally:
        if prefetch is not None:
            prefetch.close()


@contextlib.contextmanager
def _engine(scheduler):
    if scheduler is None:
        yield None
    else:
        from forensics.distributed import client

        with client(scheduler) as c:
            yield c


def run_detect(cfg: DetectConfig, progress: bool = True, sink=None) -> dict:
    """Scan ``cfg.paths`` into ``cfg.out`` (rows streamed to ``OUT.partial`` and flushed in
    order, so an interrupted scan resumes with ``cfg.resume``); returns the label counts."""
    if cfg.out is None:
        raise ValueError("run_detect writes a file: give an output path")
    out = check_output(cfg.out, "file")
    model_dir = Path(cfg.model) if cfg.model is not None else default_model_dir()
    files = scan_nonempty(list(cfg.paths))
    meta = checks.model_description(model_dir)  # cheap; the full load overlaps decoding (iter_rows)
    pol = str(Policy.parse(cfg.preprocess if cfg.preprocess is not None else _stored_policy(model_dir)))
    name = meta.get("name") if isinstance(meta.get("name"), str) else meta["class"]
    header = {"detector": name, "threshold": float(meta["threshold"]), "preprocess": pol,
              "model": str(model_dir.resolve())}
    log = RowLog(out, header, resume=cfg.resume)
    try:
        for rows in iter_rows(cfg, files, log.done if cfg.resume else None, None, progress):
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


def _sizes_text(sizes) -> str:
    names = sorted(sizes, key=lambda k: -sizes[k] if isinstance(sizes, Counter) else 0)
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more sizes" if len(names) > 4 else "")


def training_envelope(det) -> dict:
    """The ``envelope`` of a saved model's card (``training.envelope`` in model.json): what its
    rates hold for, e.g. ``{"colour": true}``; empty when not recorded."""
    tr = getattr(det, "meta_", {}).get("training", {})
    env = tr.get("envelope") if isinstance(tr, dict) else None
    return env if isinstance(env, dict) else {}


def is_greyscale(image: np.ndarray) -> bool:
    """True for an ``(H, W, 3)`` image whose three channels are identical (a decoded grey file)."""
    return bool(image.ndim == 2 or (np.array_equal(image[..., 0], image[..., 1])
                                    and np.array_equal(image[..., 1], image[..., 2])))


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


def source_features(det, src: str, patch_size: int, policy, what: str) -> tuple[np.ndarray, Counter]:
    """``det``'s features of every usable image of ``src`` (``builtin`` / ``builtin-wide``: the
    built-in patches of ``patch_size``; else a folder), streamed chunk by chunk so that only the
    features are ever held, never the whole folder's images, and how many images of each size
    (``"WxH"``) were used. Unreadable files are reported and skipped; images below
    ``det.min_size`` are an error."""
    sizes: Counter = Counter()
    if src in BUILTIN_SOURCES:
        images = builtin_patches(patch_size, extra=src == "builtin-wide").images
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

    def split(n):
        perm = rng.permutation(n)
        k = max(1, int(round(test_fraction * n)))
        return perm[k:], perm[:k]

    rtr, rte = split(len(real_X))
    ftr, fte = split(len(fake_X))
    cal = None
    if target_fpr is not None:
        k = max(1, len(rtr) // 4)
        cal, rtr = rtr[:k], rtr[k:]
    det.fit_real_fake(real_X[rtr], fake_X[ftr])
    if cal is not None:
        det.calibrate(real_X[cal], target_fpr)
    sr, sf = det.score(real_X[rte]), det.score(fake_X[fte])
    thr = det.threshold_
    return {
        "real_accuracy": metrics.real_accuracy(sr, thr),
        "generated_accuracy": metrics.detection_rate(sf, thr),
        "roc_auc": metrics.roc_auc(sr, sf),
        "threshold": float(thr),
        "n_train": {"real": int(len(rtr)), "generated": int(len(ftr))},
        "n_test": {"real": int(len(rte)), "generated": int(len(fte))},
        "n_calibration_real": 0 if cal is None else int(len(cal)),
        "target_fpr": target_fpr,
    }


def train_detector(real: str, fake: str, name: str, out, policy: str | None = None, seed: int = 0,
                   test_fraction: float = 0.2, target_fpr: float | None = None, patch_size: int = 64) -> dict:
    """Train detector ``name`` on real vs generated folders; save the model and metrics.json."""
    from forensics.detectors import make_detector

    checks.seed(seed)
    checks.finite("test fraction", test_fraction, 0, 1, lo_open=True, hi_open=True)
    if target_fpr is not None:
        checks.finite("target false-positive rate", target_fpr, 0, 1, hi_open=True)
    checks.whole("patch size", patch_size, 8, 4096)
    from forensics.detectors import IMAGE_DETECTORS

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
        warn(f"real images are {_sizes_text(size_r)} but generated images are {_sizes_text(size_f)}: the detector "
             f"may learn the size instead of the spectrum (give both classes one size, e.g. a resize policy"
             + (f", or patches of {_sizes_text(size_f)} for the built-in reals" if real in BUILTIN_SOURCES else "") + ")")
    m = fit_and_evaluate(det, Xr, Xf, test_fraction, seed, target_fpr)
    config = {"command": "train-detector", "detector": name, "real": real, "fake": fake,
              "preprocess": str(pol), "seed": seed, "test_fraction": test_fraction,
              "target_fpr": target_fpr, "n_images": {"real": len(Xr), "generated": len(Xf)},
              "sizes": {"real": dict(size_r), "generated": dict(size_f)}}
    det.save(out, extra={"training": {**config, "metrics": m}})
    write_json(Path(out) / "metrics.json", {"detector": name, **m})
    write_config(out, config)
    return m

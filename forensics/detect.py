"""``forensics detect`` and ``forensics train-detector`` as library functions."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from forensics import metrics, spectrum
from forensics.data import builtin_patches, data_dir
from forensics.errors import UserError, warn
from forensics.images import Policy, Prefetcher, map_chunks, scan_nonempty, warn_skipped
from forensics.io import write_config, write_csv, write_json
from forensics.progress import bar

COLUMNS = ["path", "score", "label", "threshold", "detector", "width", "height", "error"]
CHUNK = 128


def default_model_dir() -> Path:
    return data_dir() / "models" / "default"


def load_model(model_dir=None):
    """The model in ``model_dir``, or the default model shipped in ``data/models/default``."""
    from forensics.detectors import Detector

    return Detector.load(model_dir if model_dir is not None else default_model_dir())


def _stored_policy(model_dir) -> str:
    """The preprocessing policy recorded in a model folder, read without loading it (so
    decoding can start while the detector's libraries import); "none" if unreadable."""
    import json

    try:
        meta = json.loads((Path(model_dir or default_model_dir()) / "model.json").read_text(encoding="utf-8"))
        return str(meta["params"].get("preprocess", "none"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "none"


def detect(paths, model_dir=None, out=None, policy: str | None = None, progress: bool = True) -> list[dict]:
    """Score every image under ``paths``; returns one row per file (see ``COLUMNS``).

    Files that cannot be decoded, or are too small for the detector's features, get
    ``label = "error"`` and the reason; the rest are scored. With ``out`` (``.csv`` or
    ``.json``) the rows are written there atomically.
    """
    if out is not None and Path(out).suffix.lower() not in (".csv", ".json"):
        raise UserError(f"{out}: output must end in .csv or .json")
    files = scan_nonempty(paths)
    pol = Policy.parse(policy if policy is not None else _stored_policy(model_dir))
    prefetch = Prefetcher(files, pol, ahead=2 * CHUNK)  # decodes while the model loads
    det = load_model(model_dir)
    thr = float(det.threshold_)
    min_side = getattr(det, "min_size", 1)

    def keep(r) -> bool:
        if r.ok and min(r.image.shape[:2]) < min_side:
            r.error = f"image is {r.image.shape[1]}x{r.image.shape[0]}; {det.name} needs at least {min_side}x{min_side}"
        return r.ok

    rows = []
    with bar(total=len(files), desc=f"detect ({det.name})", enabled=progress) as pb:
        for loaded, kept, scores in map_chunks(prefetch, spectrum.single_threaded(det.score), keep, CHUNK):
            sc = dict(zip((id(r) for r in kept), scores if scores is not None else ()))
            for r in loaded:
                row = {"path": str(r.path), "threshold": thr, "detector": det.name,
                       "width": r.width, "height": r.height, "error": r.error}
                s = sc.get(id(r))
                if r.ok and s is not None and np.isfinite(s):
                    row.update(score=round(float(s), 6), label="generated" if s > thr else "real")
                else:
                    row.update(score=None, label="error",
                               error=r.error or f"{det.name} features are undefined for this image")
                rows.append(row)
            pb.update(len(loaded))
    known = training_sizes(det)
    if known and pol.mode == "none":
        odd = Counter(size_name(r["height"], r["width"]) for r in rows
                      if r["label"] != "error" and size_name(r["height"], r["width"]) not in known)
        if odd:
            warn(f"{sum(odd.values())} of {len(rows)} images ({_sizes_text(odd)}) differ in size from the "
                 f"model's training images ({', '.join(sorted(known))}); its rates were measured on those sizes only")
    if out is not None:
        out = Path(out)
        if out.suffix.lower() == ".json":
            write_json(out, {"detector": det.name, "threshold": thr, "preprocess": str(pol),
                             "model": str(model_dir or default_model_dir()), "rows": rows})
        else:
            write_csv(out, rows, COLUMNS)
    return rows


def _sizes_text(sizes) -> str:
    names = sorted(sizes, key=lambda k: -sizes[k] if isinstance(sizes, Counter) else 0)
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more sizes" if len(names) > 4 else "")


def training_sizes(det) -> set[str] | None:
    """The image sizes (``"WxH"``) a saved model was trained on, from its model card, if recorded."""
    tr = getattr(det, "meta_", {}).get("training", {})
    sizes = tr.get("sizes") if isinstance(tr, dict) else None
    if isinstance(sizes, dict):
        return {k for part in sizes.values() if isinstance(part, dict) for k in part}
    return None


def summary_line(rows: list[dict], out=None) -> str:
    counts = {k: sum(r["label"] == k for r in rows) for k in ("real", "generated", "error")}
    s = f"{len(rows)} files: {counts['real']} real, {counts['generated']} generated, {counts['error']} error"
    return s + (f" -> {out}" if out else "")


def size_name(h: int, w: int) -> str:
    return f"{w}x{h}"


def source_features(det, src: str, patch_size: int, policy, what: str) -> tuple[np.ndarray, Counter]:
    """``det``'s features of every usable image of ``src`` (``builtin``: the built-in
    patches of ``patch_size``; else a folder), streamed chunk by chunk so that only the
    features are ever held, never the whole folder's images, and how many images of each size
    (``"WxH"``) were used. Unreadable files are reported and skipped; images below
    ``det.min_size`` are an error."""
    sizes: Counter = Counter()
    if src == "builtin":
        images = builtin_patches(patch_size).images
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

    det = make_detector(name, seed=seed, preprocess=str(Policy.parse(policy)))
    if not 0 < test_fraction < 1:
        raise ValueError(f"the held-out fraction must be between 0 and 1, not {test_fraction}")
    pol = Policy.parse(policy)
    Xr, size_r = source_features(det, real, patch_size, pol, "real")
    Xf, size_f = source_features(det, fake, patch_size, pol, "generated")
    if set(size_r) != set(size_f):
        warn(f"real images are {_sizes_text(size_r)} but generated images are {_sizes_text(size_f)}: the detector "
             f"may learn the size instead of the spectrum (give both classes one size, e.g. a resize policy"
             + (f", or patches of {_sizes_text(size_f)} for the built-in reals" if real == "builtin" else "") + ")")
    m = fit_and_evaluate(det, Xr, Xf, test_fraction, seed, target_fpr)
    config = {"command": "train-detector", "detector": name, "real": real, "fake": fake,
              "preprocess": str(pol), "seed": seed, "test_fraction": test_fraction,
              "target_fpr": target_fpr, "n_images": {"real": len(Xr), "generated": len(Xf)},
              "sizes": {"real": dict(size_r), "generated": dict(size_f)}}
    det.save(out, extra={"training": {**config, "metrics": m}})
    write_json(Path(out) / "metrics.json", {"detector": name, **m})
    write_config(out, config)
    return m

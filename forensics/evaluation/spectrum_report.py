"""``forensics spectrum``: azimuthal spectra and decay features of folders of images."""
from __future__ import annotations

import sys

import numpy as np

from forensics.core.progress import bar
from forensics.io.engine import engine
from forensics.io.files import check_output, write_config, write_csv
from forensics.io.images import Policy, Prefetcher, map_chunks, scan_nonempty
from forensics.report.figures import Curve, plot_profiles
from forensics.spectral import spectrum

#: feature sets written to features.csv unless others are asked for
DEFAULT_FEATURES = ("dzanic+", "dzanic")
CHUNK = 128


def feature_columns(names) -> list[str]:
    """Columns of features.csv: ``<set>_0 .. <set>_<dim-1>`` for each feature set."""
    return [c for n in names for c in spectrum.feature_set(n).columns()]


def profile_curve(profiles_by_size: dict[tuple[int, int], list[np.ndarray]], label: str) -> Curve:
    """Mean ± std of per-image profiles; mixed sizes are interpolated onto the frequency
    grid of the smallest size present."""
    sizes = sorted(profiles_by_size, key=lambda s: min(s))
    grid = spectrum.profile_frequencies(*sizes[0])
    stacked = []
    for hw in sizes:
        p = np.concatenate(profiles_by_size[hw])
        stacked.append(p if hw == sizes[0] else
                       spectrum.resample_profiles(p, [spectrum.profile_frequencies(*hw)] * len(p), grid))
    allp = np.concatenate(stacked)
    return Curve(label, grid, allp.mean(0), allp.std(0), len(allp))


def image_features(images: list[np.ndarray], names=DEFAULT_FEATURES, device: str = "numpy") -> np.ndarray:
    """The feature sets ``names`` side by side for a list of images (``feature_columns(names)``;
    NaN where an image is below a set's minimum size or the set's value is undefined); the sets
    with a torch path run on torch when ``device`` is ``cpu`` or ``cuda``."""
    from forensics.spectral import spectrum_torch

    sets = [spectrum.feature_set(n) for n in names]
    feats = np.full((len(images), sum(f.dim for f in sets)), np.nan)
    col = 0
    for fs in sets:
        big = [i for i, im in enumerate(images) if min(im.shape[:2]) >= fs.min_size]
        if big:
            imgs = [images[i] for i in big]
            feats[big, col:col + fs.dim] = (spectrum_torch.features(imgs, fs.name, device)
                                            if device != "numpy" else fs.fn(imgs))
        col += fs.dim
    return feats


class Analyse:
    """Profiles by image size, and the feature sets, of one chunk of images (picklable, so Dask
    workers can run it)."""

    def __init__(self, features=DEFAULT_FEATURES, device: str = "numpy"):
        self.features, self.device = tuple(features), device

    def __call__(self, imgs: list[np.ndarray]):
        with spectrum.limit_threads(1):
            profiles = {hw: spectrum.azimuthal_profile([im for im in imgs if im.shape[:2] == hw])
                        for hw in {im.shape[:2] for im in imgs}}
            return profiles, image_features(imgs, self.features, self.device)


JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe")


def _durall_from_decoder_luma(features):
    """For ``durall`` on JPEG files: recompute it from OpenCV's ``imread(path, 0)``, the JPEG
    decoder's own luma, as Durall et al.'s code reads images (a conversion of the decoded RGB
    differs from it by up to a grey level). None when ``durall`` is not asked for."""
    if "durall" not in features:
        return None
    start = sum(spectrum.feature_set(n).dim for n in features[:features.index("durall")])
    dim = spectrum.feature_set("durall").dim

    def fix(path, row):
        from forensics.io.images import read_gray

        g = read_gray(path)
        if g is None or min(g.shape) < spectrum.MIN_SIZE["durall"]:
            return row
        row = row.copy()
        row[start:start + dim] = spectrum.features(g[None], "durall")[0]
        return row

    return fix


def spectrum_report(paths, out, policy=None, progress: bool = True, features=DEFAULT_FEATURES,
                    scheduler: str | None = None, device: str = "numpy") -> dict:
    """Write ``profiles.csv``, ``features.csv``, ``spectrum.png`` and ``config.json`` to ``out``.

    Each path is one group (a folder, searched recursively, or a single file). ``features``
    names the feature sets written to ``features.csv``, one column per value
    (:func:`feature_columns`). Files that cannot be decoded are listed in ``features.csv``
    with their error and skipped; when no file at all is usable, nothing is written (``ValueError``
    naming the inputs and a reason). With ``scheduler`` the chunks run on Dask workers (same rows,
    same order); ``device`` picks NumPy or torch (``cpu``/``cuda``) for the features.
    """
    from forensics.detection.detect import check_device
    from forensics.detection.scoring import MinSide

    features = list(features)
    columns = feature_columns(features)  # unknown names fail here, before any work
    check_device(device)
    if scheduler is not None:
        from forensics.io.engine import parse_scheduler

        parse_scheduler(scheduler)
    out = check_output(out, "dir")
    pol = Policy.parse(policy)
    # durall of JPEG files from the decoder's luma, as published (not after a crop or resize)
    published_gray = _durall_from_decoder_luma(features) if pol.mode == "none" else None
    groups = [(str(p), scan_nonempty(p)) for p in paths]
    min_side = min(spectrum.MIN_SIZE[n] for n in features)
    feature_rows, curves, n_bad, empty = [], [], 0, []
    total = sum(len(f) for _, f in groups)
    keep = MinSide(min_side, "the spectrum features")
    analyse = Analyse(features, device)
    with bar(total=total, desc="spectrum", enabled=progress) as pb, engine(scheduler) as c:
        for label, files in groups:
            by_size: dict[tuple[int, int], list[np.ndarray]] = {}
            if c is None:
                chunks = map_chunks(Prefetcher(files, pol), analyse, keep, CHUNK)
            else:
                from forensics.io.engine import dask_chunks

                chunks = dask_chunks(c, files, pol, keep, analyse)
            for loaded, kept, res in chunks:
                pb.update(len(loaded))
                if res is not None:
                    for hw, p in res[0].items():
                        by_size.setdefault(hw, []).append(p)
                feats = dict(zip((id(r) for r in kept), res[1] if res is not None else ()))
                if published_gray is not None:
                    for r in kept:
                        if r.path.suffix.lower() in JPEG_SUFFIXES:
                            feats[id(r)] = published_gray(r.path, feats[id(r)])
                for r in loaded:
                    row = {"group": label, "path": str(r.path), "width": r.width, "height": r.height}
                    if id(r) in feats:
                        row.update({c: (f"{v:.9g}" if np.isfinite(v) else "")
                                    for c, v in zip(columns, feats[id(r)])})
                    else:
                        n_bad += 1
                        row["error"] = r.error
                    feature_rows.append(row)
            if by_size:
                curves.append(profile_curve(by_size, label))
            else:
                empty.append(label)
    if not curves:  # nothing to write: say why, and leave an earlier output in `out` as it was
        bad = [r for r in feature_rows if r.get("error")]
        why = f"; e.g. {bad[0]['path']}: {bad[0]['error']}" if bad else ""
        raise ValueError(f"no usable image in {', '.join(g for g, _ in groups)} ({n_bad} of {total} files could not "
                         f"be used{why}); no spectrum was written")
    for label in empty:
        print(f"forensics: {label}: no usable image", file=sys.stderr)
    prof_rows = []
    for c in curves:
        for k, (f, m, s) in enumerate(zip(c.freqs, c.mean, c.std)):
            prof_rows.append({"group": c.label, "n_images": c.n, "bin": k, "frequency": f"{f:.6f}",
                              "mean_db": f"{m:.4f}", "std_db": f"{s:.4f}"})
    write_csv(out / "profiles.csv", prof_rows, ["group", "n_images", "bin", "frequency", "mean_db", "std_db"])
    write_csv(out / "features.csv", feature_rows, ["group", "path", "width", "height", "error"] + columns)
    plot = plot_profiles(curves, out / "spectrum.png",
                         title=f"Azimuthal spectrum (grey BT.601, |FFT| ortho, 20 log10), policy {pol}")
    write_config(out, {"command": "spectrum", "inputs": [g for g, _ in groups], "preprocess": str(pol),
                       "device": device, "scheduler": scheduler,
                       "spectrum": "grey BT.601, ortho FFT, 20*log10(|F|+1e-8), integer rings k = round(f*min(H,W))",
                       "features": {n: spectrum.feature_set(n).summary for n in features}})
    return {"groups": [(c.label, c.n) for c in curves], "errors": n_bad, "out": str(out),
            "plot": str(plot)}

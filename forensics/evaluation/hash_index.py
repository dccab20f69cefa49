"""Hash indexes of image folders: build (train a DCSH model and encode), query (Hamming
neighbours), and train/test leakage (near-duplicates shared by two folders).

An index folder holds the model files of :class:`forensics.detectors.hashing.HashModel`, plus

``index.json``
    the indexed files (in order), the files that could not be used with the reason, the config;
``index.npz``
    ``codes_pixels`` and ``codes_spectrum`` (``np.packbits`` rows) and ``thumbs``, the images
    after the model's policy (``N x S x S x 3`` uint8), used to verify candidates by PSNR;
``config.json``
    the :class:`HashConfig` and the library versions.

Everything is read without executing code (JSON, ``allow_pickle=False``, safetensors).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from forensics.core.checks import read_json_object
from forensics.detectors.hashing import CODE_MODALITIES, HashConfig, HashModel, codes_of, nearest
from forensics.io.files import read_npz, write_config, write_csv, write_json, write_npz
from forensics.io.sources import is_builtin, source_images
from forensics.metrics.similarity import psnr

INDEX_FORMAT = "forensics-hash-index"


def _images(src, config: HashConfig, progress: bool, desc: str):
    """The images of ``src`` for a hash model: the built-in patches of ``config.size``, or a folder's
    images after the config's policy (unreadable files listed in ``skipped``)."""
    return source_images(src, config.size if is_builtin(src) else None, config.policy_str, progress, desc)


def _check_modality(modality: str) -> None:
    if modality not in CODE_MODALITIES:
        raise ValueError(f"unknown code modality {modality!r}; choose from {', '.join(CODE_MODALITIES)}")


class HashIndex:
    """An encoded collection: model, file names, per-modality codes and thumbnails."""

    def __init__(self, model: HashModel, files: list[str], outputs_codes: dict[str, np.ndarray],
                 thumbs: np.ndarray, skipped: list[dict]):
        self.model = model
        self.files = files
        self.codes = outputs_codes  # "pixels"/"spectrum" -> bool (N, bits)
        self.thumbs = thumbs
        self.skipped = skipped

    def codes_for(self, modality: str) -> np.ndarray:
        _check_modality(modality)
        if modality == "both":
            return np.concatenate([self.codes["pixels"], self.codes["spectrum"]], axis=1)
        return self.codes[modality]

    def save(self, folder) -> Path:
        folder = Path(folder)
        self.model.save(folder)
        write_npz(folder / "index.npz", **{f"codes_{m}": np.packbits(c, axis=1) for m, c in self.codes.items()},
                  thumbs=self.thumbs)
        write_json(folder / "index.json", {"format": INDEX_FORMAT, "format_version": 1, "files": self.files,
                                           "skipped": self.skipped, "bits": self.model.config.bits})
        write_config(folder, {"config": self.model.config.to_dict(), "n_indexed": len(self.files),
                              "n_skipped": len(self.skipped)})
        return folder

    @classmethod
    def load(cls, folder) -> "HashIndex":
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such index folder")
        ij = folder / "index.json"
        if not ij.is_file():
            raise ValueError(f"{folder}: not a hash index (no index.json)")
        meta = read_json_object(ij, "hash index description")
        if meta.get("format") != INDEX_FORMAT:
            raise ValueError(f"{ij}: not a forensics hash index")
        model = HashModel.load(folder)
        try:
            z = read_npz(folder / "index.npz")
            bits = model.config.bits
            codes = {m: np.unpackbits(z[f"codes_{m}"], axis=1, count=bits).astype(bool)
                     for m in ("pixels", "spectrum")}
            thumbs = z["thumbs"]
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"{folder}: damaged hash index ({type(e).__name__}: {e})") from None
        files = list(meta["files"])
        if any(len(c) != len(files) for c in codes.values()) or len(thumbs) != len(files):
            raise ValueError(f"{folder}: damaged hash index (codes and file list differ in length)")
        return cls(model, files, codes, thumbs, list(meta.get("skipped", [])))


def encode_images(model: HashModel, images: np.ndarray) -> dict[str, np.ndarray]:
    out = model.outputs(images)
    return {m: codes_of(out, m) for m in ("pixels", "spectrum")}


def build_index(paths, out, config: HashConfig | None = None, progress: bool = False) -> HashIndex:
    """Train a hash model on the images under ``paths`` (unsupervised), encode them and save
    the index in folder ``out``. ``paths == ["builtin"]`` indexes the built-in patches of
    ``config.size`` (named ``builtin:PHOTO@1/SCALE:Y,X``)."""
    config = config or HashConfig()
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    builtin = len(paths) == 1 and is_builtin(str(paths[0]))
    s = _images(str(paths[0]) if builtin else paths, config, progress, "loading")
    images, skipped = np.stack(s.images), s.skipped
    files = [f"builtin:{n}" for n in s.names] if builtin else s.names
    model = HashModel.train(images, config, progress)
    index = HashIndex(model, files, encode_images(model, images), images, skipped)
    index.save(out)
    return index


def _write_rows(out, rows: list[dict], columns: list[str], meta: dict) -> None:
    out = Path(out)
    if out.suffix.lower() == ".json":
        write_json(out, {**meta, "rows": rows})
    elif out.suffix.lower() == ".csv":
        write_csv(out, rows, columns)
    else:
        raise ValueError(f"{out}: output must end in .csv or .json")


def _round(x: float):
    return None if not np.isfinite(x) else round(float(x), 2)


def query_index(index_dir, paths, out, k: int = 5, modality: str = "both", progress: bool = False) -> list[dict]:
    """The ``k`` nearest indexed images (Hamming distance of the ``modality`` codes) of each image
    under ``paths``: one row per (query, rank), and one row with the reason per unusable file."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    _check_modality(modality)
    if not paths:
        raise ValueError("a query needs at least one image or folder to look up")
    index = HashIndex.load(index_dir)
    from forensics.io.images import iter_loaded, scan_nonempty

    files = scan_nonempty(paths)
    rows, good = [], []
    for r in iter_loaded(files, index.model.config.policy_str):
        if r.ok:
            good.append(r)
        else:
            rows.append({"query": str(r.path), "rank": None, "error": r.error})
    if good:
        images = np.stack([r.image for r in good])
        codes = encode_images(index.model, images)
        q = np.concatenate([codes["pixels"], codes["spectrum"]], 1) if modality == "both" else codes[modality]
        idx, dist = nearest(q, index.codes_for(modality), k)
        for i, r in enumerate(good):
            ps = psnr(np.repeat(images[i:i + 1], idx.shape[1], 0), index.thumbs[idx[i]])
            for rank, (j, d, p) in enumerate(zip(idx[i], dist[i], ps), 1):
                rows.append({"query": str(r.path), "rank": rank, "neighbour": index.files[j], "hamming": int(d),
                             "psnr_db": _round(p), "error": None})
    order = {str(f): i for i, f in enumerate(files)}
    rows.sort(key=lambda row: (order.get(row["query"], 0), row["rank"] or 0))
    _write_rows(out, rows, ["query", "rank", "neighbour", "hamming", "psnr_db", "error"],
                {"index": str(index_dir), "k": k, "modality": modality, "bits": index.model.config.bits})
    return rows


def leakage(train, test, out, config: HashConfig | None = None, modality: str = "pixels",
            max_distance: int | None = None, k: int = 3, min_psnr: float = 30.0,
            progress: bool = False) -> dict:
    """Near-duplicates shared by folders ``train`` and ``test``. A hash model is trained on both
    folders together; for each test image its up to ``k`` nearest training images within Hamming
    distance ``max_distance`` (default a quarter of the code length) are candidates, and a
    candidate is a ``duplicate`` when the two images (after the model's policy) are within
    ``min_psnr`` dB of each other. Writes the candidate rows (and unusable files, with reasons)."""
    config = config or HashConfig()
    _check_modality(modality)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    tr, te = _images(train, config, progress, "loading train"), _images(test, config, progress, "loading test")
    a, b = np.stack(tr.images), np.stack(te.images)
    model = HashModel.train(np.concatenate([a, b]), config, progress)
    ca, cb = encode_images(model, a), encode_images(model, b)

    def pick(c):
        return np.concatenate([c["pixels"], c["spectrum"]], 1) if modality == "both" else c[modality]

    qa, qb = pick(ca), pick(cb)
    if max_distance is None:
        max_distance = qa.shape[1] // 4
    rows = [{"test": None, "train": x["path"], "error": x["error"]} for x in tr.skipped]
    rows += [{"test": x["path"], "train": None, "error": x["error"]} for x in te.skipped]
    n_dup = 0
    for s in range(0, len(qb), 1024):
        idx, dist = nearest(qb[s:s + 1024], qa, k)
        ii, jj = np.nonzero(dist <= max_distance)
        if not len(ii):
            continue
        ps = psnr(b[s + ii], a[idx[ii, jj]])
        for i, j, p in zip(ii, jj, ps):
            dup = bool(p >= min_psnr)
            n_dup += dup
            rows.append({"test": te.names[s + i], "train": tr.names[idx[i, j]],
                         "hamming": int(dist[i, j]), "psnr_db": _round(p), "duplicate": dup, "error": None})
    summary = {"n_train": len(tr.names), "n_test": len(te.names),
               "n_candidates": sum(r.get("error") is None for r in rows),
               "n_duplicates": n_dup, "n_unreadable": len(tr.skipped) + len(te.skipped),
               "test_with_duplicate": len({r["test"] for r in rows if r.get("duplicate")})}
    _write_rows(out, rows, ["test", "train", "hamming", "psnr_db", "duplicate", "error"],
                {"train": str(train), "test": str(test), "modality": modality, "max_distance": max_distance,
                 "k": k, "min_psnr": min_psnr, "config": config.to_dict(), "summary": summary})
    return summary

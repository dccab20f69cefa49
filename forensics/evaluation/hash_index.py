"""Hash indexes of image folders: build (train a DCSH model on a sample and encode every image),
add to an index (the new files only; also resumes an interrupted build), query (Hamming
neighbours), and train/test leakage (near-duplicates shared by two folders).

Building streams the files in chunks (decoded ahead on a small pool, or on Dask workers with
``scheduler``) through :meth:`~forensics.detectors.hashing.HashModel.codes`, whose bits do not
depend on the chunking or the machine: a Dask build writes the same codes as one process.

An index folder (format version 2) holds the model files of
:class:`forensics.detectors.hashing.HashModel`, plus

``index.json``
    the manifest: format, code length, counts and the list of segments with each one's image
    count, checksums and size;
``segments/seg-NNNNNN.json``
    a segment's indexed files (in order) and the files it could not use, with the reason;
``segments/seg-NNNNNN.npz``
    ``codes_pixels``, ``codes_spectrum``: the segment's codes packed in ``uint64`` words;
``segments/seg-NNNNNN.thumbs.npy``
    the images after the model's policy (``n x S x S x 3`` uint8, memory-mapped on load), used
    to verify candidates by PSNR;
``config.json``
    the :class:`HashConfig`, the :class:`IndexConfig` and the library versions.

Every file is written atomically (a temporary file, then ``os.replace``) and a segment is
complete on disk before the manifest that names it replaces the previous one, so a process
killed at any moment leaves the index as it was before its last segment or after it, never
mixed: files no manifest names are removed by the next add. One writer at a time holds a lock
on ``.lock``. Everything is read without executing code (JSON, ``allow_pickle=False``,
safetensors). Indexes of format version 1 (one ``index.npz``) are read, and converted on add.

Neighbours are exact: ordered by Hamming distance, ties by position in the index (the order the
files were added), found by multi-index hashing (:mod:`forensics.detectors.hash_search`) or, as
the oracle, a linear scan.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from forensics.core.checks import read_json_object
from forensics.core.config import Config, Count
from forensics.core.errors import SettingError, UserError
from forensics.core.progress import bar
from forensics.detectors.hash_search import MultiIndex, knn_scan, n_words, unpack
from forensics.detectors.hashing import CODE_MODALITIES, MODALITIES, HashConfig, HashModel, one_torch_thread
from forensics.io.files import (
    atomic_write_bytes,
    atomic_write_stream,
    dumps,
    printable,
    read_npz,
    write_config,
    write_csv,
    write_json,
)
from forensics.io.images import Prefetcher, map_chunks, scan_nonempty, warn_skipped
from forensics.io.sources import is_builtin, source_images
from forensics.metrics.similarity import psnr

INDEX_FORMAT = "forensics-hash-index"
INDEX_VERSION = 2
SEGMENTS = "segments"
MODEL_FILES = ("hash_model.json", "hash_model.npz", "pixels_net.safetensors", "spectrum_net.safetensors")
_SEGMENT = re.compile(r"seg-\d{6}\Z")


@dataclasses.dataclass(frozen=True)
class IndexConfig(Config):
    """How an index is built: the model's settings, and how the images are streamed."""

    hash: HashConfig = dataclasses.field(default_factory=HashConfig)  # the model a new index trains
    add: bool = False              # add to the index in the output folder (its model; indexed files skipped)
    scheduler: str | None = None   # a Dask scheduler address, or local / local:N (None: this process)
    chunk: Count = 256             # images per encoded chunk (a Dask task)
    segment: Count = 16384         # images per segment: an interrupted build keeps its finished segments

    def validate(self) -> None:
        if self.scheduler is not None:
            from forensics.io.engine import parse_scheduler

            parse_scheduler(self.scheduler)


def _check_modality(modality: str) -> None:
    if modality not in CODE_MODALITIES:
        raise ValueError(f"unknown code modality {modality!r}; choose from {', '.join(CODE_MODALITIES)}")


def modality_words(codes: dict[str, np.ndarray], modality: str) -> np.ndarray:
    """The packed codes a ``modality`` compares: one modality's words, or both side by side
    (their Hamming distance is the sum of the two)."""
    _check_modality(modality)
    if modality == "both":
        return np.concatenate([codes["pixels"], codes["spectrum"]], axis=1)
    return codes[modality]


# --------------------------------------------------------------------------------- encoding
def _model_stamp(folder) -> tuple:
    return tuple((n, os.stat(Path(folder) / n).st_mtime_ns) for n in MODEL_FILES)


@lru_cache(maxsize=2)
def _cached_model(folder: str, stamp: tuple) -> HashModel:
    return HashModel.load(folder)


class ChunkEncoder:
    """Packed codes and thumbnails of one chunk of decoded ``S x S`` images: picklable for Dask
    workers (built with ``model_dir``: the model is loaded once per worker, torch on one thread)
    or holding a loaded ``model`` in process (the caller keeps torch on one thread)."""

    def __init__(self, model_dir=None, model: HashModel | None = None):
        self.model_dir = None if model_dir is None else str(model_dir)
        self.model = model

    def __getstate__(self):
        return {**self.__dict__, "model": None}  # a worker loads its own copy

    def __call__(self, images) -> dict:
        from forensics.spectral.spectrum import limit_threads

        model = self.model
        if model is None:
            import torch

            torch.set_num_threads(1)  # a worker process: the same arithmetic as one thread in process
            model = _cached_model(self.model_dir, _model_stamp(self.model_dir))
        thumbs = np.stack(images)
        with limit_threads(1):
            codes = model.codes(thumbs)
        return {**codes, "thumbs": thumbs}


def _is_decoded(r) -> bool:
    return r.ok


def _local_arrays(images, fn, chunk: int):
    """``fn`` of each ``chunk`` of in-memory images, in order, two chunks at a time on threads."""
    from forensics.spectral.spectrum import threads

    with ThreadPoolExecutor(max(1, min(2, threads()))) as pool:
        futures = [pool.submit(fn, images[i:i + chunk]) for i in range(0, len(images), chunk)]
        for f in futures:
            yield f.result()


def _dask_arrays(c, images, fn, chunk: int):
    """:func:`_local_arrays` on the workers of Dask client ``c`` (at most two chunks per worker in flight)."""
    from forensics.io.engine import in_order

    return in_order(c, ((fn, list(images[i:i + chunk])) for i in range(0, len(images), chunk)))


# ------------------------------------------------------------------------------ index files
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npy_chunks(a: np.ndarray):
    """An array as ``.npy`` file content, piece by piece (the header, then its bytes)."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(a))
    yield head.getvalue()
    raw = memoryview(np.ascontiguousarray(a)).cast("B")
    step = 16 << 20
    for i in range(0, len(raw), step):
        yield raw[i:i + step]


class _Thumbs:
    """The thumbnails of an index, one (memory-mapped) array per segment, read by position."""

    def __init__(self, parts: list[np.ndarray], size: int):
        self.parts = [p for p in parts if len(p)]
        self.size = size
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def take(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty(idx.shape + (self.size, self.size, 3), np.uint8)
        seg = np.searchsorted(self.offsets, idx, side="right") - 1
        for s in np.unique(seg):
            at = seg == s
            out[at] = self.parts[s][idx[at] - self.offsets[s]]
        return out

    def __array__(self, dtype=None, copy=None):
        return self.take(np.arange(len(self))) if dtype is None else self.take(np.arange(len(self))).astype(dtype)


class HashIndex:
    """An encoded collection: model, file names, packed codes per modality, thumbnails, the files
    that could not be used. :meth:`search` answers exact Hamming neighbours."""

    def __init__(self, model: HashModel, files: list[str], words: dict[str, np.ndarray], thumbs, skipped: list[dict],
                 folder=None, segments: list[dict] | None = None):
        self.model = model
        self.files = files
        self.words = words  # "pixels"/"spectrum" -> uint64 (N, 1)
        self.thumbs = thumbs if isinstance(thumbs, _Thumbs) else _Thumbs([np.asarray(thumbs)], model.config.size)
        self.skipped = skipped
        self.folder = None if folder is None else Path(folder)
        self.segments = segments or []
        self.added = 0  # images the build or add that returned this index encoded
        self._mih: dict[str, MultiIndex] = {}

    def __len__(self) -> int:
        return len(self.files)

    @property
    def bits(self) -> int:
        return self.model.config.bits

    def codes_for(self, modality: str) -> np.ndarray:
        """Bool codes ``(N, bits)`` (``both``: ``(N, 2 * bits)``)."""
        _check_modality(modality)
        if modality == "both":
            return np.concatenate([unpack(self.words[m], self.bits) for m in MODALITIES], axis=1)
        return unpack(self.words[modality], self.bits)

    def words_for(self, modality: str) -> np.ndarray:
        return modality_words(self.words, modality)

    def multi_index(self, modality: str) -> MultiIndex:
        """The multi-index of ``modality``'s codes (built on first use)."""
        if modality not in self._mih:
            used = [self.bits] * (2 if modality == "both" else 1)
            self._mih[modality] = MultiIndex(self.words_for(modality), used)
        return self._mih[modality]

    def search(self, query, k: int, modality: str = "both", exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Positions and Hamming distances of the ``k`` nearest indexed images of each query
        (``query``: packed codes of ``modality``, or the dict :meth:`HashModel.codes` returns),
        each ``(n_queries, min(k, N))``, by distance, ties by position. ``exact`` uses the linear
        scan (the oracle) instead of the multi-index; both give the same answer."""
        _check_modality(modality)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not len(self):
            raise UserError(f"{self.folder or 'the index'}: the index holds no images")
        q = modality_words(query, modality) if isinstance(query, dict) else query
        if exact:
            return knn_scan(q, self.words_for(modality), k)
        return self.multi_index(modality).knn(q, k)

    # ------------------------------------------------------------------------------ reading
    @classmethod
    def load(cls, folder) -> HashIndex:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such index folder")
        meta = _manifest(folder)
        if meta is None:
            raise UserError(f"{folder}: not a hash index (no index.json)")
        model = HashModel.load(folder)
        if meta.get("format_version") == 1:
            return _load_v1(folder, meta, model)
        if meta.get("bits") != model.config.bits or meta.get("size") != model.config.size:
            raise UserError(f"{folder}: damaged hash index (index.json and the model disagree on bits or size)")
        files, words, thumbs, skipped = [], {m: [] for m in MODALITIES}, [], {}
        for seg in meta["segments"]:
            f, w, t, sk = _read_segment(folder, seg, model.config)
            files += f
            for m in MODALITIES:
                words[m].append(w[m])
            thumbs.append(t)
            for s in sk:
                skipped[s["path"]] = s
        W = n_words(model.config.bits)
        words = {m: np.concatenate(v) if v else np.zeros((0, W), np.uint64) for m, v in words.items()}
        indexed = set(files)
        skipped = [s for p, s in skipped.items() if p not in indexed]
        return cls(model, files, words, _Thumbs(thumbs, model.config.size), skipped, folder, list(meta["segments"]))


def _manifest(folder: Path) -> dict | None:
    """The index's manifest (``None`` when the folder holds none); refuses what is not one."""
    ij = folder / "index.json"
    if not ij.is_file():
        return None
    meta = read_json_object(ij, "hash index description")
    if meta.get("format") != INDEX_FORMAT:
        raise UserError(f"{ij}: not a forensics hash index")
    v = meta.get("format_version")
    if v not in (1, INDEX_VERSION):
        raise UserError(f"{ij}: hash index format version {v!r} is not supported (this release reads 1 and 2)")
    if v == INDEX_VERSION:
        segs = meta.get("segments")
        if not isinstance(segs, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str)
                                                 and _SEGMENT.match(s["name"]) for s in segs):
            raise UserError(f"{ij}: damaged hash index (bad segment list)")
    return meta


def _read_segment(folder: Path, seg: dict, config: HashConfig):
    name, where = seg["name"], folder / SEGMENTS
    n, S = seg.get("n"), config.size
    try:
        if not isinstance(n, int) or n < 0:
            raise ValueError("bad image count in index.json")
        raw_json = (where / f"{name}.json").read_bytes()
        raw_npz = (where / f"{name}.npz").read_bytes()
        if _sha(raw_json) != seg.get("json_sha256") or _sha(raw_npz) != seg.get("codes_sha256"):
            raise ValueError("contents differ from their checksums in index.json")
        desc = json.loads(raw_json)
        files, skipped = desc["files"], desc["skipped"]
        if not isinstance(files, list) or len(files) != n or not all(isinstance(f, str) for f in files):
            raise ValueError("file list does not match index.json")
        with np.load(io.BytesIO(raw_npz), allow_pickle=False) as z:
            words = {m: z[f"codes_{m}"] for m in MODALITIES}
        if any(w.dtype != np.uint64 or w.shape != (n, n_words(config.bits)) for w in words.values()):
            raise ValueError("codes do not match index.json")
        tf = where / f"{name}.thumbs.npy"
        if tf.stat().st_size != seg.get("thumbs_bytes"):
            raise ValueError("thumbnail file size differs from index.json")
        thumbs = np.load(tf, mmap_mode="r", allow_pickle=False) if n else np.zeros((0, S, S, 3), np.uint8)
        if thumbs.dtype != np.uint8 or thumbs.shape != (n, S, S, 3):
            raise ValueError(f"thumbnails of shape {thumbs.shape}, expected {(n, S, S, 3)}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{folder}: damaged hash index (segment {name}: {e})") from None
    return files, words, thumbs, [s for s in skipped if isinstance(s, dict) and isinstance(s.get("path"), str)]


def _load_v1(folder: Path, meta: dict, model: HashModel) -> HashIndex:
    """An index of format version 1 (codes of ``np.packbits`` rows in one ``index.npz``)."""
    from forensics.detectors.hash_search import pack

    try:
        z = read_npz(folder / "index.npz")
        bits = model.config.bits
        words = {m: pack(np.unpackbits(z[f"codes_{m}"], axis=1, count=bits)) for m in MODALITIES}
        thumbs = z["thumbs"]
        files = list(meta["files"])
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise UserError(f"{folder}: damaged hash index ({type(e).__name__}: {e})") from None
    if any(len(w) != len(files) for w in words.values()) or len(thumbs) != len(files):
        raise UserError(f"{folder}: damaged hash index (codes and file list differ in length)")
    return HashIndex(model, files, words, thumbs, list(meta.get("skipped", [])), folder)


class _Writer:
    """The one writer of an index folder: holds ``.lock`` while open, removes files no manifest
    names, writes segments and then the manifest that adds them."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = None

    def __enter__(self):
        from forensics.io.files import check_output

        check_output(self.folder, "dir")
        self._lock = open(self.folder / ".lock", "a+b")
        try:
            import fcntl
        except ImportError:  # no advisory locks here (Windows): one writer is the user's care
            return self
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise UserError(f"{self.folder}: another process is writing this hash index") from None
        return self

    def __exit__(self, *exc):
        self._lock.close()  # releases the lock
        return False

    def tidy(self, meta: dict) -> None:
        """Remove segment files (and temporary files) that ``meta`` does not name: left by a killed writer."""
        where = self.folder / SEGMENTS
        if not where.is_dir():
            return
        names = {s["name"] for s in meta.get("segments", [])}
        for p in where.iterdir():
            stem = p.name.split(".", 1)[0] if not p.name.startswith(".") else ""
            if p.is_file() and (p.name.startswith(".seg-") or _SEGMENT.match(stem) and stem not in names):
                p.unlink(missing_ok=True)

    def manifest(self, config: HashConfig, segments: list[dict], extra: dict) -> dict:
        meta = {"format": INDEX_FORMAT, "format_version": INDEX_VERSION, "bits": config.bits, "size": config.size,
                "n": sum(s["n"] for s in segments), "n_skipped_rows": sum(s["n_skipped"] for s in segments),
                **extra, "segments": segments}
        write_json(self.folder / "index.json", meta)
        return meta

    def segment(self, number: int, files: list[str], skipped: list[dict], words: dict, thumbs: np.ndarray) -> dict:
        where = self.folder / SEGMENTS
        name = f"seg-{number:06d}"
        raw_json = printable(dumps({"files": files, "skipped": skipped}) + "\n").encode("utf-8")
        buf = io.BytesIO()
        np.savez(buf, **{f"codes_{m}": words[m] for m in MODALITIES})
        raw_npz = buf.getvalue()
        atomic_write_stream(where / f"{name}.thumbs.npy", _npy_chunks(thumbs))
        atomic_write_bytes(where / f"{name}.npz", raw_npz)
        atomic_write_bytes(where / f"{name}.json", raw_json)
        return {"name": name, "n": len(files), "n_skipped": len(skipped), "json_sha256": _sha(raw_json),
                "codes_sha256": _sha(raw_npz), "thumbs_bytes": (where / f"{name}.thumbs.npy").stat().st_size}


# ------------------------------------------------------------------------------ build, add
def _sources(paths, config: HashConfig):
    """``(builtin images or None, names or files)`` of ``paths``."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise UserError("an index needs at least one folder of images (or 'builtin')")
    if len(paths) == 1 and is_builtin(str(paths[0])):
        s = source_images(str(paths[0]), config.size)
        return np.stack(s.images), [f"builtin:{n}" for n in s.names]
    if any(is_builtin(str(p)) for p in paths):
        raise UserError("'builtin' cannot be indexed together with folders: index it alone, then --add the folders")
    return None, scan_nonempty(paths)


def _train(images, files, config: HashConfig, progress: bool) -> HashModel:
    """A model trained on at most ``config.max_train`` of the images (a seeded sample of the files)."""
    if images is None:
        from forensics.io.images import iter_loaded

        pick = np.arange(len(files))
        if len(files) > config.max_train:
            pick = np.sort(np.random.default_rng(config.seed).choice(len(files), config.max_train, replace=False))
        sample = [files[i] for i in pick]
        loaded = bar(iter_loaded(sample, config.policy_str), total=len(sample), desc="loading the training sample",
                     enabled=progress)
        images = [r.image for r in loaded if r.ok]
        if len(images) <= config.bits + 1:
            raise UserError(f"{config.bits}-bit codes need more than {config.bits + 1} usable training images; "
                            f"{len(images)} of the {len(sample)} sampled files could be read")
        images = np.stack(images)
    return HashModel.train(images, config, progress)


def build_index(paths, out, config: IndexConfig | HashConfig | None = None, progress: bool = False,
                model: HashModel | None = None) -> HashIndex:
    """Index the images under ``paths`` in folder ``out`` and return the index. A new index trains
    a hash model (unsupervised) on at most ``config.hash.max_train`` of them, or uses ``model``;
    with ``config.add`` the index in ``out`` gets the files it does not hold yet, encoded by its
    own model (this also resumes a build that was interrupted). ``paths == ["builtin"]`` indexes
    the built-in patches of the model's size (named ``builtin:PHOTO@1/SCALE:Y,X``). With
    ``config.scheduler`` the chunks are decoded and encoded on Dask workers (same codes)."""
    cfg = IndexConfig(hash=config) if isinstance(config, HashConfig) else (config or IndexConfig())
    out = Path(out)
    with _Writer(out) as w:
        meta = _manifest(out) if out.is_dir() else None
        if cfg.add:
            if meta is None:
                raise UserError(f"{out}: holds no hash index to add to (build one there first)")
            if model is not None:
                raise UserError("adding to an index encodes with the index's own model; do not give another")
            model = HashModel.load(out)
            if meta.get("format_version") == 1:
                meta = _convert_v1(w, out, model)
            w.tidy(meta)
            images, names = _sources(paths, model.config)
        else:
            if meta is not None:
                raise SettingError(f"{out}: already holds a hash index: add the images to it (this also resumes an "
                                   "interrupted build), or choose another folder", {"add": "True"})
            images, names = _sources(paths, cfg.hash)
            if model is None:
                model = _train(images, names, cfg.hash, progress)
            elif images is not None and images.shape[1] != model.config.size:
                raise UserError(f"the model takes {model.config.size}x{model.config.size} images")
            model.save(out)
            write_config(out, {"config": model.config.to_dict(), "index": cfg.replace(add=False).to_dict()})
            meta = w.manifest(model.config, [], {})
            w.tidy(meta)
        added = _encode_into(w, meta, model, images, names, cfg, out, progress)
    index = HashIndex.load(out)
    index.added = added
    return index


def _convert_v1(w: _Writer, out: Path, model: HashModel) -> dict:
    old = HashIndex.load(out)
    seg = w.segment(0, old.files, old.skipped, old.words, np.asarray(old.thumbs))
    meta = w.manifest(model.config, [seg], {})
    (out / "index.npz").unlink(missing_ok=True)
    return meta


def _encode_into(w: _Writer, meta: dict, model: HashModel, images, names, cfg: IndexConfig, out: Path,
                 progress: bool) -> int:
    """Encode the ``names`` (files, or the ``images`` they name) the index does not hold, a segment
    once ``cfg.segment`` images are encoded, each followed by the manifest that adds it; returns how
    many were added."""
    segments = list(meta["segments"])
    have = set()
    for seg in segments:
        have.update(json.loads((out / SEGMENTS / f"{seg['name']}.json").read_bytes())["files"])
    todo = [i for i, n in enumerate(names) if str(n) not in have]
    if not todo:
        return 0
    chunks = _chunks(model, images, [names[i] for i in todo] if images is None else images[todo],
                     [str(names[i]) for i in todo], cfg, out)
    buf: dict = {"files": [], "skipped": [], "thumbs": [], **{m: [] for m in MODALITIES}}
    n_buf = added = 0

    def flush():
        nonlocal n_buf, added
        if not buf["files"] and not buf["skipped"]:
            return
        S = model.config.size
        thumbs = np.concatenate(buf["thumbs"]) if buf["thumbs"] else np.zeros((0, S, S, 3), np.uint8)
        words = {m: np.concatenate(buf[m]) if buf[m] else np.zeros((0, n_words(model.config.bits)), np.uint64)
                 for m in MODALITIES}
        segments.append(w.segment(len(segments), buf["files"], buf["skipped"], words, thumbs))
        w.manifest(model.config, segments, {})
        added += len(buf["files"])
        for v in buf.values():
            v.clear()
        n_buf = 0

    with bar(total=len(todo), desc="encoding", enabled=progress) as pb:
        for files, skipped, res in chunks:
            buf["skipped"] += skipped
            if res is not None:
                buf["files"] += files
                buf["thumbs"].append(res["thumbs"])
                for m in MODALITIES:
                    buf[m].append(res[m])
                n_buf += len(files)
            pb.update(len(files) + len(skipped))
            if n_buf >= cfg.segment:
                flush()
        flush()
    return added


def _chunks(model: HashModel, images, items, names: list[str], cfg: IndexConfig, out: Path):
    """``(indexed names, skipped rows, ChunkEncoder result or None)`` per chunk, in order: in process
    (torch on one thread per chunk, two chunks at a time) or on the Dask workers of ``cfg.scheduler``."""
    from forensics.io.engine import dask_chunks, engine

    with engine(cfg.scheduler) as c, one_torch_thread():
        local = ChunkEncoder(model=model)
        if images is not None:
            it = (_local_arrays(items, local, cfg.chunk) if c is None else
                  _dask_arrays(c, items, ChunkEncoder(out.resolve()), cfg.chunk))
            for i, res in enumerate(it):
                yield names[i * cfg.chunk:(i + 1) * cfg.chunk], [], res
            return
        policy = model.config.policy_str
        it = (map_chunks(Prefetcher(items, policy), local, _is_decoded, cfg.chunk) if c is None else
              dask_chunks(c, items, policy, _is_decoded, ChunkEncoder(out.resolve()), cfg.chunk))
        for loaded, kept, res in it:
            for r in loaded:
                if not r.ok:
                    warn_skipped(r)
            yield [str(r.path) for r in kept], [{"path": str(r.path), "error": r.error} for r in loaded if not r.ok], res


# ------------------------------------------------------------------------------ query, leakage
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
    if Path(out).suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"{out}: output must end in .csv or .json")
    index = HashIndex.load(index_dir)
    files = scan_nonempty(paths)
    rows = []
    with one_torch_thread():
        chunks = map_chunks(Prefetcher(files, index.model.config.policy_str), ChunkEncoder(model=index.model),
                            _is_decoded, 256)
        for loaded, kept, res in bar(chunks, desc="querying", enabled=progress):
            rows += [{"query": str(r.path), "rank": None, "error": r.error} for r in loaded if not r.ok]
            if res is None:
                continue
            idx, dist = index.search(res, k, modality)
            ps = psnr(np.repeat(res["thumbs"], idx.shape[1], 0), index.thumbs.take(idx.ravel())).reshape(idx.shape)
            for i, r in enumerate(kept):
                for rank, (j, d, p) in enumerate(zip(idx[i], dist[i], ps[i]), 1):
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

    def images(src, desc):
        return source_images(src, config.size if is_builtin(src) else None, config.policy_str, progress, desc)

    tr, te = images(train, "loading train"), images(test, "loading test")
    a, b = np.stack(tr.images), np.stack(te.images)
    model = HashModel.train(np.concatenate([a, b]), config, progress)
    with one_torch_thread():
        qa, qb = modality_words(model.codes(a), modality), modality_words(model.codes(b), modality)
    if max_distance is None:
        max_distance = config.bits * (2 if modality == "both" else 1) // 4
    rows = [{"test": None, "train": x["path"], "error": x["error"]} for x in tr.skipped]
    rows += [{"test": x["path"], "train": None, "error": x["error"]} for x in te.skipped]
    n_dup = 0
    for s in range(0, len(qb), 1024):
        idx, dist = knn_scan(qb[s:s + 1024], qa, k)
        ii, jj = np.nonzero(dist <= max_distance)
        if not len(ii):
            continue
        ps = psnr(b[s + ii], a[idx[ii, jj]])
        for i, j, p in zip(ii, jj, ps):
            dup = bool(p >= min_psnr)
            n_dup += dup
            rows.append({"test": te.names[s + i], "train": tr.names[idx[i, j]], "hamming": int(dist[i, j]),
                         "psnr_db": _round(p), "duplicate": dup, "error": None})
    summary = {"n_train": len(tr.names), "n_test": len(te.names),
               "n_candidates": sum(r.get("error") is None for r in rows),
               "n_duplicates": n_dup, "n_unreadable": len(tr.skipped) + len(te.skipped),
               "test_with_duplicate": len({r["test"] for r in rows if r.get("duplicate")})}
    _write_rows(out, rows, ["test", "train", "hamming", "psnr_db", "duplicate", "error"],
                {"train": str(train), "test": str(test), "modality": modality, "max_distance": max_distance,
                 "k": k, "min_psnr": min_psnr, "config": config.to_dict(), "summary": summary})
    return summary


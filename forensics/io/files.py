"""Atomic output files and the ``config.json`` written beside every result."""
from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import platform
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


def printable(text: str) -> str:
    """``text`` as valid Unicode: a file name that is not valid UTF-8 (decoded by Python with
    surrogate escapes) gets its undecodable bytes written as ``\\xNN`` escapes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _fail(e: OSError, path, what: str) -> OSError:
    """``e`` again, naming ``path`` and what was being done (for the one-line CLI error)."""
    return type(e)(e.errno, f"{what} ({e.strerror or e})", printable(str(path)))


def check_output(path, kind: str = "file") -> Path:
    """Fail early, before any work, when ``path`` cannot receive an output ``kind`` (``file``
    or ``dir``): it is a folder where a file is wanted (or the reverse), a device or pipe, a
    parent is a file, or the folder is read-only or not writable. Creates the folder(s)
    that the output needs; returns ``path``."""
    path = Path(path)
    folder = path if kind == "dir" else path.parent
    if os.path.lexists(path):
        if kind == "dir" and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", printable(str(path)))
        if kind == "file":
            if path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", printable(str(path)))
            if not path.is_file():
                raise OSError(errno.EINVAL, "exists and is not a regular file (a device, pipe or broken link)",
                              printable(str(path)))
    anc = folder
    while not os.path.lexists(anc) and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder", printable(str(anc)))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".forensics-probe.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise _fail(e, folder, "cannot write in this folder") from None
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.
    A failure (disk full, read-only folder) leaves the previous ``path`` intact and raises
    an ``OSError`` naming ``path``."""
    return atomic_write_stream(path, [data])


def atomic_write_stream(path: str | os.PathLike, chunks: Iterable[bytes]) -> Path:
    """:func:`atomic_write_bytes` for content produced piece by piece (never held whole)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(path) and not path.is_file():
            raise OSError(errno.EINVAL, "exists and is not a regular file")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _fail(e, path, "cannot write") from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would make outputs private
        with os.fdopen(fd, "wb") as f:
            for data in chunks:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise _fail(e, path, "cannot write") from None
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, printable(text).encode("utf-8"))


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "__str__"):
        return str(o)
    raise TypeError(type(o))


def strict(obj):
    """``obj`` made strict-JSON-ready: NaN and infinite floats (Python or NumPy, also inside
    arrays) become ``None`` (JSON ``null``), NumPy scalars and arrays Python numbers and lists,
    tuples lists, paths text. JSON has no NaN: ``json.dumps`` would write the non-standard
    ``NaN`` token that strict parsers (browsers, ``jq``, most languages) refuse."""
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return strict(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def dumps(obj, **kw) -> str:
    """Strict JSON text of ``obj`` (:func:`strict`; ``NaN`` is never written)."""
    return json.dumps(strict(obj), default=_jsonable, allow_nan=False, **kw)


def write_json(path, obj) -> Path:
    """``obj`` as strict JSON (NaN and infinities as ``null``), written atomically."""
    return atomic_write_text(path, dumps(obj, indent=2) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_csv(path, rows: Iterable[Mapping], columns: Sequence[str]) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(csv_cells(r, columns))
    return atomic_write_text(path, buf.getvalue())


def csv_cells(row: Mapping, columns: Sequence[str]) -> dict:
    """One CSV row's cells: ``None`` as empty, text made :func:`printable`."""
    return {k: "" if row.get(k) is None else printable(row[k]) if isinstance(row.get(k), str) else row.get(k)
            for k in columns}


def write_npz(path, **arrays) -> Path:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def read_npz(path, finite: bool = False) -> dict:
    """Load an ``.npz`` of plain arrays; object arrays (pickles) are refused. ``finite``: an array of
    numbers holding NaN or an infinity is refused too (a model's arrays: one would silently turn every
    score into NaN or a constant), naming the array."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if finite:
        for k, a in arrays.items():
            if np.issubdtype(a.dtype, np.inexact) and not np.isfinite(a).all():
                from forensics.core.errors import UserError

                raise UserError(f"{path}: array {k!r} holds non-finite values (NaN or infinity); the file is "
                                "damaged")
    return arrays


def cached_arrays(f, key: str, compute) -> tuple[dict[str, np.ndarray], bool]:
    """``compute()``'s named arrays (a dict), cached in the ``.npz`` file ``f`` under the stage key
    ``key``, and whether they came from the cache: a file with another key (stale) or one that
    cannot be read (damaged) is recomputed and replaced. The one cache of computed features (spectral
    features of a study, Inception features of a folder, a study or a run's real images)."""
    f = Path(f)
    if f.is_file():
        try:
            z = read_npz(f)
            if str(z.pop("key")) == key:
                return z, True
        except (OSError, ValueError, KeyError):
            pass  # unreadable or damaged cache: recompute
    arrays = compute()
    write_npz(f, **arrays, key=np.array(key))
    return arrays, False


def cached_array(f, key: str, compute) -> np.ndarray:
    """:func:`cached_arrays` of one array (stored as ``X``): ``compute()`` returns it."""
    return cached_arrays(f, key, lambda: {"X": compute()})[0]["X"]


def versions() -> dict:
    """Library versions recorded in every config.json."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    # (the toolkit's distribution is fourier-forensics; 0.2 looked up "forensics" and never found it)
    for key, pkg in (("forensics", "fourier-forensics"), ("numpy", "numpy"), ("scipy", "scipy"),
                     ("scikit-learn", "scikit-learn"), ("torch", "torch"),
                     ("opencv-python-headless", "opencv-python-headless"), ("pillow", "pillow")):
        try:
            out[key] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def write_config(folder, config: Mapping, name: str = "config.json") -> Path:
    """``folder/config.json`` with the given settings plus library versions."""
    return write_json(Path(folder) / name, {**config, "versions": versions()})


class RowLog:
    """Rows of a scan streamed to ``OUT.partial`` (JSON lines, flushed and synced after each
    batch, in order), turned into the final ``OUT`` (``.csv`` or ``.json``) atomically by
    :meth:`finish`. An interrupted scan leaves the partial file; with ``resume`` its rows are
    kept (a torn last line is dropped) -- or, when the scan had finished, the rows of ``OUT``
    itself -- and :meth:`done` says which paths need no scoring again. ``header`` (the
    settings the rows depend on) must match the one the partial file was started with."""

    KIND = "forensics-scan-rows"

    def __init__(self, out, header: Mapping, resume: bool = False, key: str = "path"):
        self.out = Path(out)
        self.partial = self.out.with_name(self.out.name + ".partial")
        self.header = {"format": self.KIND, **header}
        self.key = key
        self.keys: set[str] = set()  # paths of the rows, kept only when resuming (memory)
        self.track = resume
        self.n_rows = 0
        self.n_before = 0
        self.counts: dict = {}
        old: list[dict] | None = None
        if not resume and os.path.lexists(self.partial):
            raise FileExistsError(errno.EEXIST, "holds an interrupted scan: resume it, or delete it to start over",
                                  printable(str(self.partial)))
        if resume and self.partial.is_file():
            old = self._read_partial()
        elif resume and self.out.is_file():
            old = self._read_final()
        try:
            self._f = open(self.partial, "w", encoding="utf-8")
            self._f.write(dumps(self.header) + "\n")
            for r in old or ():
                self._f.write(dumps(r) + "\n")
                self._note(r)
            self._sync()
        except OSError as e:
            raise _fail(e, self.partial, "cannot write") from None
        self.n_before = self.n_rows

    def _note(self, r):
        self.n_rows += 1
        if self.track:
            self.keys.add(printable(str(r.get(self.key))))
        lab = r.get("label")
        self.counts[lab] = self.counts.get(lab, 0) + 1

    def _read_partial(self) -> list[dict]:
        with open(self.partial, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().split("\n")
        try:
            head = json.loads(lines[0])
        except ValueError:
            raise ValueError(f"{self.partial}: not a partial scan of this toolkit (bad first line)") from None
        if head != json.loads(dumps(self.header)):
            diff = sorted(k for k in set(head) | set(self.header) if head.get(k) != self.header.get(k))
            raise ValueError(f"{self.partial}: started with other settings ({', '.join(diff)} differ); "
                             "remove it or use the same settings")
        rows = []
        for ln in lines[1:]:
            try:
                r = json.loads(ln)
            except ValueError:
                break  # the torn line of a killed run: it and anything after are redone
            if isinstance(r, dict):
                rows.append(r)
        return rows

    def _read_final(self) -> list[dict]:
        try:
            if self.out.suffix.lower() == ".json":
                rows = read_json(self.out).get("rows")
            else:
                with open(self.out, encoding="utf-8", newline="") as f:
                    rows = list(csv.DictReader(f))
        except (OSError, ValueError, AttributeError) as e:
            raise ValueError(f"{self.out}: cannot resume from it ({e})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{self.out}: cannot resume from it (no list of rows)")
        return rows

    def _sync(self):
        self._f.flush()
        os.fsync(self._f.fileno())

    def done(self, path) -> bool:
        return printable(str(path)) in self.keys

    def append(self, rows: Iterable[Mapping]) -> None:
        try:
            for r in rows:
                self._f.write(dumps(r) + "\n")
                self._note(r)
            self._sync()
        except OSError as e:
            raise type(e)(e.errno, f"cannot write ({e.strerror}); the {self.n_rows} rows so far are kept "
                                   "there, resume the scan to continue", printable(str(self.partial))) from None

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._f.close()
            except OSError:  # a flush that failed again (disk full): the append that failed reports it;
                pass         # rows up to the last synced one stay in the partial file

    def discard(self) -> None:
        """Remove the partial file (a scan that wrote no row)."""
        self.close()
        try:
            os.unlink(self.partial)
        except OSError:
            pass

    def rows(self) -> Iterator[dict]:
        """The rows written so far, read back from the partial file (streamed)."""
        with open(self.partial, encoding="utf-8", errors="surrogateescape") as f:
            next(f)
            for ln in f:
                yield json.loads(ln)

    def finish(self, columns: Sequence[str], meta: Mapping | None = None) -> Path:
        """Write ``OUT`` from the partial file (CSV with ``columns``, or JSON ``{**meta, "rows": [...]}``)
        and remove the partial file."""
        self.close()
        if self.out.suffix.lower() == ".json":
            def chunks():
                head = dumps({**(meta or {}), "rows": []}, indent=2)
                yield head[:head.rindex("[") + 1].encode()
                for i, r in enumerate(self.rows()):
                    r = {k: printable(v) if isinstance(v, str) else v for k, v in r.items()}
                    yield (("," if i else "") + "\n    " + dumps(r)).encode()
                yield b"\n  ]\n}\n"
        else:
            def chunks():
                buf = io.StringIO()
                w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
                w.writeheader()
                for i, r in enumerate(self.rows()):
                    w.writerow(csv_cells(r, columns))
                    if i % 4096 == 4095:
                        yield buf.getvalue().encode("utf-8")
                        buf.seek(0)
                        buf.truncate()
                yield buf.getvalue().encode("utf-8")
        atomic_write_stream(self.out, chunks())
        os.unlink(self.partial)
        return self.out

"""Atomic output files and the ``config.json`` written beside every result."""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

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
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(path) and not path.is_file() and not path.is_symlink():
            raise OSError(errno.EINVAL, "exists and is not a regular file")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _fail(e, path, "cannot write") from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would make outputs private
        with os.fdopen(fd, "wb") as f:
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


def write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable, allow_nan=True) + "\n")


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


def read_npz(path) -> dict:
    """Load an ``.npz`` of plain arrays; object arrays (pickles) are refused."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def versions() -> dict:
    """Library versions recorded in every config.json."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("forensics", "numpy", "scipy", "scikit-learn", "torch", "opencv-python-headless", "pillow"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def write_config(folder, config: Mapping, name: str = "config.json") -> Path:
    """``folder/config.json`` with the given settings plus library versions."""
    return write_json(Path(folder) / name, {**config, "versions": versions()})

"""A labelled image corpus on disk: the image files and ``manifest.csv``, one row per image.

The one format in which the toolkit's training and held-out sets travel (the corpus builder writes
it, the generalization protocol and the default model's build read it, users can write one by
hand for their own folders). Columns:

``path``
    the file, relative to the corpus folder (never absolute, never leaving the folder);
``label``
    0 = real, 1 = generated;
``family``
    the generator family the image comes from (``real`` for real images), e.g. ``gan-dcgan``,
    ``up-N``, ``ae-kl``, ``ldm``, ``external-gan-face``: the unit a leave-one-family-out split holds out;
``group``
    the real photograph an image derives from (a real image's own photo; a reconstruction's or a
    resampling chain's source photo; ``-`` for images made from noise): held out together, so no
    test image shares its content with a training one;
``processing``
    what was done to the image after it was made, e.g. ``none``, ``jpeg85``, ``resize0.5``
    (the same augmentation is drawn for both classes).
"""
from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path, PurePosixPath

from forensics.core.errors import UserError
from forensics.io.files import atomic_write_text

MANIFEST = "manifest.csv"
COLUMNS = ("path", "label", "family", "group", "processing")
REAL = "real"


@dataclasses.dataclass(frozen=True)
class Entry:
    path: str
    label: int
    family: str
    group: str = "-"
    processing: str = "none"

    def __post_init__(self):
        p = PurePosixPath(self.path)
        if not self.path or p.is_absolute() or ".." in p.parts:
            raise ValueError(f"corpus path {self.path!r} must be relative and inside the corpus folder")
        if self.label not in (0, 1):
            raise ValueError(f"{self.path}: label must be 0 (real) or 1 (generated), got {self.label!r}")
        if (self.label == 0) != (self.family == REAL):
            raise ValueError(f"{self.path}: family {self.family!r} does not fit label {self.label} "
                             f"(real images, and only they, have family {REAL!r})")
        for k in ("family", "group", "processing"):
            v = getattr(self, k)
            if not v or any(c in v for c in ",\n\r"):
                raise ValueError(f"{self.path}: {k} {v!r} must be non-empty, without commas or line breaks")


@dataclasses.dataclass(frozen=True)
class Corpus:
    """The entries of a corpus folder (see module)."""

    folder: Path
    entries: tuple[Entry, ...]

    def __len__(self) -> int:
        return len(self.entries)

    def file(self, e: Entry) -> Path:
        return self.folder / e.path

    def families(self) -> list[str]:
        """The generated families, in order of first appearance (``real`` not among them)."""
        return list(dict.fromkeys(e.family for e in self.entries if e.label == 1))

    def select(self, keep) -> Corpus:
        """The corpus of the entries for which ``keep(entry)`` is true."""
        return Corpus(self.folder, tuple(e for e in self.entries if keep(e)))


def write_manifest(folder, entries) -> Path:
    """Write ``folder/manifest.csv`` atomically (the images must already be there)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for e in entries:
        w.writerow([e.path, e.label, e.family, e.group, e.processing])
    return atomic_write_text(Path(folder) / MANIFEST, buf.getvalue())


def read_manifest(folder) -> Corpus:
    """The corpus in ``folder``; a missing or malformed manifest is one :class:`UserError` line naming
    the file and row. Image files are not opened here (a missing one is an error row where it is read)."""
    folder = Path(folder)
    mf = folder / MANIFEST
    try:
        text = mf.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{folder}: not a corpus folder (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{mf}: unreadable ({e})") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != COLUMNS:
        raise UserError(f"{mf}: the header must be {','.join(COLUMNS)}")
    entries, first = [], {}
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(COLUMNS):
            raise UserError(f"{mf}: row {i} has {len(row)} cells, expected {len(COLUMNS)}")
        if row[0] in first:  # one file twice could be trained on as one class and tested as the other
            raise UserError(f"{mf}: row {i} repeats the path {row[0]!r} of row {first[row[0]]}")
        first[row[0]] = i
        try:
            label = int(row[1]) if row[1] in ("0", "1") else row[1]
            entries.append(Entry(row[0], label, row[2], row[3], row[4]))
        except ValueError as e:
            raise UserError(f"{mf}: row {i}: {e}") from None
    return Corpus(folder, tuple(entries))

"""Real-image sources: the built-in patch set, user folders, CelebA, IDX and ``.npz`` files.

Every source comes back as a :class:`ImageSet` of uint8 RGB images of one size plus a
*manifest* saying exactly how they were made (source, policy, seed, files), which
experiments and training runs store beside their results. Nothing is ever downloaded.

Source strings (``--real`` / ``--data``):

``builtin``
    patches of the photographs shipped in ``data/real/`` (see ``data/real/SOURCES.md``).
``builtin-wide``
    the same plus the extra photographs (``"set": "extra"``, data/build_real_extra.py).
``builtin-all``
    the same plus the wild photographs: 512-px crops of 41 more photos at their own resolution
    (``"set": "wild"``, data/build_real_wild.py).
a folder
    every image below it (recursive); a folder holding ``img_align_celeba/`` is read as
    CelebA (attributes from ``list_attr_celeba.txt``, official train split when
    ``list_eval_partition.txt`` is present).
``*.npz``
    an array ``images`` (or the file's only array) of shape ``(N, H, W[, C])``, uint8 or
    float in [0, 1].
IDX files (``*-ubyte``, ``*.idx``, optionally ``.gz``)
    e.g. Fashion-MNIST from Debian's ``dataset-fashion-mnist``.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from forensics.core.errors import UserError
from forensics.io.images import Policy, decode, load_folder, scan_nonempty


def data_dir() -> Path:
    """The toolkit's ``data/`` folder (``FORENSICS_DATA`` overrides it)."""
    env = os.environ.get("FORENSICS_DATA")
    if env:
        return Path(env)
    # the package data folder forensics/builtin/, found by its place beside this package (not imported:
    # forensics.builtin also holds the scripts that build the default models, the top of the layers);
    # in the checkout forensics/builtin is a link to data/
    cand = (Path(__file__).resolve().parents[1] / "builtin").resolve()
    if (cand / "real" / "sources.json").is_file():
        return cand
    raise FileNotFoundError(f"the toolkit's built-in data was not found in {cand}: reinstall the package, "
                            "or set FORENSICS_DATA to a copy of its data/ folder")


@dataclass
class ImageSet:
    """Images ``(N, S, S, 3)`` uint8, their names, optional attributes, and the manifest."""

    images: np.ndarray
    names: list[str]
    manifest: dict
    attrs: np.ndarray | None = None  # (N, A) in {0, 1}
    attr_names: list[str] = field(default_factory=list)

    def __len__(self):
        return len(self.images)


# ------------------------------------------------------------------------------ built-in
#: real-source strings for the built-in photographs -> the sets of sources.json they hold
BUILTIN_SETS = {"builtin": ("core",), "builtin-wide": ("core", "extra"), "builtin-all": ("core", "extra", "wild")}
BUILTIN_SOURCES = tuple(BUILTIN_SETS)


@lru_cache(maxsize=4)
def builtin_photos(extra: bool = False, wild: bool = False) -> tuple[tuple[str, np.ndarray, str], ...]:
    """``(file, RGB uint8 image, encoding)`` for every built-in photograph, checked by SHA-256:
    the 13 core photographs, plus with ``extra`` the derived crops of ``"set": "extra"`` in
    ``sources.json`` (data/build_real_extra.py), plus with ``wild`` the native-resolution crops of
    ``"set": "wild"`` (data/build_real_wild.py), in the order of ``sources.json``."""
    sets = {"core"} | ({"extra"} if extra else set()) | ({"wild"} if wild else set())
    root = data_dir() / "real"
    meta = json.loads((root / "sources.json").read_text(encoding="utf-8"))
    out = []
    for p in meta["photos"]:
        if p.get("set", "core") not in sets:
            continue
        f = root / p["file"]
        raw = f.read_bytes()
        if hashlib.sha256(raw).hexdigest() != p["sha256"]:
            raise UserError(f"{f}: contents differ from data/real/sources.json (damaged checkout?)")
        out.append((p["file"], decode(f), p["encoding"]))
    return tuple(out)


def builtin_groups(files) -> list[str]:
    """The source photograph of each built-in file: ``group`` of ``sources.json`` (a wild crop's original in
    its package), else the file itself."""
    meta = json.loads((data_dir() / "real" / "sources.json").read_text(encoding="utf-8"))
    group = {p["file"]: p.get("group", p["file"]) for p in meta["photos"]}
    return [group.get(f, f) for f in files]


def builtin_patches(size: int = 32, n: int | None = None, seed: int = 0, stride: int | None = None,
                    min_std: float = 4.0, extra: bool = False, wild: bool = False) -> ImageSet:
    """Deterministic ``size x size`` patches of the built-in photographs.

    Each photograph is area-downscaled by 1, 2 and 4 (JPEG sources by 2 and 4 only, to
    weaken their 8x8 block grid) and cut on a grid of step ``stride`` (default ``size``,
    i.e. non-overlapping); nearly flat patches (grey standard deviation below ``min_std``)
    are dropped. With ``n`` a seeded random subset of ``n`` patches is returned. ``extra`` adds
    the extra photographs (source string ``builtin-wide``), ``extra`` and ``wild`` the wild ones too
    (``builtin-all``).
    """
    import cv2

    if size < 8:
        raise UserError("patch size must be at least 8")
    stride = stride or size
    patches, names = [], []
    for fname, img, enc in builtin_photos(extra, wild):
        for scale in ((2, 4) if enc == "jpeg" else (1, 2, 4)):
            im = img if scale == 1 else cv2.resize(
                img, (img.shape[1] // scale, img.shape[0] // scale), interpolation=cv2.INTER_AREA)
            h, w = im.shape[:2]
            for y in range(0, h - size + 1, stride):
                for x in range(0, w - size + 1, stride):
                    p = im[y:y + size, x:x + size]
                    if (p.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])).std() < min_std:
                        continue
                    patches.append(p)
                    names.append(f"{fname}@1/{scale}:{y},{x}")
    if not patches:
        raise UserError(f"no built-in patches of size {size}")
    images = np.ascontiguousarray(np.stack(patches))
    idx = np.arange(len(images))
    if n is not None:
        if n > len(images):
            raise UserError(f"the built-in set has {len(images)} patches of {size}x{size}, fewer than the {n} asked")
        idx = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
    source = {(False, False): "builtin", (True, False): "builtin-wide", (True, True): "builtin-all"}.get(
        (extra, wild), "builtin+wild")
    manifest = {"source": source, "size": size, "stride": stride, "scales": "1,1/2,1/4 (JPEG: 1/2,1/4), area",
                "min_std": min_std, "n_available": len(images), "n": int(len(idx)), "seed": seed,
                "licences": "data/real/SOURCES.md"}
    return ImageSet(images[idx], [names[i] for i in idx], manifest)


def is_builtin(source) -> bool:
    """Whether ``source`` names the built-in photographs (``builtin``, ``builtin-wide``, ``builtin-all``). The
    name wins over a folder of that name in the working directory (give ``./builtin`` for the folder)."""
    return isinstance(source, str) and source in BUILTIN_SOURCES


@dataclass
class SourceImages:
    """A source's images at their own sizes (a list), their names, the group of each (the photograph
    a built-in patch or photograph comes from; None for folders) and the unreadable files skipped."""

    images: list
    names: list[str]
    groups: np.ndarray | None = None
    skipped: list[dict] = field(default_factory=list)


def source_images(source, size: int | None = None, policy=None, progress: bool = False,
                  desc: str = "loading") -> SourceImages:
    """The images of ``source`` (the one resolver of ``builtin`` / ``builtin-wide`` / ``builtin-all`` / folders for
    the verbs that take images at their own sizes): the built-in photographs whole, or with ``size``
    their patches of that side (:func:`builtin_patches`); or every readable image under a folder (or a
    list of folders) after ``policy``, each unreadable file reported and skipped. :func:`load_source`
    is the same resolver for sets of one size (GAN training, studies), with ``.npz``/IDX files too."""
    if is_builtin(source):
        extra, wild = (s in BUILTIN_SETS[source] for s in ("extra", "wild"))
        if size is None:
            photos = builtin_photos(extra, wild)
            names = [p[0] for p in photos]
            return SourceImages([p[1] for p in photos], names, np.array(builtin_groups(names)))
        ps = builtin_patches(size, extra=extra, wild=wild)
        return SourceImages(list(ps.images), ps.names, np.array(builtin_groups([n.split("@")[0] for n in ps.names])))
    good, bad = load_folder(source, policy, progress, desc)
    return SourceImages([r.image for r in good], [str(r.path) for r in good], None,
                        [{"path": str(r.path), "error": r.error} for r in bad])


# ------------------------------------------------------------------------------- IDX, npz
def read_idx(path) -> np.ndarray:
    """Images of an IDX file (the MNIST format), optionally gzip-compressed, as uint8."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise UserError(f"{path}: cannot read IDX file ({e})")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    nd = raw[3]
    if len(raw) < 4 + 4 * nd:
        raise UserError(f"{path}: truncated IDX header ({len(raw)} bytes; {nd} dimensions need {4 + 4 * nd})")
    dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(dims)) or nd != 3:
        raise UserError(f"{path}: IDX file of shape {dims} does not hold (N, H, W) images")
    return data.reshape(dims)


def _to_rgb_uint8(a: np.ndarray, where: str) -> np.ndarray:
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4 or a.shape[-1] not in (1, 3, 4):
        raise UserError(f"{where}: expected images of shape (N, H, W[, 1|3|4]), got {a.shape}")
    if len(a) == 0 or 0 in a.shape[1:3]:
        raise UserError(f"{where}: holds no images (shape {a.shape})")
    if a.dtype.kind not in "uifb":
        raise UserError(f"{where}: images must be numbers, not {a.dtype}")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        bad = a.size - int(np.isfinite(a).sum())
        if bad:
            raise UserError(f"{where}: {bad:,} of {a.size:,} values are NaN or infinite")
        lo, hi = a.min(), a.max()
        if lo >= -1.0 and hi <= 1.0 and lo < 0:
            a = (a + 1.0) / 2.0
        elif hi > 1.0:
            a = a / 255.0
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


def _apply_policy_all(images: np.ndarray, policy: Policy) -> np.ndarray:
    return np.stack([policy.apply(im) for im in images]) if policy.mode != "none" else images


# ----------------------------------------------------------------------------- attributes
def read_attributes(path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Attribute table: CelebA's ``list_attr_celeba.txt`` layout (count line, names line,
    ``file v1 v2 ...`` with -1/1) or a CSV ``filename,attr1,attr2,...`` (0/1 or -1/1).
    Returns ``{file name: (A,) 0/1 array}`` and the attribute names."""
    path = Path(path)
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except OSError as e:
        raise UserError(f"{path}: cannot read attribute file ({e})")
    if not lines:
        raise UserError(f"{path}: empty attribute file")
    if "," in lines[0]:
        header = [c.strip() for c in lines[0].split(",")]
        names, rows = header[1:], [ln.split(",") for ln in lines[1:]]
    else:
        start = 1 if lines[0].strip().isdigit() else 0
        names, rows = lines[start].split(), [ln.split() for ln in lines[start + 1:]]
    table = {}
    for r in rows:
        vals = r[1:]
        if len(vals) != len(names):
            raise UserError(f"{path}: row for {r[0]!r} has {len(vals)} values for {len(names)} attributes")
        try:
            table[r[0].strip()] = (np.array([float(v) for v in vals]) > 0).astype(np.int64)
        except ValueError:
            raise UserError(f"{path}: non-numeric attribute value in the row for {r[0]!r}")
    return table, names


# ---------------------------------------------------------------------------------- entry
def folder_files(p: Path, attributes: str | None = None):
    """Image files of a folder source: ``(root, files, kind, split, attribute file)``.

    A folder holding ``img_align_celeba/`` is CelebA: its images, restricted to the
    official train split when ``list_eval_partition.txt`` is present, and its
    ``list_attr_celeba.txt`` unless ``attributes`` names another table."""
    kind, root, split = "folder", p, None
    if (p / "img_align_celeba").is_dir():
        kind, root = "celeba", p / "img_align_celeba"
        attributes = attributes or next((str(c) for c in (p / "list_attr_celeba.txt", p / "Anno" / "list_attr_celeba.txt")
                                         if c.is_file()), None)
        part = next((c for c in (p / "list_eval_partition.txt", p / "Eval" / "list_eval_partition.txt") if c.is_file()), None)
        if part is not None:
            split = {ln.split()[0] for ln in part.read_text().splitlines() if ln.strip() and ln.split()[-1] == "0"}
    files = scan_nonempty(root)
    if split is not None:
        files = [f for f in files if f.name in split]
    return root, files, kind, split, attributes


def load_source(source: str, size: int, n: int | None = None, seed: int = 0, policy: str | None = None,
                attributes: str | None = None, select_attrs: list[str] | None = None,
                progress: bool = False) -> ImageSet:
    """Load ``n`` real images of ``size x size`` from ``source`` (see module docs).

    ``policy`` defaults to ``resize:size:area`` (centre square crop, then area resize) for
    everything except the built-in set, which is cut at ``size`` directly.
    ``attributes`` names an attribute table for folders (CelebA's is found by itself);
    ``select_attrs`` keeps only those columns, in that order.
    """
    if is_builtin(source):
        if attributes:
            raise UserError("the built-in set has no attributes")
        sets = BUILTIN_SETS[source]
        return builtin_patches(size, n, seed, extra="extra" in sets, wild="wild" in sets)
    pol = Policy.parse(policy) if policy else Policy("resize", size, "area")
    if pol.mode != "none" and pol.size != size:
        raise UserError(f"policy {pol} does not produce {size}x{size} images")
    p = Path(source)
    if not p.exists():
        raise UserError(f"{source}: no such file or folder (sources: builtin, a folder, .npz, IDX)")
    base = {"source": str(source), "size": size, "policy": str(pol), "seed": seed,
            "value_range": "uint8 0..255 (models see x / 127.5 - 1)"}
    if p.is_file():
        if p.suffix == ".npz":
            try:
                with np.load(p, allow_pickle=False) as z:
                    if not hasattr(z, "files"):
                        raise UserError(f"{p}: a .npy array, not an .npz archive")
                    key = "images" if "images" in z.files else (z.files[0] if len(z.files) == 1 else None)
                    if key is None:
                        raise UserError(f"{p}: .npz must hold an array named 'images' "
                                        f"(has {', '.join(z.files) or 'no arrays'})")
                    arr = z[key]
            except UserError:
                raise
            except Exception as e:  # BadZipFile, EOFError, pickled object arrays, ...
                raise UserError(f"{p}: cannot read .npz ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
            kind = "npz"
        elif "ubyte" in p.name or ".idx" in p.name:
            arr, kind = read_idx(p), "idx"
        else:
            raise UserError(f"{p}: a single file source must be .npz or IDX; pass a folder for image files")
        imgs = _to_rgb_uint8(arr, str(p))
        idx = np.arange(len(imgs))
        if n is not None and n < len(imgs):
            idx = np.sort(np.random.default_rng(seed).choice(len(imgs), n, replace=False))
        imgs = imgs[idx]
        if pol.mode != "none" and imgs.shape[1:3] != (size, size):
            imgs = _apply_policy_all(imgs, pol)
        elif imgs.shape[1:3] != (size, size):
            raise UserError(f"{p}: images are {imgs.shape[2]}x{imgs.shape[1]}, not {size}x{size}")
        return ImageSet(np.ascontiguousarray(imgs), [f"{p.name}[{i}]" for i in idx],
                        {**base, "kind": kind, "n_available": int(len(arr)), "n": int(len(idx))})

    root, files, kind, split, attributes = folder_files(p, attributes)
    table, attr_names = (None, [])
    if attributes:
        table, attr_names = read_attributes(attributes)
        files = [f for f in files if f.name in table]
        if not files:
            raise UserError(f"{attributes}: no image of {root} is listed in the attribute table")
    if n is not None and n < len(files):
        pick = np.sort(np.random.default_rng(seed).choice(len(files), n, replace=False))
        files = [files[i] for i in pick]
    good, bad = load_folder(source, pol, progress, desc=f"loading {p.name}", files=files)
    skipped = [{"path": str(r.path), "error": r.error} for r in bad]
    imgs = [r.image for r in good]
    if pol.mode == "none":
        from forensics.io.images import stack_same_size
        arr = stack_same_size(imgs, f"images in {source}")
        if arr.shape[1:3] != (size, size):
            raise UserError(f"{source}: images are {arr.shape[2]}x{arr.shape[1]}, not {size}x{size}")
    else:
        arr = np.stack(imgs)
    names = [str(r.path.relative_to(root)) for r in good]
    attrs = None
    if table is not None:
        attrs = np.stack([table[r.path.name] for r in good])
    if select_attrs:
        missing = [a for a in select_attrs if a not in attr_names]
        if missing:
            raise UserError(f"attributes {', '.join(missing)} not in the table ({', '.join(attr_names[:8])}...)")
        cols = [attr_names.index(a) for a in select_attrs]
        attrs, attr_names = attrs[:, cols], list(select_attrs)
    listing = names if len(names) <= 20000 else hashlib.sha256("\n".join(names).encode()).hexdigest()
    manifest = {**base, "kind": kind, "split": "train (list_eval_partition 0)" if split is not None else None,
                "attributes": str(attributes) if attributes else None, "attr_names": attr_names,
                "n": len(good), "skipped": skipped, "files": listing}
    return ImageSet(arr, names, manifest, attrs, attr_names)

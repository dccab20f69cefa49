"""Image discovery, decoding and the preprocessing policy.

Every image that enters the toolkit goes through :func:`load_image`: it is decoded with
Pillow, EXIF orientation is applied, and whatever the file holds (grey, grey+alpha, RGBA,
palette, 16-bit, CMYK, float TIFF) comes out as an ``(H, W, 3)`` uint8 RGB array. A file
that cannot be decoded never raises: the caller gets a :class:`Loaded` whose ``error`` is a
one-line reason, so one bad file never stops a scan.

Preprocessing policy (one of, recorded as its string in every output):

``none``
    native size (default).
``crop:S``
    centre crop to ``S x S``; images smaller than ``S`` on a side are an error.
``resize:S[:FILTER]``
    centre crop to the largest square, then resize to ``S x S`` with ``FILTER`` (one of
    ``area`` (default), ``bilinear``, ``bicubic``, ``lanczos``, ``nearest``; OpenCV
    filters, so ``bilinear`` does *not* anti-alias when shrinking).

The filter matters for forensics: it sets how fast the spectrum of a resized real image
decays at high frequencies, so real and generated images must go through the same policy.
"""
from __future__ import annotations

import errno
import io
import os
import stat
import sys
import threading
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from forensics.core.errors import UserError
from forensics.io.files import atomic_write_bytes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: Default guard against decompression bombs (pixels, read from the header before decoding).
MAX_PIXELS = 100_000_000
#: Largest side a policy may ask for (a resize target is allocated whatever the input).
MAX_POLICY_SIZE = 16384

# Pillow warns about images over its own pixel limit; we check ours (above) ourselves. One
# filter for that warning alone, set once: ``warnings.catch_warnings`` in the decoding
# threads would race on the process-wide filter list (and once left "ignore everything"
# installed behind it).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning, module=r"PIL\.Image")
# Decoders warn about damaged metadata (EXIF, TIFF tags, palettes) while still decoding the
# pixels; a file whose pixels fail gets a row with the reason, so the raw warnings (one per
# file, thousands in a scan) are not shown. Filters only for warnings raised in Pillow or here.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL(\.|$)")
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"forensics\.images$")

_FILTERS = {"nearest": 0, "bilinear": 1, "bicubic": 2, "area": 3, "lanczos": 4}  # cv2 INTER_*
#: PIL filters (PIL widens its kernel when downscaling: antialiased); "pil-bilinear" is what
#: torchvision's ``Resize`` does to a PIL image, i.e. the CelebA pipeline of Chandrasegaran et al.
_PIL_FILTERS = {"pil-bilinear": 2, "pil-bicubic": 3, "pil-lanczos": 1}  # PIL.Image.Resampling
_FILTERS.update(_PIL_FILTERS)


def _walk(root: Path) -> Iterator[Path]:
    """Image entries below folder ``root``, without recursion (any depth) and without
    following a symbolic link to a folder twice (loops end). Entries that are not regular
    files (broken or looping links, pipes, devices) are yielded too, so that they get a row
    with their reason (:func:`entry_problem`); so is a folder that cannot be searched."""
    seen_dirs: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            st = d.stat()
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                continue
            seen_dirs.add(key)
            with os.scandir(d) as it:
                entries = list(it)
        except OSError:
            if d != root:
                yield d  # a folder that cannot be searched: a row saying so
                continue
            raise
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                is_dir = e.is_dir()  # follows links; False for a broken link or a loop
            except OSError:
                is_dir = False
            if is_dir:
                if e.is_symlink():  # a link to a folder that holds this one would loop
                    target, here = os.path.realpath(e.path), os.path.realpath(d)
                    if here == target or here.startswith(target.rstrip(os.sep) + os.sep):
                        continue
                stack.append(Path(e.path))
            elif os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS:
                yield Path(e.path)


def scan(paths: Sequence[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """All image files under ``paths`` (files or folders, searched recursively).

    The result is sorted within each given path and de-duplicated, so a scan is
    deterministic. Entries with an image extension that are not readable regular files
    (broken links, link loops, pipes, devices, unsearchable folders) are included: loading
    them gives a row with the precise reason. A path that does not exist raises
    :class:`UserError`; a folder that cannot be searched raises ``PermissionError``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        try:
            os.lstat(p)
        except FileNotFoundError:
            raise UserError(f"{p}: no such file or folder") from None
        except OSError:
            pass  # e.g. inside a folder that cannot be searched: its row says why
        if os.path.isdir(p):
            try:
                found = sorted(_walk(p))
            except OSError as e:
                raise PermissionError(e.errno, f"cannot search folder ({e.strerror})", str(p)) from None
        else:
            found = [p]  # a file, or an entry whose row will say what it is
        for f in found:
            if f not in seen:
                seen.add(f)
                out.append(f)
    return out


def scan_nonempty(paths) -> list[Path]:
    """:func:`scan`, raising :class:`UserError` when a given folder holds no image."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files, seen = [], set()
    for p in paths:
        found = scan(p)
        if not found:
            raise UserError(f"{p}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
        files.extend(f for f in found if not (f in seen or seen.add(f)))
    return files


@dataclass(frozen=True)
class Policy:
    """A preprocessing policy; ``str(policy)`` is its canonical, parseable spelling."""

    mode: str = "none"  # none | crop | resize
    size: int | None = None
    filter: str = "area"

    @classmethod
    def parse(cls, text: "str | Policy | None") -> "Policy":
        if isinstance(text, Policy):
            return text
        if text is None or text == "" or text == "none":
            return cls()
        parts = text.split(":")
        try:
            mode, size = parts[0], int(parts[1])
        except (IndexError, ValueError):
            raise UserError(f"bad preprocessing policy {text!r}: use none, crop:S or resize:S[:FILTER]")
        if mode not in ("crop", "resize") or not 8 <= size <= MAX_POLICY_SIZE:
            raise UserError(f"bad preprocessing policy {text!r}: use none, crop:S or resize:S[:FILTER] "
                            f"with 8 <= S <= {MAX_POLICY_SIZE}")
        filt = parts[2] if len(parts) > 2 else "area"
        if mode == "crop" and len(parts) > 2:
            raise UserError(f"bad preprocessing policy {text!r}: crop takes no filter")
        if filt not in _FILTERS:
            raise UserError(f"unknown resize filter {filt!r}; choose from {', '.join(_FILTERS)}")
        return cls(mode, size, filt)

    def __str__(self) -> str:
        if self.mode == "none":
            return "none"
        if self.mode == "crop":
            return f"crop:{self.size}"
        return f"resize:{self.size}:{self.filter}"

    def apply(self, img: np.ndarray) -> np.ndarray:
        """Apply the policy to one ``(H, W, 3)`` uint8 image; raises ``ValueError`` if too small."""
        if self.mode == "none":
            return img
        h, w = img.shape[:2]
        s = self.size
        if self.mode == "crop":
            if h < s or w < s:
                raise ValueError(f"image is {w}x{h}, smaller than the {s}x{s} crop")
            return center_crop(img, s, s)
        side = min(h, w)
        sq = center_crop(img, side, side)
        if side == s:
            return sq
        if self.filter in _PIL_FILTERS:
            return np.asarray(Image.fromarray(sq).resize((s, s), resample=_PIL_FILTERS[self.filter]))
        import cv2

        return np.ascontiguousarray(cv2.resize(sq, (s, s), interpolation=_FILTERS[self.filter]))


def read_gray(path) -> np.ndarray | None:
    """8-bit grey as OpenCV's ``imread(path, IMREAD_GRAYSCALE)`` reads it (for a JPEG, the
    decoder's own luma; what Durall et al.'s code used); None if OpenCV cannot read the file."""
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def center_crop(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """The central ``h x w`` window of ``img`` (top-left biased when the margin is odd)."""
    y0 = (img.shape[0] - h) // 2
    x0 = (img.shape[1] - w) // 2
    return np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w])


@dataclass
class Loaded:
    """Outcome of loading one file: an image, or an error string naming the reason."""

    path: Path
    image: np.ndarray | None = None  # (H, W, 3) uint8 after the policy
    width: int | None = None  # original size, before the policy
    height: int | None = None
    error: str | None = None
    grey: bool | None = None  # all three channels equal; set by a scan that checks it (detect's envelope)

    @property
    def ok(self) -> bool:
        return self.error is None


def _to_uint8_rgb(im: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to (H, W, 3) uint8 RGB, scaling high bit depths (not clipping)."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        bad = a.size - int(np.isfinite(a).sum())
        if bad:  # NaN or inf: no meaningful pixel value, so no meaningful spectrum
            raise ValueError(f"float image holds {bad:,} non-finite (NaN or infinite) values "
                             f"of {a.size:,}")
        if mode == "F":
            hi = 1.0 if np.nanmax(a) <= 1.0 else 255.0 if np.nanmax(a) <= 255.0 else 65535.0
        else:
            hi = 65535.0 if (mode.startswith("I;16") or np.max(a) > 255) else 255.0
        g = np.clip(np.rint(np.nan_to_num(a) * (255.0 / hi)), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        # Composite on black: the pixels, not their alpha, are what a generator produced.
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (0, 0, 0, 255))
        im = Image.alpha_composite(bg, im)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def entry_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a readable regular file (``None`` if it is one), read from the
    file system without opening it: a broken or looping link, a pipe, a device, a folder
    (one that could not be searched), an unreadable or unreachable file."""
    path = os.fspath(path)
    try:
        lst = os.lstat(path)
    except OSError as e:
        return f"cannot reach file ({e.strerror})"
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop"
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return f"broken symbolic link (target {os.readlink(path)!r} does not exist)"
        return f"cannot follow symbolic link ({e.strerror})"
    link = " (through a symbolic link)" if stat.S_ISLNK(lst.st_mode) else ""
    for test, what in _KINDS:
        if test(st.st_mode):
            if what == "a folder":
                return "folder that cannot be searched (permission denied)" if not os.access(path, os.X_OK) \
                    else "a folder, not an image file"
            return f"not a regular file: {what}{link}"
    if not os.access(path, os.R_OK):
        return "permission denied (file is not readable)"
    return None


def decode(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode one image file to ``(H, W, 3)`` uint8 RGB; raises ``ValueError`` with a reason."""
    path = Path(path)
    problem = entry_problem(path)
    if problem:
        raise ValueError(problem)
    try:  # non-blocking, so a file swapped for a pipe since the check cannot hang us
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise ValueError(f"cannot open file ({e.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size == 0:
            raise ValueError("empty file (0 bytes)")
        return _decode_open(fh, max_pixels)


def _decode_open(fh, max_pixels: int) -> np.ndarray:
    try:
        with Image.open(fh) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ValueError(
                    f"image is {w}x{h} = {w * h:,} pixels, over the {max_pixels:,}-pixel limit "
                    "(possible decompression bomb)")
            if w == 0 or h == 0:
                raise ValueError(f"image has no pixels ({w}x{h})")
            im.load()
            im = ImageOps.exif_transpose(im)
            return _to_uint8_rgb(im)
    except UnidentifiedImageError:
        raise ValueError("not a recognised image format (wrong extension or not an image)")
    except Image.DecompressionBombError:
        raise ValueError("image dimensions exceed Pillow's safety limit (possible decompression bomb)")
    except PermissionError as e:
        raise ValueError(f"cannot read file ({e.strerror})")
    except (OSError, SyntaxError, EOFError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"truncated or corrupt image data ({msg})")
    except ValueError:
        raise
    except MemoryError:
        raise ValueError("not enough memory to decode this image")
    except Exception as e:  # any other decoder failure is still one file's problem
        raise ValueError(f"cannot decode ({type(e).__name__}: {e})")


def load_image(path, policy: Policy | str | None = None, max_pixels: int = MAX_PIXELS) -> Loaded:
    """Decode ``path`` and apply ``policy``; errors come back as values, never raised."""
    policy = Policy.parse(policy)
    try:
        img = decode(path, max_pixels)
    except ValueError as e:
        return Loaded(Path(path), error=str(e))
    h, w = img.shape[:2]
    try:
        out = policy.apply(img)
    except ValueError as e:
        return Loaded(Path(path), width=w, height=h, error=str(e))
    return Loaded(Path(path), out, w, h)


#: Default read-ahead budget of decoded bytes (see :class:`Prefetcher`).
AHEAD_BYTES = 128 << 20
#: Default decoded bytes per chunk handed to the consumer (see :func:`map_chunks`).
CHUNK_BYTES = 64 << 20


class Prefetcher:
    """Decode files on a thread pool ahead of the consumer, yielding :class:`Loaded` in
    order. Decoding starts when the object is created, so the caller can do other work
    (load a model, compute features of the previous chunk) while files are decoded.

    Read-ahead is bounded by decoded bytes, not by file count: new files are queued only
    while the images decoded and not yet consumed, plus the files being decoded (counted at
    the largest image seen so far), stay under ``max_bytes`` -- and never more than
    ``ahead`` files. At least one file is always queued, so an image bigger than the
    budget still loads (alone). Memory is thus about ``max_bytes`` plus one image per
    decoding thread, whatever the number of files."""

    def __init__(self, paths: Iterable[Path], policy=None, workers: int | None = None, ahead: int = 256,
                 max_bytes: int = AHEAD_BYTES):
        self.policy = Policy.parse(policy)
        paths = list(paths)
        self.n_files = len(paths)
        self.paths = iter(paths)
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.ahead = max(1, ahead)
        self.max_bytes = max_bytes
        self.largest = 0  # bytes of the largest decoded image so far (estimate for queued ones)
        self._done_bytes = 0  # decoded and not yet handed out
        self._n_done = 0
        self.pending = deque()
        self._lock = threading.Lock()
        self.pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None
        self._fill()

    def submit(self, fn, *args) -> Future:
        """Run ``fn(*args)`` on the decoding threads, after the files queued so far (a
        consumer's work on decoded images joins the same pool instead of adding threads
        that compete with it); runs at once where there is no pool."""
        if self.pool is not None:
            return self.pool.submit(fn, *args)
        f = Future()
        try:
            f.set_result(fn(*args))
        except BaseException as e:  # handed to whoever asks for the result, as a pool would
            f.set_exception(e)
        return f

    def _load(self, p) -> Loaded:
        r = load_image(p, self.policy)
        nbytes = 0 if r.image is None else r.image.nbytes
        with self._lock:  # running totals, so the budget check is O(1) per file
            self.largest = max(self.largest, nbytes)
            self._done_bytes += nbytes
            self._n_done += 1
        return r

    def _take(self, r: Loaded) -> Loaded:
        with self._lock:
            self._done_bytes -= 0 if r.image is None else r.image.nbytes
            self._n_done -= 1
        return r

    def _queued_bytes(self) -> int:
        """Decoded bytes waiting, plus the files still decoding at the largest size seen."""
        with self._lock:
            return self._done_bytes + (len(self.pending) - self._n_done) * self.largest

    def _fill(self):
        if self.pool is None:
            return  # decoded on demand, one at a time
        while len(self.pending) < self.ahead:
            if self.pending and (self._queued_bytes() + self.largest > self.max_bytes
                                 or not self.largest and len(self.pending) >= self.workers):
                return  # over budget, or no image size known yet: one file per thread
            p = next(self.paths, None)
            if p is None:
                return
            self.pending.append(self.pool.submit(self._load, p))

    def __iter__(self) -> Iterator[Loaded]:
        return self.iterate()

    def iterate(self, close: bool = True) -> Iterator[Loaded]:
        """The loaded files in order; the pool is shut down at the end unless ``close`` is
        false (then :meth:`close` is the caller's, who may still :meth:`submit` work)."""
        try:
            if self.pool is None:
                for p in self.paths:
                    yield self._take(self._load(p))
                return
            while self.pending:
                r = self._take(self.pending.popleft().result())
                self._fill()
                yield r
                self._fill()  # the consumer may have freed memory meanwhile
        finally:
            if close:
                self.close()

    def close(self) -> None:
        """Stop decoding: queued files are dropped (safe to call more than once)."""
        if self.pool:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.pending.clear()


#: Chunks whose images reach this many bytes return freed heap memory to the system after
#: their work (see :func:`release_free_memory`).
TRIM_BYTES = 16 << 20


def release_free_memory() -> None:
    """Hand the C heap's free memory back to the system (glibc ``malloc_trim``; nothing
    elsewhere). Decoders on several threads leave large freed blocks in per-thread heaps,
    which otherwise keep a scan of large photos growing by a few images' worth."""
    global _trim
    if _trim is None:
        try:
            import ctypes

            _trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _trim = False
    if _trim:
        _trim(0)


_trim = None


def map_chunks(prefetch: Prefetcher, fn, keep, chunk: int = 128, chunk_bytes: int = CHUNK_BYTES,
               positions: bool = False):
    """Run ``fn`` on the decoded images of ``prefetch``, a chunk at a time (``chunk`` files,
    or fewer once their decoded images reach ``chunk_bytes``), on its own decoding threads
    while later files decode (so ``fn`` should not start threads of its own: wrap spectrum
    work in ``spectrum.single_threaded``). ``keep(loaded) -> bool`` picks the images ``fn``
    sees (it may set ``loaded.error``). Yields ``(loaded, kept, fn(kept images) or None)``
    per chunk, in file order. A second chunk is started while one is being processed only
    while their images together stay under ``chunk_bytes`` (small images: two chunks keep
    two cores busy; photos: one at a time, so memory holds one chunk's work). With
    ``positions``, ``fn`` is called as ``fn(images, their files' positions in prefetch order)``
    (e.g. to seed a per-file perturbation). Shuts the pool down at the end."""
    loader = prefetch.iterate(close=False)
    n_read = 0
    in_flight: deque = deque()

    def done(item):
        loaded, kept, result = item
        out = loaded, kept, None if result is None else result.result()
        if held([item]) >= TRIM_BYTES:
            release_free_memory()
        return out

    def held(items) -> int:
        return sum(r.image.nbytes for loaded, _, _ in items for r in loaded if r.image is not None)

    try:
        exhausted = False
        while not exhausted:
            loaded, nbytes = [], 0
            while len(loaded) < chunk and nbytes < chunk_bytes:
                r = next(loader, None)
                if r is None:
                    exhausted = True
                    break
                loaded.append(r)
                nbytes += 0 if r.image is None else r.image.nbytes
            if loaded:
                ix = [n_read + j for j, r in enumerate(loaded) if keep(r)]
                kept = [loaded[i - n_read] for i in ix]
                n_read += len(loaded)
                while in_flight and (len(in_flight) > 1 or held(in_flight) + nbytes > chunk_bytes):
                    yield done(in_flight.popleft())  # wait for the earlier chunk first
                args = ([r.image for r in kept], ix) if positions else ([r.image for r in kept],)
                in_flight.append((loaded, kept, prefetch.submit(fn, *args) if kept else None))
            while in_flight and (in_flight[0][2] is None or in_flight[0][2].done()):
                yield done(in_flight.popleft())
        while in_flight:
            yield done(in_flight.popleft())
    finally:
        loader.close()
        prefetch.close()


def iter_loaded(paths: Iterable[Path], policy=None, workers: int | None = None) -> Iterator[Loaded]:
    """Load files in order, decoding ahead on a small thread pool (decoders release the GIL)."""
    return iter(Prefetcher(paths, policy, workers))


def output_name(path: Path, root: Path) -> Path:
    """Where an output derived from input ``path`` goes, relative to the output folder:
    its path below the input folder ``root``, or its own name when ``root`` is the file."""
    return Path(path.name) if Path(path) == Path(root) else Path(path).relative_to(root)


def warn_skipped(r: Loaded) -> None:
    """The one-line stderr notice for a file that a run skips."""
    print(f"forensics: skipped {r.path}: {r.error}", file=sys.stderr)


def load_folder(paths, policy=None, progress: bool = False, desc: str = "loading", min_good: int = 1,
                files: list[Path] | None = None, min_side: int = 1, who: str = "this run"):
    """Load every image under ``paths`` (or exactly the given ``files``): returns
    ``(good, bad)`` lists of :class:`Loaded`. Images with a side below ``min_side`` are bad
    (``who`` needs at least that). Each bad file is reported on stderr; fewer than
    ``min_good`` usable images raise :class:`UserError` naming ``paths``."""
    from forensics.core.progress import bar

    files = scan_nonempty(paths) if files is None else files
    good, bad = [], []
    for r in bar(iter_loaded(files, policy), total=len(files), desc=desc, enabled=progress):
        if r.ok and min(r.image.shape[:2]) < min_side:
            r.error = f"image is {r.image.shape[1]}x{r.image.shape[0]}; {who} needs at least {min_side}x{min_side}"
            r.image = None
        if r.ok:
            good.append(r)
        else:
            bad.append(r)
            warn_skipped(r)
    if len(good) < min_good:
        where = paths if isinstance(paths, (str, os.PathLike)) else ", ".join(map(str, paths))
        why = f" (first: {bad[0].path.name}: {bad[0].error})" if bad else ""
        raise UserError(f"{where}: none of the {len(files)} images could be used{why}" if not good else
                        f"{where}: only {len(good)} of the {len(files)} images could be used, need {min_good}{why}")
    return good, bad


def load_images(paths, policy=None, progress: bool = True) -> tuple:
    """Notebook helper: ``(images, names, errors)`` for every file under ``paths``. ``images`` is one
    ``(N, H, W, 3)`` uint8 array when all usable images share a size (use a ``policy`` such as
    ``"resize:64"`` to make them), else a list; ``errors`` holds ``{"path", "error"}`` of skipped files."""
    good, bad = load_folder(paths, policy, progress=progress, min_good=0)
    ims = [r.image for r in good]
    if len({im.shape for im in ims}) == 1:
        ims = np.stack(ims)
    return ims, [str(r.path) for r in good], [{"path": str(r.path), "error": r.error} for r in bad]


def stack_same_size(images: Sequence[np.ndarray], what: str = "images") -> np.ndarray:
    """Stack equally sized images into ``(N, H, W, 3)``; explain when the sizes differ."""
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise UserError(
            f"{what} have {len(shapes)} different sizes ({', '.join(f'{s[1]}x{s[0]}' for s in sorted(shapes)[:4])}"
            f"{', ...' if len(shapes) > 4 else ''}); use a preprocessing policy such as resize:64")
    return np.stack(images)


def png_bytes(img: np.ndarray) -> bytes:
    """Lossless PNG encoding of a uint8 RGB image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path, img: np.ndarray) -> Path:
    return atomic_write_bytes(path, png_bytes(img))


def is_greyscale(image: np.ndarray) -> bool:
    """True for an ``(H, W, 3)`` image whose three channels are identical (a decoded grey file)."""
    return bool(image.ndim == 2 or (np.array_equal(image[..., 0], image[..., 1])
                                    and np.array_equal(image[..., 1], image[..., 2])))

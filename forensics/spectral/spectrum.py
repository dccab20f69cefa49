"""The spectral features' Fourier code: grey conversion, batched spectra, azimuthal profiles,
and the spectral features every detector, plot and benchmark uses.

All functions take a batch: ``(N, H, W, 3)`` uint8 RGB, ``(N, H, W)`` grey, or a list of
such images of mixed sizes (grouped by size internally, results returned in input order).

Geometry
--------
Spectra are ``fftshift``-ed, so the DC term sits at ``(H // 2, W // 2)``. The *azimuthal
profile* bins every frequency by its radius in cycles/pixel, ``f = sqrt(fy**2 + fx**2)``
with ``fy = ky / H`` and ``fx = kx / W``, into integer bins ``k = round(f * S)`` where
``S = min(H, W)``. For a square ``N x N`` image this is the usual integer-radius ring
around the true DC (Durall et al. use floor of the distance from a point half a pixel off
DC); for non-square images the rings stay circles in frequency. Bin 0 holds DC alone,
bin ``S / 2`` is the axis Nyquist frequency (0.5 cycles/pixel) and bins beyond it, up to
``round(S / sqrt(2))``, come only from the spectrum's corners and are partial rings.

Features
--------
The published method's name is the faithful reproduction of its published code; a ``+``
marks the toolkit's variant (see :data:`FEATURE_SETS`):

``dzanic``
    Dzanic et al.'s ``generatedata.m`` (see :func:`dzanic_faithful`).
``dzanic+``
    the toolkit's variant: rings about the true DC, band against the axis Nyquist radius,
    vector-norm fit (see :func:`dzanic_fixed`).
``durall``
    Durall et al.'s CelebA notebook (see :func:`durall_faithful`).
``durall+``
    the toolkit's variant (see :func:`durall_fixed`).
"""
from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from forensics.core.parsing import threads_setting
from forensics.core.reproducible import matmul

BT601 = (0.299, 0.587, 0.114)
#: MATLAB ``rgb2gray`` coefficients (what Dzanic's script used).
MATLAB_GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


# ----------------------------------------------------------------------------- batching
#: Pixels per chunk: batches are processed in chunks of about this many pixels (16
#: images of 128 x 128), so a chunk's temporaries (1 MB of float32 grey, its spectrum)
#: stay in a core's cache. Measured on 2000 images of 128 x 128 (durall features, one
#: thread): 0.31 s at 2**18 pixels, 0.36 s at 2**20, 0.52 s at 2**22, 0.42 s at 2**16.
CHUNK_PIXELS = 1 << 18


def _groups(images) -> list[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], tuple]]:
    """Split a batch into groups of equal image size: ``(indices, take, shape)`` where
    ``take(ix)`` returns the images at ``ix`` as one array (a view of an array batch; a
    list's images are stacked only then, chunk by chunk, so no copy of the whole batch)."""
    if isinstance(images, np.ndarray):
        if images.ndim == 2:
            images = images[None]
        if images.ndim not in (3, 4):
            raise ValueError(f"expected (N, H, W[, 3]) images, got shape {images.shape}")
        arr = images

        def take_slice(ix):
            return arr[ix[0]:ix[-1] + 1]  # ix is always a contiguous run here

        return [(np.arange(len(arr)), take_slice, arr.shape[1:])]
    by: dict[tuple, list[int]] = {}
    for i, im in enumerate(images):
        by.setdefault(np.shape(im), []).append(i)

    def take_list(ix):
        return np.stack([np.asarray(images[i]) for i in ix])

    return [(np.array(ix), take_list, shape) for shape, ix in by.items()]


_local = threading.local()


def threads() -> int:
    """Worker threads for chunks: ``FORENSICS_THREADS`` (default: all cores), or the limit
    of an enclosing :func:`limit_threads` in this thread."""
    n = threads_setting() or os.cpu_count() or 1
    return min(n, getattr(_local, "limit", n))


@contextmanager
def limit_threads(n: int):
    """Run this thread's spectrum work on at most ``n`` threads inside the block (e.g. while
    other threads already keep the cores busy decoding)."""
    old = getattr(_local, "limit", None)
    _local.limit = max(1, int(n))
    try:
        yield
    finally:
        if old is None:
            del _local.limit
        else:
            _local.limit = old


def single_threaded(fn: Callable) -> Callable:
    """``fn`` with its spectrum work kept on the calling thread (for work that runs on a
    pool whose threads already fill the cores, like the image decoding pool)."""
    def run(*args, **kw):
        with limit_threads(1):
            return fn(*args, **kw)
    return run


def _per_group(images, fn: Callable[[np.ndarray], np.ndarray], chunked: bool = True) -> np.ndarray:
    """Apply ``fn`` to equal-size chunks of ``images`` and reassemble in input order.

    Chunks run on a thread pool (NumPy's FFTs and array operations release the GIL); each
    FFT is single-threaded, so the cores go to different chunks. ``chunked=False`` hands
    ``fn`` each same-size group whole (for steps that vectorise across a whole batch, like
    the decay fit, and chunk their own spectrum work)."""
    groups = _groups(images)
    n = sum(len(ix) for ix, _, _ in groups)
    if n == 0:
        raise ValueError("no images")
    tasks = []
    for ix, take, shape in groups:
        step = max(1, CHUNK_PIXELS // (shape[0] * shape[1])) if chunked else len(ix)
        tasks += [(ix[i:i + step], take) for i in range(0, len(ix), step)]
    k = min(threads(), len(tasks))
    if k > 1:
        with ThreadPoolExecutor(k) as pool:
            results = list(pool.map(lambda t: fn(t[1](t[0])), tasks))
    else:
        results = [fn(take(ix)) for ix, take in tasks]
    out = np.empty((n,) + results[0].shape[1:], dtype=results[0].dtype)
    for (ix, _), r in zip(tasks, results):
        out[ix] = r
    return out


#: bytes of the float copy of colour pixels that :func:`to_gray` converts at a time
GRAY_BLOCK_BYTES = 1 << 20


def to_gray(images: np.ndarray, weights=BT601, round_uint8: bool = False,
            dtype=np.float64) -> np.ndarray:
    """``(N, H, W, 3)`` RGB (or ``(N, H, W)`` grey) to grey ``(N, H, W)``.

    ``weights`` default to ITU-R BT.601 luma. ``round_uint8`` rounds and clips to 0..255
    as MATLAB's ``rgb2gray`` does on uint8 input.
    """
    a = np.asarray(images)
    if a.ndim == 4:
        if a.shape[-1] != 3:
            raise ValueError(f"expected 3 colour channels, got shape {a.shape}")
        # a block of rows at a time: the float copy of the colour pixels stays small (in cache,
        # and ~1 MB instead of 12 bytes per pixel of a whole photo); the product is the same
        # row-by-row matmul as on whole images, so the values do not depend on the blocking
        wt = np.asarray(weights, dtype=dtype)
        g = np.empty(a.shape[:3], dtype=dtype)
        step = max(1, GRAY_BLOCK_BYTES // max(1, a.shape[2] * 3 * np.dtype(dtype).itemsize))
        for i in range(len(a)):
            for y in range(0, a.shape[1], step):
                np.matmul(a[i, y:y + step].astype(dtype), wt, out=g[i, y:y + step])
    elif a.ndim == 3:
        g = a.astype(dtype)
    else:
        raise ValueError(f"expected (N, H, W[, 3]) images, got shape {a.shape}")
    if round_uint8:
        if a.ndim == 4 and np.dtype(dtype) != np.float64:
            r = np.rint(g)
            # values within 1e-3 of a .5 tie are redone in float64, so rounding is exact
            tie = np.abs(g - r) > 0.499
            if tie.any():
                r[tie] = np.rint(a[tie].astype(np.float64) @ np.asarray(weights, dtype=np.float64))
            g = r
        else:
            np.rint(g, out=g)  # g is this function's own array
        np.clip(g, 0, 255, out=g)
    return g


def rfft2(x: np.ndarray, norm: str | None = "ortho") -> np.ndarray:
    """2-D FFT of real ``x`` over its last two axes, non-redundant half (``W // 2 + 1``
    columns), in the input's precision (float32 gives complex64).

    A row ``rfft`` then an in-place column ``fft``: as fast as SciPy's ``rfft2`` (float32 and
    float64, 16 images of 128 x 128 on one thread: 43 vs 44 and 60 vs 65 us per image) and
    faster than ``numpy.fft.rfft2``. NumPy 2.4's float32 transforms run 4-6x slower unscaled
    than scaled, so the unnormalised float32 transform (``norm=None``) is computed with
    ``"forward"`` scaling and multiplied back (all measured)."""
    if norm in (None, "backward") and x.dtype == np.float32:
        F = rfft2(x, "forward")
        F *= x.shape[-2] * x.shape[-1]
        return F
    F = np.fft.rfft(x, axis=-1, norm=norm)
    return np.fft.fft(F, axis=-2, norm=norm, out=F)


def irfft2(F: np.ndarray, shape: tuple[int, int], norm: str | None = "ortho") -> np.ndarray:
    """Inverse of :func:`rfft2` for real images of ``shape`` ``(H, W)``."""
    return np.fft.irfft2(F, s=shape, axes=(-2, -1), norm=norm)


def fft_magnitude(gray: np.ndarray, norm: str | None = "ortho") -> np.ndarray:
    """Centred magnitude spectrum ``|fftshift(fft2(x))|`` of a ``(N, H, W)`` batch.

    ``norm="ortho"`` divides by ``sqrt(H * W)`` so magnitudes of different image sizes are
    comparable; ``None`` is the unnormalised transform (MATLAB's ``fft2``).
    """
    F = np.fft.fft2(gray, axes=(-2, -1), norm=norm)
    return np.abs(np.fft.fftshift(F, axes=(-2, -1)))


def half_magnitude(gray: np.ndarray, norm: str | None = "ortho") -> np.ndarray:
    """``|rfft2(x)|``: the non-redundant half of the (unshifted) magnitude spectrum, in the
    input's precision. The features use this; :func:`half_geometry` maps it to rings."""
    return np.abs(rfft2(gray, norm))


def spectrum(images, kind: str = "log", norm: str | None = "ortho", eps: float = 1e-8) -> np.ndarray:
    """Centred 2-D spectrum of the grey images: ``kind`` is ``magnitude`` (|F|), ``power``
    (|F|^2) or ``log`` (20*log10(|F| + eps), in dB)."""
    def one(batch):
        return _apply_kind(fft_magnitude(to_gray(batch), norm), kind, eps)
    return _per_group(images, one)


def _apply_kind(mag, kind, eps=1e-8):
    if kind == "magnitude":
        return mag
    if kind == "power":
        return mag ** 2
    if kind == "log":
        return 20.0 * np.log10(mag + eps)
    raise ValueError(f"unknown spectrum kind {kind!r}: magnitude, power or log")


# ----------------------------------------------------------------------- azimuthal profile
#: bytes of arrays each geometry cache below may hold (the latest entry is always kept): all
#: sizes of small images stay cached, while a photo's geometry (hundreds of MB at 24 MP) is not
#: kept for up to 32 photo sizes at once
GEOMETRY_CACHE_BYTES = 256 << 20


def _nbytes(v) -> int:
    """Bytes of the arrays (NumPy or torch) in a cached value."""
    if isinstance(getattr(v, "nbytes", None), int):
        return v.nbytes
    if isinstance(v, (tuple, list)):
        return sum(_nbytes(x) for x in v)
    if hasattr(v, "__dict__"):
        return sum(_nbytes(x) for x in vars(v).values())
    return 0


def geometry_cache(maxsize: int):
    """``lru_cache`` for geometry of image sizes, bounded by entries and by
    :data:`GEOMETRY_CACHE_BYTES` of held arrays (least recently used go first)."""
    from collections import OrderedDict

    def deco(fn):
        cache: OrderedDict = OrderedDict()
        lock = threading.Lock()

        @functools.wraps(fn)
        def wrapper(*args):
            with lock:
                if args in cache:
                    cache.move_to_end(args)
                    return cache[args][0]
            value = fn(*args)
            with lock:
                cache[args] = (value, _nbytes(value))
                cache.move_to_end(args)
                total = sum(n for _, n in cache.values())
                while len(cache) > 1 and (len(cache) > maxsize or total > GEOMETRY_CACHE_BYTES):
                    total -= cache.popitem(last=False)[1][1]
            return value

        def cache_clear():
            with lock:
                cache.clear()

        wrapper.cache_clear = cache_clear
        wrapper.cache_bytes = lambda: sum(n for _, n in cache.values())
        return wrapper

    return deco


@geometry_cache(maxsize=32)
def radial_index(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer radius bin of every position of a centred ``h x w`` spectrum, and bin counts."""
    s = min(h, w)
    fy = (np.arange(h) - h // 2) / h
    fx = (np.arange(w) - w // 2) / w
    r = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) * s
    idx = np.rint(r).astype(np.int64).ravel()
    counts = np.bincount(idx)
    idx.setflags(write=False)
    counts.setflags(write=False)
    return idx, counts


@geometry_cache(maxsize=32)
def half_geometry(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ring index and Hermitian weight of every ``rfft2`` position of an ``h x w`` image,
    and the ring counts of the full plane. A column with a distinct mirror weighs 2."""
    s = min(h, w)
    fy = np.fft.fftfreq(h)
    fx = np.arange(w // 2 + 1) / w
    idx = np.rint(np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) * s).astype(np.int64).ravel()
    wcol = np.full(w // 2 + 1, 2.0)
    wcol[0] = 1.0
    if w % 2 == 0:
        wcol[-1] = 1.0
    weight = np.broadcast_to(wcol, (h, w // 2 + 1)).ravel().copy()
    counts = np.bincount(idx, weights=weight)
    for a in (idx, weight, counts):
        a.setflags(write=False)
    return idx, weight, counts


class Rings:
    """Weighted means of a batch's values over bins ("rings") of positions.

    Built once per geometry from each entry's ``positions`` (into the flattened values),
    its bin and weight; a position may appear in several entries (they add up). Applying
    it is one gather in bin order and one segmented sum (``np.add.reduceat``) for the
    whole batch; or, for float32 values where the entries outnumber the positions they read
    (Durall's rings read most of the half plane twice, once for each half of the centred
    plane), one sparse product of the ``(bins, positions)`` weights (duplicates merged) with
    the batch, in float64. Empty bins (total weight 0) come out NaN.
    """

    def __init__(self, positions: np.ndarray, bins: np.ndarray, weights: np.ndarray | None, n_bins: int):
        bins = np.asarray(bins, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.int64)
        weights = np.ones(len(bins)) if weights is None else np.asarray(weights, dtype=np.float64)
        #: total weight of each bin (0: empty)
        self.total = np.bincount(bins, weights=weights, minlength=n_bins)
        order = np.argsort(bins, kind="stable")
        sb = bins[order]
        self.source = positions[order]
        self.weight = (weights / self.total[bins])[order]
        self.starts = np.flatnonzero(np.r_[True, sb[1:] != sb[:-1]])
        self.filled = sb[self.starts]  # the non-empty bins, in order
        self.n_bins = n_bins
        self.weight32 = self.weight.astype(np.float32)
        #: ``(n_bins, positions)`` CSR matrix of the weights, duplicates merged; None unless
        #: the entries outnumber the positions read (then it is faster than the gather)
        self.matrix = None
        width = int(positions.max()) + 1 if len(positions) else 0
        if len(positions) > width:
            from scipy.sparse import csr_matrix

            self.matrix = csr_matrix((self.weight, (sb, self.source)), shape=(n_bins, width))
            self.matrix.sum_duplicates()
        for a in (self.total, self.source, self.weight, self.weight32, self.starts, self.filled):
            a.setflags(write=False)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """``(N, ...)`` values (flattened per row) to ``(N, n_bins)`` float64 ring means.

        float32 values are weighted in float32 and summed in float64 (1.7x faster than
        float64 throughout; the means agree to about 1e-7 relative), or, with the sparse
        matrix, weighted and summed in float64 (2x faster than the gather for Durall's rings
        at 128 x 128)."""
        v = values.reshape(len(values), -1)
        if v.dtype == np.float32 and self.matrix is not None:
            means = self.matrix @ v[:, :self.matrix.shape[1]].T.astype(np.float64)
            means = np.ascontiguousarray(means.T)
            if len(self.filled) < self.n_bins:
                means[:, self.total == 0] = np.nan
            return means
        x = np.take(v, self.source, axis=1)
        if x.dtype == np.float32:
            x *= self.weight32
        else:
            x = x * self.weight
        means = np.add.reduceat(x, self.starts, axis=1, dtype=np.float64)
        if len(self.filled) == self.n_bins:
            return means
        out = np.full((len(v), self.n_bins), np.nan)
        out[:, self.filled] = means
        return out


@geometry_cache(maxsize=32)
def _half_rings_of(h: int, w: int) -> Rings:
    idx, weight, _ = half_geometry(h, w)
    return Rings(np.arange(len(idx)), idx, weight, int(idx.max()) + 1)


@geometry_cache(maxsize=32)
def _half_band_of(h: int, w: int, lo: int, hi: int) -> Rings:
    """The rings ``lo..hi`` of :func:`_half_rings_of` alone (the same means, bit for bit: the
    same positions, weights and order within each ring), as bins ``0..hi - lo``."""
    idx, weight, _ = half_geometry(h, w)
    pos = np.flatnonzero((idx >= lo) & (idx <= hi))
    return Rings(pos, idx[pos] - lo, weight[pos], hi - lo + 1)


def profile_frequencies(h: int, w: int) -> np.ndarray:
    """Frequency (cycles/pixel) of each azimuthal-profile bin for an ``h x w`` image."""
    return np.arange(len(radial_index(h, w)[1])) / min(h, w)


def azimuthal_average(spec: np.ndarray) -> np.ndarray:
    """Mean of each integer-radius ring of a centred ``(N, H, W)`` spectrum: ``(N, n_bins)``."""
    n, h, w = spec.shape
    return _full_rings_of(h, w)(spec)


@geometry_cache(maxsize=8)
def _full_rings_of(h: int, w: int) -> Rings:
    idx, counts = radial_index(h, w)
    return Rings(np.arange(len(idx)), idx, None, len(counts))


def _half_rings(batch: np.ndarray, transform=None, norm="ortho", rings: Rings | None = None) -> np.ndarray:
    """Azimuthal profile of ``transform(|F|)`` computed from the half-plane spectrum (float32
    grey, FFT and ``transform``; ring sums in float64), over all rings or over ``rings``."""
    h, w = batch.shape[1:3]
    mag = half_magnitude(to_gray(batch, dtype=np.float32), norm)
    if transform is not None:
        mag = transform(mag)
    return (_half_rings_of(h, w) if rings is None else rings)(mag)


def _kind_inplace(mag: np.ndarray, kind: str, eps: float = 1e-8) -> np.ndarray:
    """:func:`_apply_kind` overwriting ``mag`` (the same operations, so the same values)."""
    if kind == "magnitude":
        return mag
    if kind == "power":
        return np.square(mag, out=mag)
    if kind == "log":
        mag += eps
        np.log10(mag, out=mag)
        mag *= 20.0
        return mag
    raise ValueError(f"unknown spectrum kind {kind!r}: magnitude, power or log")


def azimuthal_profile(images, kind: str = "log", norm: str | None = "ortho") -> np.ndarray:
    """Azimuthal profile of each image's spectrum (see module docs): ``(N, n_bins)`` for
    a same-size batch; resample mixed sizes with :func:`resample_profiles`."""
    _kind_inplace(np.ones(1, np.float32), kind)  # an unknown kind fails before any work
    return _per_group(images, lambda b: _half_rings(b, lambda m: _kind_inplace(m, kind), norm))


def resample_profiles(profiles: Sequence[np.ndarray], freqs: Sequence[np.ndarray],
                      grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of profiles onto a common frequency grid (cycles/pixel)."""
    return np.stack([np.interp(grid, f, p) for p, f in zip(profiles, freqs)])


def high_frequency_gap(images, reference, top: float = 0.25) -> float:
    """How much more (positive) or less (negative) high-frequency power ``images`` have than ``reference``:
    the mean, over the top ``top`` of the azimuthal bins, of the difference of the two sets' mean log
    profiles, in dB. A blurred copy of a set is below it (< 0), a set with a transposed layer's
    high-frequency trace above it. Both sets of one size."""
    if not 0.0 < top <= 1.0:
        raise ValueError(f"top must be a fraction in (0, 1], got {top}")
    a, b = azimuthal_profile(images).mean(0), azimuthal_profile(reference).mean(0)
    if a.shape != b.shape:
        raise ValueError(f"images and reference differ in size: {a.shape[0]} and {b.shape[0]} profile bins")
    k = min(int(round(len(a) * (1.0 - top))), len(a) - 1)
    return float((a[k:] - b[k:]).mean())


# --------------------------------------------------------------------------- decay fit
def _fminsearch_1d(fun, x0: np.ndarray, tolx=1e-4, tolf=1e-4, maxiter=200, maxfev=200):
    """Nelder–Mead on N independent one-parameter problems at once.

    Follows MATLAB's ``fminsearch`` (Lagarias et al.; also SciPy's ``fmin``) step for
    step: initial simplex ``{x0, 1.05 * x0}``, reflection 1, expansion 2, contraction 0.5,
    shrink 0.5, stop when both the simplex width and the value spread are within
    tolerance. ``fun`` maps an ``(M,)`` array of parameters and the indices of the
    problems they belong to to ``(M,)`` values.
    """
    n = len(x0)
    x0 = np.asarray(x0, dtype=np.float64)
    sim = np.stack([x0, np.where(x0 != 0, 1.05 * x0, 0.00025)], axis=1)  # (n, 2)
    all_ix = np.arange(n)
    fs = np.stack([fun(sim[:, 0], all_ix), fun(sim[:, 1], all_ix)], axis=1)
    fev = np.full(n, 2)
    it = np.ones(n, dtype=int)  # MATLAB and SciPy count the initial simplex as iteration 1

    def order(ix):
        swap = fs[ix, 1] < fs[ix, 0]
        s = ix[swap]
        sim[s] = sim[s][:, ::-1]
        fs[s] = fs[s][:, ::-1]

    order(all_ix)
    active = np.ones(n, dtype=bool)
    while True:
        ix = np.flatnonzero(active)
        if ix.size == 0:
            break
        done = ((np.abs(sim[ix, 1] - sim[ix, 0]) <= tolx) & (np.abs(fs[ix, 0] - fs[ix, 1]) <= tolf)) \
            | (it[ix] >= maxiter) | (fev[ix] >= maxfev)
        active[ix[done]] = False
        ix = ix[~done]
        if ix.size == 0:
            break
        best, worst = sim[ix, 0], sim[ix, 1]
        fbest, fworst = fs[ix, 0], fs[ix, 1]
        xr = 2.0 * best - worst
        fr = fun(xr, ix)
        fev[ix] += 1
        new_x, new_f = worst.copy(), fworst.copy()
        shrink = np.zeros(ix.size, dtype=bool)

        exp_m = fr < fbest
        if exp_m.any():
            xe = 3.0 * best[exp_m] - 2.0 * worst[exp_m]
            fe = fun(xe, ix[exp_m])
            fev[ix[exp_m]] += 1
            take_e = fe < fr[exp_m]
            new_x[exp_m] = np.where(take_e, xe, xr[exp_m])
            new_f[exp_m] = np.where(take_e, fe, fr[exp_m])
        # with one parameter, "fr < second worst" is "fr < best": nothing else is accepted
        out_m = ~exp_m & (fr < fworst)
        if out_m.any():
            xc = 1.5 * best[out_m] - 0.5 * worst[out_m]
            fc = fun(xc, ix[out_m])
            fev[ix[out_m]] += 1
            ok = fc <= fr[out_m]
            new_x[out_m] = np.where(ok, xc, new_x[out_m])
            new_f[out_m] = np.where(ok, fc, new_f[out_m])
            shrink[np.flatnonzero(out_m)[~ok]] = True
        in_m = ~exp_m & ~out_m
        if in_m.any():
            xcc = 0.5 * best[in_m] + 0.5 * worst[in_m]
            fcc = fun(xcc, ix[in_m])
            fev[ix[in_m]] += 1
            ok = fcc < fworst[in_m]
            new_x[in_m] = np.where(ok, xcc, new_x[in_m])
            new_f[in_m] = np.where(ok, fcc, new_f[in_m])
            shrink[np.flatnonzero(in_m)[~ok]] = True
        if shrink.any():
            s = np.flatnonzero(shrink)
            new_x[s] = best[s] + 0.5 * (worst[s] - best[s])
            new_f[s] = fun(new_x[s], ix[s])
            fev[ix[s]] += 1
        sim[ix, 1] = new_x
        fs[ix, 1] = new_f
        it[ix] += 1
        order(ix)
    return sim[:, 0]


def fit_decay(x: np.ndarray, y: np.ndarray, b0: float = -2.0) -> np.ndarray:
    """Fit ``y ≈ y[:, 0] * (x / x[0]) ** b`` for every row of ``y`` (one ``x`` for all rows).

    The objective is the L2 norm of the residuals in linear magnitude (Dzanic et al.),
    minimised by Nelder–Mead from ``b0``; NaN entries of ``y`` are left out of the norm.
    Returns ``b`` per row (NaN where the first value is NaN).
    """
    y = np.asarray(y, dtype=np.float64)
    ratio = np.asarray(x, dtype=np.float64) / x[0]
    lr = np.log(ratio)
    b = np.full(len(y), np.nan)
    ok = ~np.isnan(y[:, 0])
    if not ok.any():
        return b
    sub = np.flatnonzero(ok)
    y = y[sub]
    yi = y[:, 0]
    valid = ~np.isnan(y)
    complete = bool(valid.all())  # no NaN (the usual case): no masking, the same values
    y0 = y if complete else np.where(valid, y, 0.0)

    def fun(bb, ix):
        pred = yi[ix, None] * np.exp(bb[:, None] * lr[None, :])
        r = pred - y0[ix] if complete else np.where(valid[ix], pred - y0[ix], 0.0)
        return np.sqrt(np.einsum("ij,ij->i", r, r))

    b[sub] = _fminsearch_1d(fun, np.full(sub.size, b0))
    return b


def half_source(h: int, w: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Flat index into the ``rfft2`` half plane ``(h, w // 2 + 1)`` of each position ``(yy, xx)``
    of the centred (``fftshift``-ed) ``h x w`` spectrum: the position itself or its Hermitian
    mirror, which has the same magnitude for a real image."""
    ky = yy - h // 2  # unshifted frequency of each position
    kx = xx - w // 2
    mirror = kx < 0
    ky = np.where(mirror, -ky, ky) % h
    return ky * (w // 2 + 1) + np.abs(kx)


# ------------------------------------------------------------------------ Dzanic (faithful)
def matlab_round(x):
    """MATLAB's ``int32(x)``/``round``: to nearest, halves away from zero."""
    x = np.asarray(x, dtype=np.float64)
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)


def _dzanic_positions(h: int, w: int, n_bins: int, keep: float):
    """The faithful geometry's kept positions: their ``rfft2`` half-plane source (flat), their
    bin, the bin centres and ``r_max`` (see :func:`_dzanic_geometry`)."""
    ny1, nx1 = int(matlab_round(h / 2)), int(matlab_round(w / 2))  # 1-based row / column centre
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.sqrt((yy + 1.0 - ny1) ** 2 + (xx + 1.0 - nx1) ** 2).ravel()
    r_max = np.sqrt(float(ny1) ** 2 + float(nx1) ** 2)
    kept = np.flatnonzero(r > keep * r_max)
    rk = r[kept]
    edges = np.linspace(rk.min(), rk.max(), n_bins + 1)
    b = np.clip(np.searchsorted(edges, rk, side="left") - 1, 0, n_bins - 1)
    centres = (edges[:-1] + edges[1:]) / 2
    return half_source(h, w, yy.ravel()[kept], xx.ravel()[kept]), b, centres, r_max


@geometry_cache(maxsize=16)
def _dzanic_geometry(h: int, w: int, n_bins: int, keep: float):
    """Faithful geometry as :class:`Rings` over the ``rfft2`` half plane: every kept position
    of the centred spectrum is read from its half-plane source (its Hermitian mirror where
    needed) into its bin. Returns the rings, bin centres and ``r_max``.

    As ``processImage``/``binSpectrum`` of ``generatedata.m``: the 1-based centre is
    ``(int32(H/2), int32(W/2))`` (rounded: one bin off DC for even sizes, the true DC for odd
    ones), ``r_max`` is computed from those rounded values, positions with ``r > keep * r_max``
    go into ``n_bins`` equal-width bins between the smallest and largest kept radius, and a
    radius on an interior edge belongs to the lower bin (the first ``j`` with
    ``edge_j <= r <= edge_j+1``)."""
    source, b, centres, r_max = _dzanic_positions(h, w, n_bins, keep)
    return Rings(source, b, None, n_bins), centres, r_max


@geometry_cache(maxsize=16)
def _dzanic_band(h: int, w: int, n_bins: int, keep: float, first: int):
    """The bins ``first..n_bins - 1`` of :func:`_dzanic_geometry` alone, read from the columns
    ``kx >= c0`` of the ``rfft2`` half plane that hold them: ``(c0, rings over the (h, w // 2 + 1
    - c0) block of those columns, bin centres)``. The band of the fit lies in the spectrum's
    corners, so at 128 x 128 it needs 23 of the 65 columns."""
    source, b, centres, _ = _dzanic_positions(h, w, n_bins, keep)
    sel = b >= first
    ky, kx = np.divmod(source[sel], w // 2 + 1)
    c0 = int(kx.min())
    return c0, Rings(ky * (w // 2 + 1 - c0) + (kx - c0), b[sel] - first, None, n_bins - first), centres


def matlab_smooth(y: np.ndarray, span: int = 5) -> np.ndarray:
    """MATLAB ``smooth(y, span)`` (moving average) along the last axis, NaN-aware.

    Windows shrink symmetrically at the ends (spans 1, 3, ..., span); NaNs inside a window
    are left out of its mean; a window of NaNs only stays NaN. One shifted slice per offset
    of the window, added in window order (the same sums as adding each window's values).
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[-1]
    half = (span - 1) // 2
    good = ~np.isnan(y)
    y0 = np.where(good, y, 0.0)
    s = np.zeros(y.shape)
    c = np.zeros(y.shape)
    for o in range(-half, half + 1):
        lo, hi = abs(o), n - abs(o)  # the positions whose (shrunk) window reaches offset o
        if lo < hi:
            s[..., lo:hi] += y0[..., lo + o:hi + o]
            c[..., lo:hi] += good[..., lo + o:hi + o]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def dzanic_faithful_profile(images, n_bins: int = 200, keep: float = 0.5):
    """Binned, smoothed high-frequency magnitude profile of Dzanic's script: returns
    ``(smoothed (N, n_bins), raw (N, n_bins) with NaN for empty bins)``. Grey is MATLAB's
    ``rgb2gray`` rounded to uint8 (a grey batch is used as it is); the spectrum is the
    unnormalised ``|fft2|`` in float64."""
    def one(batch):
        h, w = batch.shape[1:3]
        gray = to_gray(batch, MATLAB_GRAY, round_uint8=True, dtype=np.float64)
        return _dzanic_geometry(h, w, n_bins, keep)[0](half_magnitude(gray, norm=None))

    raw = _per_group(images, one)
    return matlab_smooth(raw), raw


def matrix_norm_objective(x: np.ndarray, y: np.ndarray, yi: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The objective ``getFitCoeffs``/``fitPower`` of ``generatedata.m`` really minimise.

    There ``y`` is a column (``smooth`` returns one) and ``x`` a row, so ``y - f(c, x)``
    expands to the ``n x n`` matrix ``M[i, j] = y_i - f_j`` with ``f_j = yi (x_j / x_1)^b``,
    and ``norm(M, 2)`` is its largest singular value. ``M = (y - m) 1' - 1 (f - m)'`` for
    any ``m`` has rank 2, so with ``m = mean(y)``, ``a = sum (y - m)^2``, ``q = sum (f - m)^2``
    and ``v = sum (f - mean f)^2`` its squared singular values are the eigenvalues of a 2x2
    matrix: ``sigma_max^2 = n/2 (a + q + sqrt((a + q)^2 - 4 a v))``. Rows of ``y`` (one per
    ``b``) are evaluated at once; a NaN in ``y`` gives NaN."""
    n = y.shape[1]
    f = yi[:, None] * np.exp(b[:, None] * np.log(x / x[0])[None, :])
    m = y.mean(1, keepdims=True)
    a = ((y - m) ** 2).sum(1)
    q = ((f - m) ** 2).sum(1)
    v = ((f - f.mean(1, keepdims=True)) ** 2).sum(1)
    t = a + q
    lam = 0.5 * n * (t + np.sqrt(np.maximum(t * t - 4.0 * a * v, 0.0)))
    return np.sqrt(lam)


def fit_decay_published(x: np.ndarray, y: np.ndarray, b0: float = -2.0) -> np.ndarray:
    """``fitPower`` of ``generatedata.m``: ``fminsearch`` from ``b0`` (MaxIter 200, MaxFunEvals
    99e6) of :func:`matrix_norm_objective`. Rows with a NaN anywhere have no finite objective
    in the published code (NaN or an SVD error, depending on the MATLAB version): their ``b``
    is NaN, and a :class:`RuntimeWarning` says how many."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    b = np.full(len(y), np.nan)
    ok = np.isfinite(y).all(axis=1)
    if (~ok).any():
        import warnings

        warnings.warn(f"dzanic (published fit): {int((~ok).sum())} of {len(y)} images have empty bins left in "
                      "the fit band after smoothing; the published objective is not finite there, b = NaN",
                      RuntimeWarning, stacklevel=3)
    if ok.any():
        ys = y[ok]
        b[ok] = _fminsearch_1d(_matrix_norm_objectives(x, ys), np.full(len(ys), b0), maxfev=99_000_000)
    return b


def _matrix_norm_objectives(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """:func:`matrix_norm_objective` of the rows of ``y`` as ``fun(b, rows)``, for the fit. What
    does not depend on ``b`` (``log(x / x_1)``, ``m``, ``a``) is computed once, and the sums over
    ``f = y_i e^(b log(x / x_1))`` come from the power sums ``S1 = sum e^(...)``, ``S2 = sum
    e^(2 ...)``: ``q = y_i^2 S2 - 2 m y_i S1 + n m^2``, ``v = y_i^2 (S2 - S1^2 / n)`` (one
    ``exp`` and two sums per evaluation; the same values to about 1e-14 relative)."""
    n = y.shape[1]
    lx = np.log(x / x[0])[None, :]
    yi = y[:, 0]
    m = y.mean(1)
    a = ((y - m[:, None]) ** 2).sum(1)

    def fun(b, ix):
        e = np.exp(b[:, None] * lx)
        s1 = e.sum(1)
        s2 = np.einsum("ij,ij->i", e, e)
        y1, mi, ai = yi[ix], m[ix], a[ix]
        q = y1 * y1 * s2 - 2.0 * mi * y1 * s1 + n * mi * mi
        v = y1 * y1 * np.maximum(s2 - s1 * s1 / n, 0.0)
        t = ai + q
        lam = 0.5 * n * (t + np.sqrt(np.maximum(t * t - 4.0 * ai * v, 0.0)))
        return np.sqrt(lam)

    return fun


def dzanic_faithful(images, n_bins: int = 200, keep: float = 0.5, band: float = 0.85) -> np.ndarray:
    """Dzanic et al.'s features ``[b, y_i, y_f]`` as ``generatedata.m`` computes them.

    MATLAB ``rgb2gray`` rounded to uint8; unnormalised ``|fftshift(fft2)|`` with no log;
    radii from the 1-based centre ``(int32(H/2), int32(W/2))`` (one bin off DC for even
    sizes); positions with ``r > keep * r_max`` in ``n_bins`` equal-width bins of mean
    magnitude (:func:`_dzanic_geometry`); empty bins are NaN; ``smooth(y, 5)`` NaN-aware with
    MATLAB's end windows; the band starts at bin ``int32(200 (band - 0.5) / 0.5) + 1`` (bins
    141-200 for the defaults), with ``x`` divided by the last bin centre; ``b`` minimises the
    published matrix-2-norm objective (:func:`fit_decay_published`) from -2; ``y_i``/``y_f``
    are the smoothed values at the first and last band bins.

    Where empty bins survive the smoothing inside the band (64 x 64 images, for example) the
    published objective is not finite: ``b`` is NaN there, with a warning. The toolkit's
    variant ``dzanic+`` (:func:`dzanic_fixed`) has no empty bins.

    The band lies only in the spectrum's corners (0.85 r_max is about 1.2 x the axis Nyquist
    radius): at 128 x 128 it holds about 800 positions and 17 of its 60 bins are empty.

    Only what the band reads is computed: the raw bins from two before its start (the
    smoothing window), from the columns of the half plane that hold them (:func:`_dzanic_band`:
    the row transforms, then the column transforms of 23 of the 65 columns at 128 x 128), in
    float64 as the whole profile of :func:`dzanic_faithful_profile` is, with the same values.
    """
    start = int(matlab_round(200 * (band - 0.5) / 0.5))  # literal 200 and 0.5, as published
    half = 2  # of smooth(y, 5)'s window
    first = max(0, start - half)  # the first raw bin the smoothed band reads

    def band_profile(batch):
        # the raw bins first.. alone, read from the columns of the half plane that hold them: the
        # row transforms, then the column transforms of those columns only (float64 throughout)
        h, w = batch.shape[1:3]
        c0, rings, _ = _dzanic_band(h, w, n_bins, keep, first)
        gray = to_gray(batch, MATLAB_GRAY, round_uint8=True, dtype=np.float64)
        F = np.fft.rfft(gray, axis=-1)[..., c0:]
        return rings(np.abs(np.fft.fft(F, axis=-2)))

    def one(batch):
        h, w = batch.shape[1:3]
        # smoothing from `first` on gives the same values as over all bins from `start` on: their
        # windows are whole (or `first` is 0)
        yb = matlab_smooth(_per_group(batch, band_profile))[:, start - first:]
        centres = _dzanic_band(h, w, n_bins, keep, first)[2]
        x = centres[start:] / centres.max()
        b = fit_decay_published(x, yb)
        return np.stack([b, yb[:, 0], yb[:, -1]], axis=1)

    return _per_group(images, one, chunked=False)


# --------------------------------------------------------------------------- Dzanic (fixed)
def dzanic_fixed(images, band: float = 0.5) -> np.ndarray:
    """The documented fixed variant of Dzanic's features ``[b, y_i, y_f]``.

    What changes against :func:`dzanic_faithful`: the profile is the azimuthal average of
    the ortho-normalised magnitude over integer rings around the *true* DC (this module's
    geometry), so no bin is ever empty and no smoothing is needed; the band runs from
    ``band`` × the axis Nyquist radius to the axis Nyquist radius (``S/2`` rings, where
    transposed-convolution artefacts peak) instead of the corner-only region; ``x`` is the
    ring radius divided by the Nyquist radius. The fit is the same linear-magnitude
    Nelder–Mead fit from b = -2. Works from 16 x 16 up, for any aspect ratio.
    """
    def one(batch):
        h, w = batch.shape[1:3]
        s = min(h, w)
        nyq = s // 2
        lo = max(1, int(np.ceil(band * nyq)))
        rings = _half_band_of(h, w, lo, nyq)  # only the rings of the fit
        yb = _per_group(batch, lambda b: _half_rings(b, rings=rings))
        x = np.arange(lo, nyq + 1) / nyq
        b = fit_decay(x, yb)
        return np.stack([b, yb[:, 0], yb[:, -1]], axis=1)

    return _per_group(images, one, chunked=False)


# ---------------------------------------------------------------------------------- Durall
@lru_cache(maxsize=32)
def cubic_resample_matrix(n_in: int, n_out: int, a: float = -0.5) -> np.ndarray:
    """``(n_in, n_out)`` matrix resampling a sequence onto ``n_out`` equally spaced points
    spanning the same range (first and last samples kept), by cubic convolution (Keys
    1981, a = -0.5: the kernel of bicubic image resizing), ends replicated."""
    t = np.linspace(0.0, n_in - 1.0, n_out)
    base = np.floor(t).astype(int)
    m = np.zeros((n_in, n_out))
    for k in range(-1, 3):
        d = np.abs(t - (base + k))
        wk = np.where(d <= 1, (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1,
                      np.where(d < 2, a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a, 0.0))
        np.add.at(m, (np.clip(base + k, 0, n_in - 1), np.arange(n_out)), wk)
    return m


def _ln_inplace(mag: np.ndarray) -> np.ndarray:
    """``ln(mag + 1e-8)``, overwriting ``mag`` (no temporaries)."""
    mag += 1e-8
    return np.log(mag, out=mag)


def durall_fixed(images, n_points: int = 80) -> np.ndarray:
    """The toolkit's variant of Durall et al.'s feature (``durall+``): the azimuthal average of
    ``20 ln(|F| + 1e-8)`` over integer rings around the true DC (this module's geometry, circles
    in frequency for any aspect ratio), without the DC bin and the last (partial corner) bin,
    resampled by cubic convolution (:func:`cubic_resample_matrix`) to ``n_points`` equally
    spaced frequencies, minus its first value.

    What differs from the published :func:`durall_faithful`: rings by ``rint`` of the distance
    to DC (not ``floor`` about a point half a pixel off), Keys cubic instead of a cubic spline,
    and the first value *subtracted* instead of divided by (a log-domain ratio of magnitudes:
    invariant to contrast, finite when that value nears zero; the two differ by a per-image
    factor). The spectrum is ortho-normalised, so sizes give comparable vectors.
    """
    def one(batch):
        prof = _half_rings(batch, _ln_inplace)[:, 1:-1]  # ring means of ln(|F| + 1e-8)
        v = matmul(prof, 20.0 * cubic_resample_matrix(prof.shape[1], n_points))  # the 20 is linear
        return v - v[:, :1]

    return _per_group(images, one)


def opencv_gray(images) -> np.ndarray:
    """Grey as OpenCV's ``cvtColor(RGB2GRAY)`` makes it from 8-bit RGB (and ``imread(path, 0)``
    of a PNG): OpenCV itself, on the batch stacked as one tall image. Float RGB gets the float
    weights 0.299/0.587/0.114; a grey batch is returned as float64 unchanged."""
    a = np.asarray(images)
    if a.ndim == 3:
        return a.astype(np.float64)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W[, 3]) images, got shape {a.shape}")
    if a.dtype == np.uint8:
        import cv2

        n, h, w, _ = a.shape
        g = cv2.cvtColor(np.ascontiguousarray(a).reshape(n * h, w, 3), cv2.COLOR_RGB2GRAY)
        return g.reshape(n, h, w).astype(np.float64)
    return a.astype(np.float64) @ np.asarray(BT601)


@geometry_cache(maxsize=32)
def _durall_geometry(h: int, w: int) -> Rings:
    """Rings of ``azimuthalAverage`` (``radialProfile.py``): radius ``floor(hypot(x - c, y - c))``
    about ``c = (W - 1) / 2`` for *both* axes (as published: the centre is computed from the x
    indices only, so non-square images are measured about a point off their row centre), every
    integer radius present except the smallest and the largest."""
    c = (w - 1) / 2.0
    yy, xx = np.indices((h, w))
    r = np.floor(np.hypot(xx - c, yy - c)).astype(np.int64).ravel()
    present = np.unique(r)
    inner = present[1:-1]
    lut = np.full(present.max() + 1, -1)
    lut[inner] = np.arange(len(inner))
    b = lut[r]
    pos = np.flatnonzero(b >= 0)
    # read from the rfft2 half plane: |F(-k) + 1e-8| = |F(k) + 1e-8| for a real image
    return Rings(half_source(h, w, yy.ravel()[pos], xx.ravel()[pos]), b[pos], None, len(inner))


@lru_cache(maxsize=32)
def spline_resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_in, n_out)`` matrix of the cubic spline (not-a-knot: what ``griddata(...,
    method='cubic')`` does in 1-D) through ``n_in`` equally spaced samples, read at ``n_out``
    equally spaced points over the same range. The spline is linear in the samples, so it is
    the spline of each unit vector."""
    from scipy.interpolate import make_interp_spline

    t_in = np.linspace(0.0, 1.0, n_in)
    return make_interp_spline(t_in, np.eye(n_in), k=3)(np.linspace(0.0, 1.0, n_out)).T.copy()


def durall_faithful(images, n_points: int = 80) -> np.ndarray:
    """Durall et al.'s CelebA detection feature, as their notebook computes it.

    OpenCV grey (:func:`opencv_gray`; for files, ``imread(path, 0)``:
    :func:`forensics.io.images.read_gray`); the *unnormalised* ``fftshift(fft2)``, plus 1e-8, then
    ``20 ln|.|``; ``azimuthalAverage`` (:func:`_durall_geometry`: floor rings about
    ``((W-1)/2, (W-1)/2)``, the first and last ring dropped: 88 values at 128 x 128); the cubic
    spline of those values read at ``n_points`` equally spaced points (``griddata`` cubic onto
    ``linspace(0, 80, 80)``); divided by its first value.

    The FFT and the 1e-8 are float64, as published: where the spectrum is (nearly) zero, as in
    the high frequencies of a smooth image, float32's rounding of the transform lies far above
    1e-8 and would change the feature by up to 50%. ``|F + 1e-8|`` and its log are then float32
    (the feature moves by about 1e-7 relative), the ring sums float64."""
    def one(batch):
        h, w = batch.shape[1:3]
        F = rfft2(opencv_gray(batch), norm=None)  # the half plane of the unnormalised fft2, float64
        F.real += 1e-8  # in float64, as published: where F is 0, 1e-8 is far above float32's rounding
        # |F + 1e-8| and its log in float32 from here (the log to about 1e-7, the feature to about 1e-8)
        spec = np.abs(F.astype(np.complex64))
        np.log(spec, out=spec)
        prof = 20.0 * _durall_geometry(h, w)(spec)  # the 20 is linear
        v = matmul(prof, spline_resample_matrix(prof.shape[1], n_points))
        return v / v[:, :1]

    return _per_group(images, one)


@dataclass(frozen=True)
class FeatureSet:
    """One entry of :data:`FEATURE_SETS`: a spectral feature set and how it relates to its paper."""

    name: str  #: published method's name, or the name with ``+`` for the toolkit's variant
    fn: Callable[..., np.ndarray]
    dim: int  #: values per image
    min_size: int  #: smallest image side it is defined for
    published: bool  #: True: reproduces the published code; False: the toolkit's variant
    summary: str

    def columns(self) -> list[str]:
        """Column names in ``features.csv``: ``<name>_0 .. <name>_<dim-1>``."""
        return [f"{self.name}_{i}" for i in range(self.dim)]


#: Every feature set: the published name is the faithful method, ``+`` marks the toolkit's
#: variant. Adding one is adding an entry here.
FEATURE_SETS: dict[str, FeatureSet] = {f.name: f for f in (
    FeatureSet("dzanic", dzanic_faithful, 3, 64, True,
               "Dzanic et al., generatedata.m: [b, y_i, y_f], corner band, published matrix-norm fit"),
    FeatureSet("dzanic+", dzanic_fixed, 3, 16, False,
               "toolkit variant: [b, y_i, y_f] on rings about DC, band 0.5-1.0 x axis Nyquist, vector-norm fit"),
    FeatureSet("durall", durall_faithful, 80, 16, True,
               "Durall et al., CelebA notebook: 80-point spline of the ring means of 20 ln|F|, / first value"),
    FeatureSet("durall+", durall_fixed, 80, 16, False,
               "toolkit variant: 80-point Keys resampling of ring means about DC, minus first value"),
)}

FEATURES: dict[str, Callable[..., np.ndarray]] = {k: f.fn for k, f in FEATURE_SETS.items()}

#: Smallest image side each feature set supports.
MIN_SIZE = {k: f.min_size for k, f in FEATURE_SETS.items()}

#: Bumped when a feature set's name starts meaning other numbers (2: published names = faithful
#: methods); caches of features key on it.
FEATURES_REVISION = 2

#: Names used before the published/variant naming (``dzanic`` was the variant, ``dzanic-faithful``
#: the port, ``durall`` the variant); only for reading older model files.
LEGACY_NAMES = {"dzanic": "dzanic+", "dzanic-faithful": "dzanic", "durall": "durall+"}


def feature_set(name: str) -> FeatureSet:
    try:
        return FEATURE_SETS[name]
    except KeyError:
        hint = " (dzanic-faithful is now dzanic)" if name == "dzanic-faithful" else ""
        raise ValueError(f"unknown feature set {name!r}{hint}; choose from {', '.join(FEATURE_SETS)}") from None


def features(images, name: str = "dzanic+", **kw) -> np.ndarray:
    """Feature matrix ``(N, D)`` of the named feature set (see :data:`FEATURE_SETS`)."""
    return feature_set(name).fn(images, **kw)

"""A native-resolution detector whose evidence is tied to the upsampling *operator*.

An image upsampled by ``s`` (nearest, bilinear, zero insertion, transposed conv; then filtered
by any convolution, as a generator's last layers do) has second-order statistics that are
periodic with period ``s``: the residual energy of a pixel depends on its grid phase
``(y mod s, x mod s)``. A photograph's does not, up to demosaicing (period 2) and JPEG's 8x8
block grid (period 8, a spike at the block boundary). So, per grey image:

1. **residuals** that remove the smooth content: first differences along x and y, the 2x2
   cross-difference and the second differences along x and y (``|r|``, float32);
2. **grid-phase profiles**: the mean ``|r|`` of each of the 8x8 phases ``(y mod 8, x mod 8)``
   inside each tile (one reshape-and-sum over the whole image), turned shift-invariant by the
   magnitude of its 8x8 DFT, divided by its mean (the DC term), log. The 33 distinct
   non-DC frequencies per residual hold periods 2, 4 and 8 (a x2 upsampling puts energy at
   frequency 4, a x4 at 2, 4 and 6, JPEG's grid at every frequency with the shape of a boundary
   spike, which the classifier tells apart). This is :func:`forensics.detectors.periodic.harmonic_features`
   computed on the phase profile directly, for several residuals;
3. **levels**: the log mean ``|r|`` of each residual (absolute fine-scale energy, as
   :func:`forensics.detectors.robust.level_features` keeps: a generator's output is smoother
   than a photograph's), and of the cross-difference of the image pooled by 2 and by 4 (the
   fine-to-coarse decay, which band-limited upsampling steepens).
4. **spectra** (``spectrum=True``, the default): the tile's log power spectrum as a radial profile
   (Durall's azimuthal average) and as the mean 1-D spectra of its rows and of its columns, over its
   total power (:func:`spectrum_features`; one batched ``rfft2``): periods up to the tile side, where a
   generator's earlier upsampling layers leave their peaks, and the high-frequency fall-off.

Tiles are the image's non-overlapping ``tile`` x ``tile`` cells (64 px; images with a side below
64 use 32-px tiles and a second classifier fitted on 32-px tiles): every cell of the image, all
computed by one pass of reshapes, no loop over tiles. Each tile gets a logit from standardised
features and a small classifier (one ReLU layer of 32 units; a logistic regression with
``hidden=0``, as in 0.4's first build with ``C=0.02``). An image's logit is the larger of two terms:

- **whole image**: ``sqrt(T_eff) * mean(z_t)`` over its ``T`` tiles, with ``T_eff = T / (1 + (T - 1)
  * rho)`` the effective number of independent tiles (``rho``: the intra-image correlation of
  the tile logits, estimated on the training images). A 1024-px image gives more evidence than a
  64-px crop (its logit moves away from 0 both ways), but not as much as if its tiles were
  independent;
- **local**: the largest mean logit of a ``window x window`` block of tiles (256 px by default;
  every block position, by a 2-D cumulative sum), minus an ``offset`` set on the real training
  images so that the local term exceeds a given upper quantile (``1 - offset_fpr``) of real
  images where the whole-image term does. It catches an artefact confined to one region (a
  spliced or inpainted area) that the mean dilutes.

Measured (benchmarks/bench_native.py): the local term costs nothing on whole-image fakes (the
same leave-one-method-out AUC as the mean alone) and flags a 256-px upsampled region in a
1024-px photo that the mean alone misses. The model file holds only numbers (``model.json`` +
``model.npz``).
"""
from __future__ import annotations

import dataclasses
import numbers
import warnings
from functools import lru_cache

import numpy as np
import scipy.fft

from forensics.detectors.skmodel import ImageEstimator, as_batch, register, sigmoid

#: grey weights (ITU-R BT.601 luma)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
#: the residuals, in feature order
RESIDUALS = ("dx", "dy", "cross", "dxx", "dyy")
P = 8  #: the phase period of the profiles


def _distinct_freqs() -> tuple[np.ndarray, np.ndarray]:
    """Row/column indices into an 8x5 ``rfft2`` of the distinct non-DC frequencies (the columns 0
    and 4 are conjugate-symmetric in the row index: keep rows 0..4 there)."""
    ky, kx = np.meshgrid(np.arange(P), np.arange(P // 2 + 1), indexing="ij")
    keep = ((kx > 0) & (kx < P // 2)) | (ky <= P // 2)
    keep &= ~((ky == 0) & (kx == 0))
    return ky[keep], kx[keep]


_KY, _KX = _distinct_freqs()
N_FREQ = len(_KY)  # 33
N_PHASE = 5 * N_FREQ + 5 + 2  #: the width of :func:`phase_features`


def _dft_basis() -> np.ndarray:
    """``(64, 1 + 2 * 33)`` float32: a flattened 8x8 profile times it gives its sum (the DC term),
    then the real and the imaginary parts of its DFT at the 33 distinct frequencies (one matrix
    product for every tile of an image instead of many tiny FFTs)."""
    y, x = np.meshgrid(np.arange(P), np.arange(P), indexing="ij")
    ang = -2 * np.pi * (np.outer(y.ravel(), _KY) + np.outer(x.ravel(), _KX)) / P
    return np.hstack([np.ones((P * P, 1)), np.cos(ang), np.sin(ang)]).astype(np.float32)


_BASIS = _dft_basis()


def gray(im: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 luma of an ``(H, W, 3)`` uint8 image."""
    return np.asarray(im, np.float32) @ _LUMA if im.ndim == 3 else np.asarray(im, np.float32)


def _phase_sums(g: np.ndarray, s: int) -> np.ndarray:
    """``(5, ny, nx, 8, 8)``: per residual of :data:`RESIDUALS` and per ``s x s`` tile of the grey
    image ``g`` (cropped to whole tiles), the sum of ``|r|`` over each 8x8 grid phase; a residual
    is zero where its support leaves the image (the last one or two rows/columns)."""
    H, W = g.shape
    ny, nx = H // s, W // s
    h, w = ny * s, nx * s
    g = g[:h, :w]
    R = np.zeros((5, h, w), np.float32)
    np.subtract(g[:, 1:], g[:, :-1], out=R[0, :, :-1])  # dx
    np.subtract(g[1:], g[:-1], out=R[1, :-1])  # dy
    np.subtract(R[1, :-1, 1:], R[1, :-1, :-1], out=R[2, :-1, :-1])  # cross (dx of dy)
    np.subtract(R[0, :, 1:-1], R[0, :, :-2], out=R[3, :, :-2])  # dxx
    np.subtract(R[1, 1:-1], R[1, :-2], out=R[4, :-2])  # dyy
    np.abs(R, out=R)
    S = R.reshape(5, ny, s // P, P, w).sum(axis=2)  # contiguous row blocks first: fast
    return S.reshape(5, ny, P, nx, s // P, P).sum(axis=4).transpose(0, 1, 3, 2, 4)


#: the rows/columns each residual lacks at the far edge of the image: (dy, dx) per residual
_SHORT = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0))


@lru_cache(maxsize=64)
def _count(vy: int, vx: int, s: int, ny: int, nx: int, phases: int = P) -> np.ndarray:
    """Pixels of a ``vy x vx`` valid region in each phase of each tile, ``(ny, nx, p, p)`` (>= 1)."""
    cy = (np.arange(ny * s) < vy).reshape(ny, s // phases, phases).sum(axis=1)
    cx = (np.arange(nx * s) < vx).reshape(nx, s // phases, phases).sum(axis=1)
    out = np.maximum(cy[:, None, :, None] * cx[None, :, None, :], 1).astype(np.float32)
    out.flags.writeable = False  # cached: shared by every image of this size
    return out


@lru_cache(maxsize=64)
def _counts(h: int, w: int, s: int) -> np.ndarray:
    """:func:`_count` of each residual of :data:`RESIDUALS` on an ``h x w`` grid of ``s``-px tiles."""
    out = np.stack([_count(h - a, w - b, s, h // s, w // s) for a, b in _SHORT])
    out.flags.writeable = False
    return out


def phase_features(g: np.ndarray, s: int) -> np.ndarray:
    """``(T, F)`` features of every ``s x s`` tile of the grey image ``g`` (``T = (H//s) * (W//s)``,
    tiles in raster order): per residual the 33 log DFT magnitudes of the phase profile divided by
    its mean, then per residual the log mean ``|r|``, then the log mean cross-difference of ``g``
    pooled by 2 and by 4 over the same tile (F = 5 * 33 + 5 + 2 = 172)."""
    import cv2

    H, W = g.shape
    ny, nx = H // s, W // s
    h, w = ny * s, nx * s
    S = _phase_sums(g, s)
    cnt = _counts(h, w, s)
    B = ((S / cnt).reshape(-1, P * P) @ _BASIS).reshape(5, ny, nx, -1)  # the DFT of each mean phase profile
    dc = B[..., 0]
    mag = np.hypot(B[..., 1:1 + N_FREQ], B[..., 1 + N_FREQ:])
    spec = np.log(mag + 1e-3 * dc[..., None] + 1e-6) - np.log(dc + 1e-6)[..., None]
    level = [np.log(dc / (P * P) + 1e-3)]
    g = np.ascontiguousarray(g[:h, :w])
    for f in (2, 4):  # the cross-difference of the image area-pooled by f, its mean over each tile
        t = s // f
        q = cv2.resize(g, (w // f, h // f), interpolation=cv2.INTER_AREA)
        rc = np.zeros((h // f, w // f), np.float32)
        rc[:-1, :-1] = np.abs(q[1:, 1:] - q[1:, :-1] - q[:-1, 1:] + q[:-1, :-1])
        n = _count(h // f - 1, w // f - 1, t, ny, nx, phases=1)[..., 0, 0]
        level.append(np.log(rc.reshape(ny, t, nx, t).sum(axis=(1, 3)) / n + 1e-3)[None])
    F = np.concatenate([spec.transpose(1, 2, 0, 3).reshape(ny, nx, -1),
                        np.concatenate(level).transpose(1, 2, 0)], axis=-1)
    return F.reshape(ny * nx, -1)


@lru_cache(maxsize=8)
def _spectrum_basis(s: int) -> tuple[np.ndarray, np.ndarray]:
    """(2-D Hann window ``(s, s)``, ``(s * (s//2 + 1), 3 * s//2)`` matrix) for :func:`spectrum_features`: a
    flattened ``rfft2`` power spectrum of an ``s x s`` tile times the matrix gives the mean power in each
    radial ring ``1..s/2`` (the corners in the last), then per column ``kx = 1..s/2`` (summed over ``ky``: the
    mean 1-D spectrum of the rows) and per row ``|ky| = 1..s/2`` (of the columns); the DC ring and line dropped."""
    h = np.hanning(s + 2)[1:-1].astype(np.float32)  # no zero weight at the tile's border
    ky = np.fft.fftfreq(s, 1.0 / s)[:, None]
    kx = np.arange(s // 2 + 1)[None, :]
    n = s // 2
    ring = np.minimum(np.rint(np.hypot(ky, kx)), n).astype(np.int64)
    weight = np.where((kx == 0) | (kx == n), 1.0, 2.0)  # the rfft's implicit conjugate half
    M = np.zeros((s, n + 1, 3 * n))
    for j in range(1, n + 1):  # a few dozen columns of a matrix built once per tile side
        M[..., j - 1] = weight * (ring == j)
        M[:, j, n + j - 1] = 1.0
        M[..., 2 * n + j - 1] = weight * (np.abs(ky) == j)
    M /= M.sum(axis=(0, 1), keepdims=True)
    return np.outer(h, h), M.reshape(-1, 3 * n).astype(np.float32)


def spectrum_features(g: np.ndarray, s: int) -> np.ndarray:
    """``(T, 3 * s//2)`` log power spectra of every ``s x s`` tile of the grey image ``g`` (mean removed,
    Hann-windowed; one batched ``rfft2``): the radial profile (Durall's azimuthal average) and the mean
    1-D spectra of the rows and of the columns (where an axis-aligned upsampling grid puts its peaks, at
    every period up to the tile side, not only 2, 4 and 8), each over the mean of the radial profile (the
    tile's power level)."""
    H, W = g.shape
    ny, nx = H // s, W // s
    t = g[:ny * s, :nx * s].reshape(ny, s, nx, s).transpose(0, 2, 1, 3).reshape(-1, s, s)
    win, M = _spectrum_basis(s)
    t = (t - t.mean(axis=(1, 2), keepdims=True)) * win
    f = scipy.fft.rfft2(t)  # float32 in, complex64 out (numpy's is ~3x slower here)
    pw = (f.real ** 2 + f.imag ** 2).reshape(len(t), -1)
    prof = pw @ M
    total = prof[:, : s // 2].mean(axis=1, keepdims=True)
    return np.log(prof + 1e-6 * total + 1e-12) - np.log(total + 1e-12)


def tile_features(im: np.ndarray, s: int, *, spectrum: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(features (T, F), live (T,))`` of the ``s``-px tiles of one RGB image; a tile without
    any variation (all pixels equal) is not live: it has nothing to judge."""
    g = gray(im)
    F = phase_features(g, s)
    if spectrum:
        F = np.hstack([F, spectrum_features(g, s)])
    ny, nx = g.shape[0] // s, g.shape[1] // s
    t = g[:ny * s, :nx * s].reshape(ny, s, nx, s)
    live = (t.max(axis=(1, 3)) > t.min(axis=(1, 3))).reshape(-1)
    return F, live


def icc(z: np.ndarray, owner: np.ndarray) -> float:
    """Intra-class correlation of the values ``z`` grouped by ``owner`` (one-way ANOVA estimator),
    clipped to [0.01, 1]."""
    uniq, inv, n_i = np.unique(owner, return_inverse=True, return_counts=True)
    k = len(uniq)
    N = len(z)
    if k < 2 or N <= k:
        return 1.0
    m_i = np.bincount(inv, weights=z) / n_i
    msb = (n_i * (m_i - z.mean()) ** 2).sum() / (k - 1)
    msw = ((z - m_i[inv]) ** 2).sum() / (N - k)
    n0 = (N - (n_i ** 2).sum() / N) / (k - 1)
    return float(np.clip((msb - msw) / (msb + (n0 - 1) * msw + 1e-12), 0.01, 1.0))


@dataclasses.dataclass(frozen=True)
class ImageFeatures:
    """One image's tile features: its ``(H, W)`` and, per tile side it fits, ``(features, live)`` of
    :func:`tile_features`."""

    shape: tuple[int, int]
    tiles: dict


@register
class NativeResolutionDetector(ImageEstimator):
    """See the module docstring. ``fit(X, y)``: ``X`` a list of uint8 RGB images of any sizes
    (at least ``small_tile`` px), ``y`` 1 = generated, 0 = real. Images with both sides at least
    ``tile`` feed the ``tile``-px classifier; every image feeds the ``small_tile``-px one (used for
    images with a side below ``tile``). ``max_tiles`` caps the tiles one training image gives
    each classifier (evenly spread; scoring uses every tile). ``window``: the side, in tiles, of
    the regions the local term looks at; ``pool="mean"`` switches the local term off.
    ``spectrum``: add :func:`spectrum_features` to the phase features (0.4's first build had them off).
    ``hidden``: the tile classifier is one ReLU layer of that many units (scikit-learn's
    ``MLPClassifier``, L2 ``alpha = 1 / C``, early stopping when each class has 20 tiles or more), or a
    logistic regression (inverse regularisation ``C``) when 0. The first build of 0.4 was ``spectrum=False,
    hidden=0, C=0.02``."""

    name = "native"

    def __init__(self, tile: int = 64, small_tile: int = 32, C: float = 1.0, window: int = 4,
                 pool: str = "max", offset_fpr: float = 0.05, max_tiles: int = 64, threshold: float = 0.5,
                 seed: int = 0, preprocess: str = "none", spectrum: bool = True,
                 hidden: int = 32):
        self.tile = tile
        self.small_tile = small_tile
        self.C = C
        self.window = window
        self.pool = pool
        self.offset_fpr = offset_fpr
        self.max_tiles = max_tiles
        self.threshold = threshold
        self.seed = seed
        self.preprocess = preprocess
        self.spectrum = spectrum
        self.hidden = hidden

    @property
    def min_size(self) -> int:
        return self.small_tile

    def _validate(self):
        for what, s in (("tile", self.tile), ("small_tile", self.small_tile)):
            if s < 2 * P or s % P:
                raise ValueError(f"{what} must be a multiple of {P} and at least {2 * P}, got {s}")
        if self.small_tile > self.tile:
            raise ValueError(f"small_tile ({self.small_tile}) must not exceed tile ({self.tile})")
        if not (isinstance(self.max_tiles, int) and self.max_tiles >= 1) or not self.C > 0:
            raise ValueError(f"need max_tiles >= 1 and C > 0; got {self.max_tiles}, {self.C}")
        if not isinstance(self.spectrum, bool):
            raise ValueError(f"spectrum must be true or false, got {self.spectrum!r}")
        if not (isinstance(self.hidden, numbers.Integral) and not isinstance(self.hidden, bool) and self.hidden >= 0):
            raise ValueError(f"hidden must be a whole number of units >= 0 (0: a logistic regression), got {self.hidden!r}")
        if self.window < 1 or self.pool not in ("max", "mean") or not 0 < self.offset_fpr < 1:
            raise ValueError(f"need window >= 1, pool 'max' or 'mean', 0 < offset_fpr < 1; got {self.window}, "
                             f"{self.pool!r}, {self.offset_fpr}")

    def _side(self, im) -> int | None:
        """The largest fitted tile side that fits the image (None below ``min_size``)."""
        m = min(im.shape[:2])
        fits = [s for s in getattr(self, "models_", {}) if s <= m]
        return max(fits) if fits else None

    # -- fitting ---------------------------------------------------------------------------
    def image_features(self, X) -> list[ImageFeatures]:
        """Per image, the tile features at every tile side it fits (:class:`ImageFeatures`): what
        :meth:`fit_features` and :meth:`p_generated_features` take, so a protocol that fits many models
        on one set of images (leave-one-family-out) computes them once."""
        self._validate()
        sides = tuple(dict.fromkeys((self.tile, self.small_tile)))
        return [ImageFeatures(im.shape[:2], {s: tile_features(im, s, spectrum=self.spectrum) for s in sides if s <= min(im.shape[:2])})
                for im in as_batch(X)]

    def fit(self, X, y):
        return self.fit_features(self.image_features(X), y)

    def fit_features(self, feats: list[ImageFeatures], y):
        """:meth:`fit` from :meth:`image_features` of the training images."""
        from sklearn.linear_model import LogisticRegression

        self._validate()
        y = np.asarray(y).astype(np.int64)
        if len(y) != len(feats):
            raise ValueError(f"{len(feats)} images but {len(y)} labels")
        rng = np.random.default_rng(self.seed)
        self.models_ = {}
        for s in dict.fromkeys((self.tile, self.small_tile)):
            feats_s = [(i, *f.tiles[s]) for i, f in enumerate(feats) if s in f.tiles]
            F, lab, own = [], [], []
            for i, f, live in feats_s:
                idx = np.flatnonzero(live)
                if len(idx) > self.max_tiles:
                    idx = np.sort(rng.choice(idx, self.max_tiles, replace=False))
                F.append(f[idx])
                lab.append(np.full(len(idx), y[i]))
                own.append(np.full(len(idx), i))
            lab = np.concatenate(lab) if lab else np.zeros(0)
            if len(np.unique(lab)) < 2:
                if s != self.small_tile:  # e.g. a study's 32-px patches: the small-tile classifier serves all
                    continue
                raise ValueError(f"fit needs real and generated images of at least {s}x{s}")
            F, own = np.concatenate(F).astype(np.float64), np.concatenate(own)
            mean, scale = F.mean(0), F.std(0)
            scale[scale == 0] = 1.0
            Z = (F - mean) / scale
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.hidden:
                    from sklearn.neural_network import MLPClassifier

                    # early stopping holds out a stratified 10 % of the tiles: only with enough of each class
                    stop = int(np.bincount(lab.astype(np.int64)).min()) >= 20
                    net = MLPClassifier((self.hidden,), alpha=1.0 / self.C, max_iter=200,
                                        early_stopping=stop, random_state=self.seed).fit(Z, lab)
                    cls = {"W0": net.coefs_[0], "b0": net.intercepts_[0], "W1": net.coefs_[1][:, 0],
                           "b": net.intercepts_[1].copy()}
                else:
                    lr = LogisticRegression(C=self.C, max_iter=2000).fit(Z, lab)
                    cls = {"coef": lr.coef_[0], "b": lr.intercept_.copy()}
            m = self.models_[s] = {"mean": mean, "scale": scale, **cls, "rho": np.ones(1), "offset": np.zeros(1)}
            z = self._logits(m, F)
            # the tile logits' correlation within an image, within each class (pooled)
            m["rho"] = np.array([np.mean([icc(z[lab == c], own[lab == c]) for c in (0, 1)])])
            # the local term is shifted so that, on the real training images large enough to hold a
            # region, it reaches a given upper quantile (1 - offset_fpr) where the whole-image term does
            terms = []
            for i, f, live in feats_s:
                if y[i] == 0:
                    w, loc = self.terms(self._grid(f, live, feats[i].shape, s), s)
                    if np.isfinite(loc):
                        terms.append((w, loc))
            if len(terms) >= 5:
                q = np.percentile(np.array(terms), 100 * (1 - self.offset_fpr), axis=0)
                m["offset"] = np.array([q[1] - q[0]])
            else:  # no real image holds a block: the local term never beats the whole
                m["offset"] = np.array([1e6])
        self.classes_ = np.array([0, 1])
        self.threshold_ = self.threshold
        self.n_train_ = {"images": len(feats), "generated": int(y.sum())}
        return self

    # -- scoring ---------------------------------------------------------------------------
    @staticmethod
    def _logits(m: dict, F: np.ndarray) -> np.ndarray:
        """Tile logits of the feature rows ``F`` under the fitted classifier ``m`` (linear, or one ReLU layer)."""
        if "W0" in m:
            h = np.maximum((F - m["mean"]) / m["scale"] @ m["W0"] + m["b0"], 0.0)
            return h @ m["W1"] + m["b"][0]
        w = m["coef"] / m["scale"]  # the standardisation folded into the weights
        return F @ w + (m["b"][0] - m["mean"] @ w)

    def _grid(self, F, live, shape, s) -> np.ndarray:
        """The tile logits on the image's tile grid ``(ny, nx)``, NaN where a tile is not live."""
        z = self._logits(self.models_[s], F)
        z[~live] = np.nan
        return z.reshape(shape[0] // s, shape[1] // s)

    def tile_logits(self, im) -> tuple[np.ndarray, int]:
        """The tile logits of one image on its tile grid ``(ny, nx)`` (NaN: a tile without variation)
        and the tile side used (an empty grid and 0 below ``min_size``)."""
        s = self._side(im)
        if s is None:
            return np.zeros((0, 0)), 0
        return self._grid(*tile_features(im, s, spectrum=self.spectrum), im.shape, s), s

    def terms(self, grid: np.ndarray, s: int) -> tuple[float, float]:
        """(whole-image term, local term) of a tile-logit grid: ``sqrt(T_eff)`` times the mean logit,
        and the largest mean logit of a ``window x window`` block of tiles (NaN when the grid is smaller
        than a block or has no live tile)."""
        live = np.isfinite(grid)
        T = int(live.sum())
        if not T:
            return float("nan"), float("nan")
        rho = float(self.models_[s]["rho"][0])
        whole = float(np.sqrt(T / (1.0 + (T - 1) * rho)) * grid[live].mean())
        w = self.window
        if grid.shape[0] < w or grid.shape[1] < w:
            return whole, float("nan")  # no block

        def box(a):  # sums over every w x w block, by a 2-D cumulative sum
            c = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
            c[1:, 1:] = a.cumsum(0).cumsum(1)
            return c[w:, w:] - c[:-w, w:] - c[w:, :-w] + c[:-w, :-w]

        n = box(live.astype(np.float64))
        sums = box(np.where(live, grid, 0.0))
        ok = n >= (w * w + 1) // 2
        return whole, float((sums[ok] / n[ok]).max()) if ok.any() else float("nan")

    def aggregate(self, grid: np.ndarray, s: int) -> float:
        """An image's logit from its tile-logit grid (``s``-px tiles; see the module docstring): the
        larger of the whole-image term and the local term minus its offset (``pool="max"``), or the
        whole-image term alone (``pool="mean"``, or an image too small for a block); NaN without tiles."""
        if not grid.size:
            return float("nan")
        whole, local = self.terms(grid, s)
        if self.pool == "mean" or not np.isfinite(local):
            return whole
        return max(whole, local - float(self.models_[s]["offset"][0]))

    def decision_function(self, X) -> np.ndarray:
        """The image logits (NaN for an image below ``min_size`` or without variation)."""
        return np.array([self.aggregate(*self.tile_logits(im)) for im in as_batch(X)])

    def _proba(self, X) -> np.ndarray:
        return sigmoid(self.decision_function(X))

    def p_generated_features(self, feats: list[ImageFeatures]) -> np.ndarray:
        """P(generated) from :meth:`image_features` (the same numbers as :meth:`p_generated` on the images)."""
        if not hasattr(self, "threshold_"):
            raise ValueError(f"{self.name}: detector is not fitted")
        z = []
        for f in feats:
            fits = [s for s in self.models_ if s in f.tiles]
            s = max(fits) if fits else None
            z.append(float("nan") if s is None else self.aggregate(self._grid(*f.tiles[s], f.shape, s), s))
        return sigmoid(np.array(z, np.float64))

    def predict_proba(self, X) -> np.ndarray:
        if not hasattr(self, "threshold_"):
            raise ValueError(f"{self.name}: detector is not fitted")
        p = self._proba(X)
        return np.stack([1.0 - p, p], axis=1)

    # -- persistence -----------------------------------------------------------------------
    def _state(self):
        arrays = {}
        for s, m in self.models_.items():
            for key, v in m.items():
                arrays[f"t{s}_{key}"] = np.asarray(v, np.float64)
        return {"tiles": sorted(int(s) for s in self.models_), "n_train": getattr(self, "n_train_", None)}, arrays

    def _set_state(self, meta, arrays):
        self.models_ = {}
        for s in meta["tiles"]:
            s = int(s)
            keys = ("W0", "b0", "W1") if f"t{s}_W0" in arrays else ("coef",)
            # the feature set and the classifier from the arrays: a file written before ``spectrum`` and
            # ``hidden`` existed has the phase features and a linear model, and neither parameter
            self.spectrum = bool(arrays[f"t{s}_mean"].size > N_PHASE)
            self.hidden = int(arrays[f"t{s}_W0"].shape[1]) if f"t{s}_W0" in arrays else 0
            self.models_[s] = {key: arrays[f"t{s}_{key}"] for key in ("mean", "scale", *keys, "b", "rho", "offset")}
        self.classes_ = np.array([0, 1])
        self.n_train_ = meta.get("n_train")

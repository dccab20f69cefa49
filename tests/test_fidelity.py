"""The published features against independent transcriptions of the published algorithms.

Each oracle below is written for this test from the method notes (Durall et al.'s
``radialProfile.azimuthalAverage`` and CelebA notebook; Dzanic et al.'s ``generatedata.m``:
``processImage``, ``binSpectrum``, ``getFitCoeffs``, ``fitPower`` and MATLAB's ``fminsearch``),
one image at a time, in the published code's own order of operations (loops, sorting,
cumulative sums, ``griddata``, the n x n residual matrix and its SVD), not with the batched
module's shortcuts. Natural patches: the built-in photographs at 64, 128, 127 and 128 x 160 px.
"""
import warnings

import numpy as np
import pytest
from scipy.interpolate import griddata

from forensics.spectral import spectrum as S

SIZES = [(64, 64), (128, 128), (127, 127), (128, 160)]
N_PATCHES = 50


@pytest.fixture(scope="module")
def photos():
    from forensics.io.sources import builtin_photos

    return [im for _, im, _ in builtin_photos()]


def natural_patches(photos, h, w, n=N_PATCHES, seed=0):
    """``n`` seeded crops of ``h x w`` from the built-in photographs (textured ones only)."""
    rng = np.random.default_rng(seed + 1000 * h + w)
    big = [p for p in photos if p.shape[0] >= h and p.shape[1] >= w]
    out = []
    while len(out) < n:
        p = big[rng.integers(len(big))]
        y, x = rng.integers(p.shape[0] - h + 1), rng.integers(p.shape[1] - w + 1)
        c = p[y:y + h, x:x + w]
        if c.std() > 4:
            out.append(c)
    return np.stack(out)


# ------------------------------------------------------------------------------ Durall
def cv2_gray(img):
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)  # what imread(path, 0) gives for a PNG


def durall_transcribed(img):
    """One image as Durall et al.'s notebook and ``azimuthalAverage`` compute it."""
    gray = cv2_gray(img).astype(np.float64)
    f = np.fft.fftshift(np.fft.fft2(gray))
    f = f + 1e-8
    mag = 20 * np.log(np.abs(f))
    yy, xx = np.indices(mag.shape)
    centre = np.array([(xx.max() - xx.min()) / 2.0, (xx.max() - xx.min()) / 2.0])
    r = np.hypot(xx - centre[0], yy - centre[1])
    order = np.argsort(r.flat)
    r_int = r.flat[order].astype(int)
    vals = mag.flat[order]
    change = np.where(r_int[1:] - r_int[:-1])[0]  # last index of each radius
    counts = change[1:] - change[:-1]
    csum = np.cumsum(vals, dtype=float)
    prof = (csum[change[1:]] - csum[change[:-1]]) / counts
    n = 80
    points = np.linspace(0, n, num=prof.size)
    xi = np.linspace(0, n, num=n)
    out = griddata(points, prof, xi, method="cubic")
    return out / out[0]


def test_opencv_grey_formula_equals_opencv(photos):
    rgb = natural_patches(photos, 64, 64, n=20)
    assert np.array_equal(S.opencv_gray(rgb), np.stack([cv2_gray(im) for im in rgb]).astype(np.float64))


@pytest.mark.parametrize("hw", SIZES)
def test_durall_equals_transcription(photos, hw):
    rgb = natural_patches(photos, *hw)
    got = S.features(rgb, "durall")
    want = np.stack([durall_transcribed(im) for im in rgb])
    assert got.shape == (N_PATCHES, 80)
    assert np.max(np.abs(got - want) / np.abs(want)) <= 1e-4


def test_durall_profile_length_as_published():
    # 128 px: radii 0..89 about (63.5, 63.5); the first and last ring are dropped
    assert S._durall_geometry(128, 128).n_bins == 88
    assert S._durall_geometry(64, 64).n_bins == 43


# ------------------------------------------------------------------------------ Dzanic
MATLAB_GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


def mround(v):
    """MATLAB int32(): nearest, halves away from zero."""
    return int(np.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def fminsearch(fun, x0, tolx=1e-4, tolf=1e-4, maxiter=200, maxfev=99_000_000):
    """MATLAB fminsearch for one variable, written out step by step."""
    v = [x0, 1.05 * x0 if x0 != 0 else 0.00025]
    fv = [fun(v[0]), fun(v[1])]
    if fv[1] < fv[0]:  # MATLAB's sort is stable: a tie keeps x0 first
        v, fv = v[::-1], fv[::-1]
    it, fev = 1, 2
    while fev < maxfev and it < maxiter:
        if abs(fv[0] - fv[1]) <= tolf and abs(v[0] - v[1]) <= tolx:
            break
        xbar = v[0]
        xr = 2 * xbar - v[1]
        fr = fun(xr)
        fev += 1
        if fr < fv[0]:
            xe = 3 * xbar - 2 * v[1]
            fe = fun(xe)
            fev += 1
            v[1], fv[1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < fv[0]:  # "better than the second worst": with one variable that is the best
            v[1], fv[1] = xr, fr
        else:
            shrink = False
            if fr < fv[1]:
                xc = 1.5 * xbar - 0.5 * v[1]
                fc = fun(xc)
                fev += 1
                if fc <= fr:
                    v[1], fv[1] = xc, fc
                else:
                    shrink = True
            else:
                xcc = 0.5 * xbar + 0.5 * v[1]
                fcc = fun(xcc)
                fev += 1
                if fcc < fv[1]:
                    v[1], fv[1] = xcc, fcc
                else:
                    shrink = True
            if shrink:
                v[1] = v[0] + 0.5 * (v[1] - v[0])
                fv[1] = fun(v[1])
                fev += 1
        if fv[1] < fv[0]:
            v, fv = v[::-1], fv[::-1]
        it += 1
    return v[0]


def dzanic_transcribed(img, nbins=200, rthresh=0.5, fit_thresh=0.85, nsmooth=5):
    """One image as generatedata.m computes [b, y_i, y_f]."""
    g = np.clip(np.round(img.astype(np.float64) @ MATLAB_GRAY), 0, 255)  # rgb2gray on uint8
    F = np.fft.fftshift(np.fft.fft2(g))
    nx, ny = mround(F.shape[0] / 2), mround(F.shape[1] / 2)
    rmax = np.sqrt(float(nx) ** 2 + float(ny) ** 2)
    i1 = np.arange(1, F.shape[0] + 1)[:, None]  # 1-based indices
    j1 = np.arange(1, F.shape[1] + 1)[None, :]
    rij = np.sqrt((i1 - nx) ** 2.0 + (j1 - ny) ** 2.0)
    sel = rij > rthresh * rmax
    r, m = rij[sel], np.abs(F)[sel]
    edges = np.linspace(r.min(), r.max(), nbins + 1)
    yh, nh = np.zeros(nbins), np.zeros(nbins)
    assigned = np.zeros(r.size, bool)
    for j in range(nbins):  # the first bin whose closed interval holds the radius wins
        inb = ~assigned & (r >= edges[j]) & (r <= edges[j + 1])
        yh[j] += m[inb].sum()
        nh[j] += inb.sum()
        assigned |= inb
    with np.errstate(invalid="ignore"):
        yh = yh / nh  # empty bins: 0/0 = NaN
    xh = (edges[:-1] + edges[1:]) / 2
    # smooth(y, 5): moving average, windows 1, 3, 5 at the ends, NaNs ignored
    ys = np.empty(nbins)
    for k in range(nbins):
        half = min((nsmooth - 1) // 2, k, nbins - 1 - k)
        w = yh[k - half:k + half + 1]
        w = w[~np.isnan(w)]
        ys[k] = w.mean() if w.size else np.nan
    nstart = mround(200 * (fit_thresh - 0.5) / 0.5) + 1
    x = xh[nstart - 1:] / xh.max()
    y = ys[nstart - 1:]
    yi, yf = y[0], y[-1]
    if np.isnan(y).any():
        return np.array([np.nan, yi, yf])  # norm(., 2) of a matrix holding NaN: no finite objective

    def objective(c):  # y is a column, x a row: y - f is n x n, norm 2 its largest singular value
        f = yi * (x / x[0]) ** c
        return np.linalg.norm(y[:, None] - f[None, :], 2)

    return np.array([fminsearch(objective, -2.0), yi, yf])


@pytest.mark.parametrize("hw", SIZES)
def test_dzanic_equals_transcription(photos, hw):
    rgb = natural_patches(photos, *hw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = S.features(rgb, "dzanic")
    want = np.stack([dzanic_transcribed(im) for im in rgb])
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    assert np.max(np.abs(got[ok] - want[ok]) / np.abs(want[ok])) <= 1e-4
    n_nan = int(np.isnan(want[:, 0]).sum())
    assert (n_nan > 0) == any("not finite" in str(w.message) for w in caught)
    if hw == (64, 64):
        assert n_nan == N_PATCHES  # the published fit has no finite objective at 64 px
    else:
        assert n_nan == 0


def test_matrix_norm_objective_is_the_largest_singular_value():
    rng = np.random.default_rng(0)
    x = np.linspace(0.9, 1.0, 60)
    y = rng.uniform(50, 200, (5, 60))
    b = rng.uniform(-6, 1, 5)
    got = S.matrix_norm_objective(x, y, y[:, 0], b)
    for k in range(5):
        f = y[k, 0] * (x / x[0]) ** b[k]
        assert got[k] == pytest.approx(np.linalg.norm(y[k][:, None] - f[None, :], 2), rel=1e-10)


def test_odd_size_centre_is_the_true_dc():
    # int32(127 / 2) = 64 (1-based) = index 63 (0-based) = fftshift's DC for 127; for 128 it is
    # 64 (1-based) = 63 (0-based), one below fftshift's DC at 64
    _, _, rmax127 = S._dzanic_geometry(127, 127, 200, 0.5)
    _, _, rmax128 = S._dzanic_geometry(128, 128, 200, 0.5)
    assert rmax127 == pytest.approx(64 * np.sqrt(2)) and rmax128 == pytest.approx(64 * np.sqrt(2))

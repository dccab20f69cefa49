"""Straightforward one-image-at-a-time implementations of the spectral features.

They follow the published scripts' structure (a loop over images, a loop over radius
bins, SciPy's Nelder–Mead per image) and exist as the baseline of
``benchmarks/bench_spectrum.py`` and as the oracle of the ring geometry. The transcriptions
of the published algorithms the faithful features are tested against are in
``tests/test_fidelity.py``; the toolkit's variants (``dzanic+``, ``durall+``) have their own one-image
versions here (:func:`dzanic_fixed_one`, :func:`durall_fixed_one`), the oracles of the batched code.
Nothing else should call them.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import fmin

from forensics.spectral.spectrum import MATLAB_GRAY


def dzanic_faithful_one(img: np.ndarray, n_bins: int = 200, keep: float = 0.5,
                        band: float = 0.85) -> np.ndarray:
    """``[b, y_i, y_f]`` of one ``(H, W, 3)`` uint8 image, written as the MATLAB script is."""
    g = img[..., 0] * MATLAB_GRAY[0] + img[..., 1] * MATLAB_GRAY[1] + img[..., 2] * MATLAB_GRAY[2]
    g = np.clip(np.round(g), 0, 255)
    mag = np.abs(np.fft.fftshift(np.fft.fft2(g)))
    h, w = g.shape
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = np.floor(h / 2 + 0.5), np.floor(w / 2 + 0.5)  # MATLAB int32(N/2), 1-based
    r = np.sqrt((yy + 1 - cy) ** 2 + (xx + 1 - cx) ** 2)
    r_max = np.sqrt(cy ** 2 + cx ** 2)
    keep_mask = r > keep * r_max
    rk, mk = r[keep_mask], mag[keep_mask]
    edges = np.linspace(rk.min(), rk.max(), n_bins + 1)
    y = np.empty(n_bins)
    taken = np.zeros(rk.size, bool)
    for i in range(n_bins):  # one mask per bin, as the script does
        sel = (rk >= edges[i]) & (rk <= edges[i + 1]) & ~taken  # first matching bin wins
        taken |= sel
        y[i] = mk[sel].mean() if sel.any() else np.nan
    centres = (edges[:-1] + edges[1:]) / 2
    sm = np.empty(n_bins)
    for i in range(n_bins):  # smooth(y, 5) with shrinking end windows, NaNs ignored
        hw = min(2, i, n_bins - 1 - i)
        win = y[i - hw:i + hw + 1]
        win = win[~np.isnan(win)]
        sm[i] = win.mean() if win.size else np.nan
    start = int(round((band - keep) / (1.0 - keep) * n_bins))
    x = centres[start:] / centres[-1]
    yb = sm[start:]

    def cost(b):  # the published objective: 2-norm of the matrix column y minus row f
        return np.linalg.norm(yb[:, None] - (yb[0] * (x / x[0]) ** b[0])[None, :], 2)

    b = fmin(cost, [-2.0], xtol=1e-4, ftol=1e-4, maxfun=99_000_000, disp=False)[0] \
        if np.isfinite(yb).all() else np.nan
    return np.array([b, yb[0], yb[-1]])


def azimuthal_profile_one(img: np.ndarray) -> np.ndarray:
    """Mean log magnitude (dB, ortho FFT) per integer ring, one image, one ring at a time."""
    g = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    h, w = g.shape
    mag = np.abs(np.fft.fftshift(np.fft.fft2(g, norm="ortho")))
    spec = 20 * np.log10(mag + 1e-8)
    fy = (np.arange(h) - h // 2) / h
    fx = (np.arange(w) - w // 2) / w
    k = np.rint(np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) * min(h, w)).astype(int)
    return np.array([spec[k == i].mean() for i in range(k.max() + 1)])


def ring_means_one(img: np.ndarray, transform=None) -> np.ndarray:
    """Mean of ``transform(|fftshift(fft2(grey, ortho))|)`` per integer ring ``rint(f * min(H, W))``
    (the module's geometry) of one RGB or grey image (BT.601 grey), one ring at a time, float64."""
    g = _gray_one(img)
    transform = transform or (lambda m: m)
    h, w = g.shape
    spec = transform(np.abs(np.fft.fftshift(np.fft.fft2(g, norm="ortho"))))
    fy = (np.arange(h) - h // 2) / h
    fx = (np.arange(w) - w // 2) / w
    k = np.rint(np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) * min(h, w)).astype(int)
    return np.array([spec[k == i].mean() for i in range(k.max() + 1)])


def _gray_one(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) if img.ndim == 3 else img.astype(np.float64)


def dzanic_fixed_one(img: np.ndarray, band: float = 0.5) -> np.ndarray:
    """``[b, y_i, y_f]`` of the toolkit's variant (``dzanic+``) of one image: ring means of the
    ortho magnitude, rings ``ceil(band * S/2)..S/2``, ``b`` by SciPy's Nelder–Mead of the vector
    norm from -2 (MATLAB's ``fminsearch`` tolerances)."""
    prof = ring_means_one(img)
    nyq = min(img.shape[:2]) // 2
    lo = max(1, int(np.ceil(band * nyq)))
    y = prof[lo:nyq + 1]
    x = np.arange(lo, nyq + 1) / nyq

    def cost(b):
        return np.sqrt(np.sum((y[0] * (x / x[0]) ** b[0] - y) ** 2))

    return np.array([fmin(cost, [-2.0], xtol=1e-4, ftol=1e-4, disp=False)[0], y[0], y[-1]])


def durall_fixed_one(img: np.ndarray, n_points: int = 80, a: float = -0.5) -> np.ndarray:
    """The toolkit's variant (``durall+``) of one image: ring means of ``20 ln(|F| + 1e-8)``
    without the first and last ring, read at ``n_points`` equally spaced points by Keys' cubic
    convolution (four taps per point, ends replicated), minus the first value."""
    prof = 20.0 * ring_means_one(img, lambda m: np.log(m + 1e-8))[1:-1]
    n = len(prof)

    def keys(d):
        d = abs(d)
        if d <= 1:
            return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1
        return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a if d < 2 else 0.0

    out = np.empty(n_points)
    for j, t in enumerate(np.linspace(0.0, n - 1.0, n_points)):
        base = int(np.floor(t))
        out[j] = sum(keys(t - k) * prof[min(max(k, 0), n - 1)] for k in range(base - 1, base + 3))
    return out - out[0]

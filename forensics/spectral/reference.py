"""Straightforward one-image-at-a-time implementations of the spectral features.

They follow the published scripts' structure (a loop over images, a loop over radius
bins, SciPy's Nelder–Mead per image) and exist as the baseline of
``benchmarks/bench_spectrum.py`` and as the oracle of the ring geometry. The transcriptions
of the published algorithms the faithful features are tested against are in
``tests/test_fidelity.py``. Nothing else should call them.
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

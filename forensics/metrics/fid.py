"""FID and KID: the maths, on feature vectors (pure NumPy).

The maths (in the spirit of pytorch-fid / Heusel et al. 2017 and Bińkowski et al. 2018):

* **FID** is the Fréchet distance between Gaussians fitted to Inception pool features,
  ``||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})``. The trace of the matrix square root
  is computed as ``sum sqrt(eig(S1^{1/2} S2 S1^{1/2}))`` (a symmetric PSD matrix with the same
  eigenvalues as ``S1 S2``), which stays real and accurate for singular covariances (few images).
* **KID** is the unbiased squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets (mean and std reported); unlike FID
  it is unbiased, so it is the score to read on small sets.

The features and their preprocessing are :mod:`forensics.metrics.inception`'s.
"""
from __future__ import annotations

import numpy as np


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, ``ddof=1``) covariance of ``(N, D)`` features, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def _psd_sqrt(S: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((S + S.T) / 2)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet (2-Wasserstein) distance squared between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: means {mu1.shape} / {mu2.shape}, covariances {s1.shape} / {s2.shape}")
    r1 = _psd_sqrt(s1)
    M = r1 @ s2 @ r1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((M + M.T) / 2), 0.0, None)).sum()
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid_from_features(f1, f2) -> float:
    """FID of two feature sets. With fewer vectors than dimensions on a side, the trace term is
    computed in sample space: for centred ``A`` (n1 x d) and ``B`` (n2 x d), the non-zero eigenvalues
    of ``S1 S2`` are the squared singular values of ``A B^T / sqrt((n1-1)(n2-1))``, so
    ``tr((S1 S2)^{1/2})`` is that matrix's nuclear norm (an n1 x n2 SVD instead of d x d
    eigendecompositions; the same number)."""
    a, b = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two (N >= 2, D) feature sets of equal D, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) >= a.shape[1]:
        return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    mu1, mu2 = a.mean(0), b.mean(0)
    A, B = a - mu1, b - mu2
    n1, n2 = len(a) - 1, len(b) - 1
    tr1, tr2 = (A * A).sum() / n1, (B * B).sum() / n2
    tr_covmean = np.linalg.svd(A @ B.T, compute_uv=False).sum() / np.sqrt(n1 * n2)
    d = mu1 - mu2
    return float(d @ d + tr1 + tr2 - 2.0 * tr_covmean)


def kid(f1, f2, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> dict:
    """Kernel Inception Distance: unbiased MMD^2 with ``k(x, y) = (x.y / d + 1)^3`` over
    ``subsets`` random subsets of ``min(subset_size, n1, n2)`` vectors of each set (one subset when
    that is all of both sets; ``kid_std`` is then 0 and says nothing about the uncertainty)."""
    x, y = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features of shapes {x.shape} and {y.shape} do not match")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 images on each side")
    if m == len(x) == len(y):
        subsets = 1  # every subset would be the whole of both sets: one value, no spread to report
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    vals = np.empty(subsets)
    for s in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx = (a @ a.T / d + 1) ** 3
        kyy = (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        vals[s] = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    return {"kid": float(vals.mean()), "kid_std": float(vals.std()), "subsets": subsets, "subset_size": m}

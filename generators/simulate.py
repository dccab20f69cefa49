"""Upsampling-artefact simulator (in the spirit of Zhang et al., 2019, "AutoGAN").

Instead of training a GAN, take a real image, shrink it by 2 (area filter) and enlarge it
again with one stride-2 transposed convolution (kernel 4, padding 1) whose kernel is the
bilinear kernel plus seeded random noise. The content stays that of the real image, but
the four output phases (even/odd rows x even/odd columns) now see slightly different
filters, which is the periodic trace a CNN generator's transposed convolutions leave: a
peak at the Nyquist frequency and a raised high-frequency tail. The noise level sets how
strong the trace is. Vectorised in polyphase form (16 shifted multiply-adds per batch).
"""
from __future__ import annotations

import numpy as np

# 1-D taps of ConvTranspose(k=4, s=2, p=1): output 2m takes k1*x[m] + k3*x[m-1];
# output 2m+1 takes k2*x[m] + k0*x[m+1]. (kernel index, input offset) per output phase.
_TAPS = {0: ((1, 0), (3, -1)), 1: ((2, 0), (0, 1))}
_BILINEAR = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 16.0


def transposed_upsample(x: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """×2 upsampling of float images ``(N, h, w, C)`` by a per-image 4x4 transposed-conv
    kernel ``(N, 4, 4)`` (edges replicated instead of zero padding)."""
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    y = np.zeros((n, 2 * h, 2 * w, c), dtype=np.float64)
    for a, rows in _TAPS.items():
        for b, cols in _TAPS.items():
            acc = np.zeros((n, h, w, c))
            for ky, oy in rows:
                for kx, ox in cols:
                    acc += kernels[:, ky, kx, None, None, None] * xp[:, 1 + oy:1 + oy + h, 1 + ox:1 + ox + w]
            y[:, a::2, b::2] = acc
    return y


def simulate_upsampling(images: np.ndarray, seed: int = 0, strength: tuple[float, float] = (0.02, 0.08)) -> np.ndarray:
    """Simulated transposed-conv images from real ``(N, S, S, 3)`` uint8 images (S even).

    Each image gets its own kernel: bilinear + Gaussian noise of a standard deviation drawn
    uniformly from ``strength``. Returns uint8 images of the same shape.
    """
    import cv2

    images = np.asarray(images)
    n, s = images.shape[0], images.shape[1]
    if s % 2 or images.shape[2] % 2:
        raise ValueError("image sides must be even")
    rng = np.random.default_rng(seed)
    small = np.stack([cv2.resize(im, (im.shape[1] // 2, s // 2), interpolation=cv2.INTER_AREA) for im in images])
    sigma = rng.uniform(*strength, size=n)
    kernels = _BILINEAR[None] + sigma[:, None, None] * rng.standard_normal((n, 4, 4))
    up = transposed_upsample(small.astype(np.float64), kernels)
    return np.clip(np.rint(up), 0, 255).astype(np.uint8)

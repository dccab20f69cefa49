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



#: the upsampling methods of :func:`simulate_family` (the last layers of the counterexample
#: study: nearest, bilinear with align_corners=True, zero insertion, and a transposed conv)
FAMILY = ("nearest", "bilinear", "zero", "transposed")


def _grouped_conv(x, w):
    """Per-image convolution: ``x`` (N, Cin, H, W), ``w`` (N, Cout, Cin, k, k), reflect-padded."""
    import torch.nn.functional as F

    n, cin, h, wd = x.shape
    k = w.shape[-1]
    xp = F.pad(x, (k // 2,) * 4, mode="reflect").reshape(1, n * cin, h + k - 1, wd + k - 1)
    return F.conv2d(xp, w.reshape(n * w.shape[1], cin, k, k), groups=n).reshape(n, w.shape[1], h, wd)


def _kernels(g, shape, k):
    """Random kernels ``shape + (k, k)``: white weights plus a random multiple of a blur."""
    import torch

    ax = torch.arange(k, dtype=torch.float32) - k // 2
    blur = torch.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / 2.0)
    blur = blur / blur.sum()
    fan_in = shape[-1] * k * k
    return (torch.randn(*shape, k, k, generator=g, dtype=torch.float32) / fan_in ** 0.5
            + torch.randn(*shape, 1, 1, generator=g, dtype=torch.float32) * blur * k / fan_in ** 0.5)


def simulate_family(images: np.ndarray, seed: int = 0, methods=FAMILY, channels: int = 8,
                    chunk: int = 64, stages: tuple[int, ...] = (1,)) -> np.ndarray:
    """Simulated generator outputs from real ``(N, S, S, 3)`` uint8 images (S even), built the
    way a generator's last block is: the image is area-downscaled by 2 and turned into
    ``channels`` feature maps (a random 3x3 conv + ReLU), every map is upsampled by 2 (nearest,
    bilinear, zero insertion, or a transposed conv 4x4 with its own random kernel), then 1 or 3
    random convolutions of size 3, 5 or 7 map them to RGB (as the counterexamples' ``X.Y.Z``
    last layers do; the 3-layer stack is linear), ``tanh``, and the result is matched to the
    original's per-channel mean and standard deviation. Method, kernel size and depth are drawn
    per chunk of ``chunk`` images, every weight per image; all from ``seed``. uint8 out.

    ``stages`` lists the numbers of x2 upsampling stages to draw from per chunk: with 2 (3) the
    image is downscaled by 4 (8) and upsampled twice (three times) by the chunk's method (a random
    3x3 conv + ReLU between), as the last blocks of a generator do; the default keeps one stage. A
    chunk whose sides are not multiples of ``2 ** stages`` takes fewer stages."""
    if not stages or any(k not in (1, 2, 3) for k in stages):
        raise ValueError(f"upsampling stages must be 1, 2 or 3, got {stages}")
    import torch

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] % 2 or images.shape[2] % 2:
        raise ValueError("expected (N, H, W, 3) images with even sides")
    bad = sorted(set(methods) - set(FAMILY))
    if bad or not methods:
        raise ValueError(f"unknown upsampling method(s) {bad}; choose from {', '.join(FAMILY)}")
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
    n, h, w = images.shape[:3]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is fastest, and a shared machine stays usable
    try:
        return _simulate(images, rng, g, methods, channels, chunk, n, h, w, tuple(stages))
    finally:
        torch.set_num_threads(threads)


def _upsample(feat, method, g):
    """x2 upsampling of feature maps ``(m, c, h, w)`` by one of :data:`FAMILY`."""
    import torch
    import torch.nn.functional as F

    m, c, hh, ww = feat.shape
    if method == "nearest":
        return F.interpolate(feat, scale_factor=2, mode="nearest")
    if method == "bilinear":
        return F.interpolate(feat, scale_factor=2, mode="bilinear", align_corners=True)
    if method == "zero":
        up = torch.zeros(m, c, 2 * hh, 2 * ww, dtype=torch.float32)
        up[:, :, ::2, ::2] = feat
        return up
    kt = torch.from_numpy(_BILINEAR.astype(np.float32))[None, None] * 4 + _kernels(g, (m * c, 1), 4) * 4
    return F.conv_transpose2d(feat.reshape(1, m * c, hh, ww), kt, stride=2, padding=1,
                              groups=m * c).reshape(m, c, 2 * hh, 2 * ww)


def _simulate(images, rng, g, methods, channels, chunk, n, h, w, stages=(1,)):
    import cv2
    import torch
    import torch.nn.functional as F

    out = np.empty(images.shape, np.float64)
    c = channels
    for i in range(0, n, chunk):
        im = images[i:i + chunk]
        m = len(im)
        # one stage unless asked (and the default draws nothing more, so old seeds reproduce)
        n_st = 1 if stages == (1,) else int(stages[int(rng.integers(len(stages)))])
        while n_st > 1 and (h % (1 << n_st) or w % (1 << n_st)):
            n_st -= 1
        small = np.stack([cv2.resize(x, (w >> n_st, h >> n_st), interpolation=cv2.INTER_AREA) for x in im])
        x = torch.from_numpy(small.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
        feat = F.relu(_grouped_conv(x, _kernels(g, (m, c, 3), 3))
                      + 0.1 * torch.randn(m, c, 1, 1, generator=g, dtype=torch.float32))
        method = methods[int(rng.integers(len(methods)))]
        up = _upsample(feat, method, g)
        for _ in range(n_st - 1):
            feat = F.relu(_grouped_conv(up, _kernels(g, (m, c, c), 3))
                          + 0.1 * torch.randn(m, c, 1, 1, generator=g, dtype=torch.float32))
            up = _upsample(feat, method, g)
        depth, k = int(rng.choice([1, 1, 3])), int(rng.choice([3, 5, 7]))
        for layer in range(depth):
            cout = 3 if layer == depth - 1 else c
            up = _grouped_conv(up, _kernels(g, (m, cout, up.shape[1]), k))
        y = torch.tanh(up).permute(0, 2, 3, 1).numpy()
        o = im.astype(np.float64)
        ym, ys = y.mean((1, 2), keepdims=True), y.std((1, 2), keepdims=True) + 1e-9
        out[i:i + m] = (y - ym) / ys * o.std((1, 2), keepdims=True) + o.mean((1, 2), keepdims=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)

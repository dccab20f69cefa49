"""The spectral features on torch (``--device cpu`` or ``cuda``): the FFT and ring averages,
the costly part, run as batched torch operations on the device; the per-image decay fit of the
Dzanic features stays the NumPy one of :mod:`forensics.spectral.spectrum`, applied to the profiles.

Same definitions as :mod:`forensics.spectral.spectrum` (BT.601 grey in float32, ortho ``rfft2``, the
half-plane ring geometry :func:`forensics.spectral.spectrum.half_geometry` with its Hermitian weights),
so the features agree with the NumPy path to float32 rounding. ``dzanic-faithful`` has no torch
path yet and is computed by NumPy whatever the device.
"""
from __future__ import annotations

import numpy as np

from forensics.spectral import spectrum

#: feature sets with a torch path; others fall back to NumPy
TORCH_FEATURES = ("dzanic+", "durall+")


def torch_device(name: str):
    """A ``torch.device`` for ``cpu`` / ``cuda`` / ``cuda:N``; ``ValueError`` if unusable."""
    import torch

    if name not in ("cpu", "cuda") and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise ValueError(f"unknown device {name!r}: use numpy, cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU")
    return torch.device(name)


@spectrum.geometry_cache(maxsize=32)
def _rings(h: int, w: int, device: str):
    """Ring index and weight/ring-total of each ``rfft2`` position, on ``device``."""
    import torch

    idx, weight, counts = spectrum.half_geometry(h, w)
    wn = weight / counts[idx]
    return (torch.as_tensor(np.array(idx), device=device), torch.as_tensor(wn, dtype=torch.float32, device=device),
            len(counts))


def ring_profiles(batch: np.ndarray, device: str = "cpu", log: bool = False) -> np.ndarray:
    """``(N, n_bins)`` ring means of ``|rfft2(grey)|`` (or of ``ln(|F| + 1e-8)`` with ``log``)
    of a same-size ``(N, H, W, 3)`` uint8 batch, computed on ``device``; float64 out."""
    import torch

    h, w = batch.shape[1:3]
    x = torch.as_tensor(np.ascontiguousarray(batch), device=device)
    wt = torch.tensor(spectrum.BT601, dtype=torch.float32, device=device)
    grey = x.to(torch.float32) @ wt if x.ndim == 4 else x.to(torch.float32)
    mag = torch.fft.rfft2(grey, norm="ortho").abs()
    if log:
        mag = torch.log(mag + 1e-8)
    idx, wn, n_bins = _rings(h, w, str(device))
    v = mag.reshape(len(mag), -1) * wn
    out = torch.zeros(len(mag), n_bins, dtype=torch.float32, device=device).index_add_(1, idx, v)
    return out.double().cpu().numpy()


def _dzanic(batch, device, band: float = 0.5):
    h, w = batch.shape[1:3]
    nyq = min(h, w) // 2
    lo = max(1, int(np.ceil(band * nyq)))
    yb = ring_profiles(batch, device)[:, lo:nyq + 1]
    b = spectrum.fit_decay(np.arange(lo, nyq + 1) / nyq, yb)
    return np.stack([b, yb[:, 0], yb[:, -1]], axis=1)


def _durall(batch, device, n_points: int = 80):
    prof = ring_profiles(batch, device, log=True)[:, 1:-1]
    v = prof @ (20.0 * spectrum.cubic_resample_matrix(prof.shape[1], n_points))
    return v - v[:, :1]


def features(images, name: str = "dzanic+", device: str = "cpu", batch: int = 256) -> np.ndarray:
    """:func:`forensics.spectral.spectrum.features` computed with torch on ``device`` (the toolkit's variants
    ``dzanic+`` and ``durall+``; other sets go to the NumPy path). Mixed sizes are grouped by size."""
    if name not in TORCH_FEATURES:
        return spectrum.features(images, name)
    dev = str(torch_device(device))
    fn = _dzanic if name == "dzanic+" else _durall
    groups = spectrum._groups(images)
    n = sum(len(ix) for ix, _, _ in groups)
    if n == 0:
        raise ValueError("no images")
    out = None
    for ix, take, shape in groups:
        if min(shape[:2]) < spectrum.MIN_SIZE[name]:
            raise ValueError(f"{name} features need images of at least {spectrum.MIN_SIZE[name]} px")
        for i in range(0, len(ix), batch):
            part = ix[i:i + batch]
            f = fn(take(part), dev)
            if out is None:
                out = np.empty((n, f.shape[1]))
            out[part] = f
    return out

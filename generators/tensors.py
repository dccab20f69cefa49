"""Tensors between the host and the device, and between uint8 images and the networks' [-1, 1]."""
from __future__ import annotations

import numpy as np
import torch

from forensics.core.errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda: no CUDA device is available to this torch build")
    if name not in ("cpu", "cuda"):
        raise UserError(f"unknown device {name!r}: auto, cpu or cuda")
    return torch.device(name)


def to_device(t: torch.Tensor, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A host tensor (drawn from a CPU generator, so runs match across devices) on ``device``. To a GPU
    it goes through pinned memory without blocking: a copy from pageable memory would wait for every
    kernel queued before it, once per batch, latent draw and penalty mix."""
    if device.type == "cuda":
        t = t.pin_memory().to(device, non_blocking=True)
    return t.to(device, dtype) if dtype is not None else t.to(device)


def to_unit(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` to float ``(N, 3, H, W)`` in [-1, 1]."""
    return images_uint8.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float ``(N, 3, H, W)`` in [-1, 1] to uint8 ``(N, H, W, 3)``, correctly rounded
    (``round((x + 1) * 127.5)``, clipped), not truncated."""
    u = ((x.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return u.permute(0, 2, 3, 1).contiguous().numpy()

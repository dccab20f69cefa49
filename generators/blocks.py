"""Building blocks shared by the autoencoders and the U-Nets of the diffusion-era sources.

Residual blocks (GroupNorm, SiLU, 3x3 convolutions; optionally a time embedding added between the
convolutions, as in DDPM), single-head self-attention, stride-2 downsampling and the up-blocks, whose
upsampling layers are built by :meth:`forensics.generators.layers.LastLayerSpec.build` from a spec
string: the same builder, and so the same 13 setups (plus pixel shuffle), as the GANs' last layer.

No block adds anything that depends on the position in the image (no positional encoding, and with
``padding="replicate"`` no border that a convolution could read a position from): every network made of
them maps a constant image to a constant image whenever its upsampling does (nearest, bilinear).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from forensics.generators.layers import LastLayerSpec


def group_norm(ch: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups of at least 4 channels each (eps 1e-6, as latent diffusion). Not fewer
    channels per group: on a constant map a one-channel group has variance ~0, and normalising divides the
    rounding noise of the layers before it by ``sqrt(eps)`` (x1000), so constants would stop being constant."""
    g = next((g for g in (8, 4, 2) if ch % g == 0 and ch // g >= 4), 1)
    return nn.GroupNorm(g, ch, eps=1e-6)


def conv3(a: int, b: int, padding: str, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(a, b, 3, stride, 1, padding_mode=padding)


class ResBlock(nn.Module):
    """``x + conv(silu(norm(conv(silu(norm(x))) [+ t])))``, a 1x1 convolution on the skip when the width changes."""

    def __init__(self, a: int, b: int, padding: str, temb: int = 0):
        super().__init__()
        self.norm1, self.conv1 = group_norm(a), conv3(a, b, padding)
        self.temb = nn.Linear(temb, b) if temb else None
        self.norm2, self.conv2 = group_norm(b), conv3(b, b, padding)
        self.skip = nn.Conv2d(a, b, 1) if a != b else nn.Identity()

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.temb is not None:
            h = h + self.temb(F.silu(t))[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class Attention(nn.Module):
    """Single-head self-attention over the pixels of a map, residual."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm, self.qkv, self.out = group_norm(ch), nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return x + self.out(a.transpose(1, 2).reshape(n, c, h, w))


def downsample(ch: int, padding: str) -> nn.Conv2d:
    """x1/2: a stride-2 3x3 convolution."""
    return conv3(ch, ch, padding, stride=2)


def up_layers(spec: str | LastLayerSpec, a: int, b: int, padding: str) -> nn.Sequential:
    """x2 upsampling from ``a`` to ``b`` channels by the layers of ``spec`` (the GANs' builder)."""
    return LastLayerSpec.parse(spec).build(a, b, padding_mode=padding)


def up_specs(n: int, last: str, inner: str | None) -> list[str]:
    """The specs of ``n`` up-blocks, lowest resolution first: ``inner`` (default ``last``) then ``last``."""
    return [inner or last] * (n - 1) + [last]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (integer) timesteps ``(N,)`` -> ``(N, dim)``, as in DDPM."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)

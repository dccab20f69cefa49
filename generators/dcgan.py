"""DCGAN-style generator and discriminator of Chandrasegaran et al., scaled by resolution.

At 128x128 with ``ngf = ndf = 32`` and ``z = 128`` these are the paper's networks:

G: z -> ConvT k4 (1 -> 4x4, 512 ch) + BN + ReLU -> ConvT k4 s2 + BN + ReLU blocks
   (256, 128, 64, 32 channels; 8 -> 64 px) -> last layer per spec (32 -> 3) -> tanh.
D: five stride-2 k4 convs (32 -> 512 channels) with LeakyReLU 0.2, normalisation on all
   but the first (BatchNorm, or GroupNorm(1) for WGAN-GP), then a k4 conv to one logit.

Other resolutions keep the pattern: ``log2(S) - 2`` doublings from 4x4, channel counts
doubling toward 4x4 from ``ngf`` (capped at ``max_ch``).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from forensics.generators.layers import LastLayerSpec


def n_doublings(size: int) -> int:
    k = int(round(math.log2(size)))
    if 2 ** k != size or size < 16:
        raise ValueError(f"image size must be a power of two >= 16, got {size}")
    return k - 2


class Generator(nn.Module):
    def __init__(self, size: int = 128, z_dim: int = 128, ngf: int = 32, last_layer: str = "baseline",
                 max_ch: int = 512, init: str = "dcgan"):
        super().__init__()
        self.size, self.z_dim = size, z_dim
        self.last_layer = LastLayerSpec.parse(last_layer)
        n = n_doublings(size)
        ch = [min(ngf * 2 ** i, max_ch) for i in range(n - 1, -1, -1)]  # at 4, 8, ..., size/2
        layers = [nn.ConvTranspose2d(z_dim, ch[0], 4, 1, 0, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU(True)]
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        self.body = nn.Sequential(*layers)
        self.last_in_channels = ch[-1]
        self.last = self.last_layer.build(ch[-1], 3)
        apply_init(self, init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.last(self.body(z.view(len(z), -1, 1, 1))))


class Discriminator(nn.Module):
    """``features(x)`` is the last 4x4 map and ``logit(h)`` the head on it; ``stages(x)`` also
    gives the map one stage earlier (the local features of InfoMax-GAN); ``new_logit_head()`` a
    freshly initialised head of the same shape. Objectives that need more outputs register
    their heads as ``D.heads`` and read these."""

    def __init__(self, size: int = 128, ndf: int = 32, norm: str = "batch", max_ch: int = 512, init: str = "dcgan"):
        super().__init__()
        n = n_doublings(size)
        ch = [min(ndf * 2 ** i, max_ch) for i in range(n)]
        layers = [nn.Conv2d(3, ch[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for a, b in zip(ch[:-1], ch[1:]):
            self.local_end, self.local_channels = len(layers), a
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), make_norm(norm, b), nn.LeakyReLU(0.2, True)]
        self.trunk = nn.Sequential(*layers)
        self.feature_channels = ch[-1]
        self.head = nn.Conv2d(ch[-1], 1, 4, 1, 0)
        self.init = init
        self.heads = nn.ModuleDict()
        apply_init(self, init)

    def new_logit_head(self) -> nn.Module:
        head = nn.Conv2d(self.feature_channels, 1, 4, 1, 0)
        apply_init(head, self.init)
        return head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(local, last)``: the map before the last stride-2 block and the last map."""
        local = self.trunk[:self.local_end](x)
        return local, self.trunk[self.local_end:](local)

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h).view(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.trunk(x))


def make_norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "group":
        return nn.GroupNorm(1, ch)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def apply_init(net: nn.Module, init: str) -> None:
    """``"dcgan"``: :func:`dcgan_init`; ``"pytorch"``: keep PyTorch's default initialisation."""
    if init == "dcgan":
        net.apply(dcgan_init)
    elif init != "pytorch":
        raise ValueError(f"unknown initialisation {init!r}: dcgan or pytorch")


def dcgan_init(m: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)

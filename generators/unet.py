"""A small DDPM U-Net (Ho et al. 2020) whose up-blocks upsample by a spec string.

With widths ``w_i = ch * ch_mult[i]`` (level 0 at the input's resolution, ``L = len(ch_mult) - 1``
stride-2 downsamplings):

in:   conv 3x3 (channels -> w_0)
down: per level ``n_res`` residual blocks (time embedding added), the output kept as a skip, then a
      stride-2 3x3 conv (w_i -> w_i) on all but the lowest level
mid:  residual block, self-attention (``attn``), residual block
up:   per level from the lowest, an **up-block**: x2 by the layers of the spec
      (:meth:`~forensics.generators.layers.LastLayerSpec.build`, w_{i+1} -> w_i), the skip
      concatenated, ``n_res`` residual blocks
out:  GroupNorm + SiLU + conv 3x3 to the channels (zero-initialised, as in DDPM: the net starts at eps = 0)

The time embedding is DDPM's: sinusoidal (w_0 wide), then Linear-SiLU-Linear to ``4 * w_0``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forensics.generators.blocks import (
    Attention,
    ResBlock,
    conv3,
    downsample,
    group_norm,
    timestep_embedding,
    up_layers,
    up_specs,
)
from forensics.generators.layers import LastLayerSpec


class UNet(nn.Module):
    def __init__(self, channels: int, params: dict, padding: str, last_layer: str, inner_layer: str | None = None):
        super().__init__()
        w = [int(params["ch"]) * int(m) for m in params["ch_mult"]]
        n_res, L = int(params["n_res"]), len(w) - 1
        self.widths, self.t_dim = w, 4 * w[0]
        self.specs = up_specs(L, last_layer, inner_layer)
        self.time = nn.Sequential(nn.Linear(w[0], self.t_dim), nn.SiLU(), nn.Linear(self.t_dim, self.t_dim))
        self.conv_in = conv3(channels, w[0], padding)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c = w[0]
        for i in range(L + 1):
            self.down.append(nn.ModuleList(ResBlock(c if r == 0 else w[i], w[i], padding, self.t_dim)
                                           for r in range(n_res)))
            c = w[i]
            if i < L:
                self.downsample.append(downsample(w[i], padding))
        self.mid1 = ResBlock(w[L], w[L], padding, self.t_dim)
        self.attn = Attention(w[L]) if params["attn"] else nn.Identity()
        self.mid2 = ResBlock(w[L], w[L], padding, self.t_dim)
        levels = list(range(L - 1, -1, -1))
        self.ups = nn.ModuleList(up_layers(s, w[i + 1], w[i], padding) for s, i in zip(self.specs, levels))
        self.up = nn.ModuleList(nn.ModuleList(ResBlock(2 * w[i] if r == 0 else w[i], w[i], padding, self.t_dim)
                                              for r in range(n_res)) for i in levels)
        self.norm_out, self.conv_out = group_norm(w[0]), conv3(w[0], channels, padding)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The predicted noise of ``x`` at integer timesteps ``t`` ``(N,)``."""
        temb = self.time(timestep_embedding(t, self.widths[0]))
        h = self.conv_in(x)
        skips = []
        for i, blocks in enumerate(self.down):
            for b in blocks:
                h = b(h, temb)
            if i < len(self.downsample):
                skips.append(h)
                h = self.downsample[i](h)
        h = self.mid2(self.attn(self.mid1(h, temb)), temb)
        for up, blocks in zip(self.ups, self.up):
            h = torch.cat([up(h), skips.pop()], dim=1)
            for b in blocks:
                h = b(h, temb)
        return self.conv_out(F.silu(self.norm_out(h)))

    def describe(self) -> list[str]:
        """The up-blocks' upsampling layers, lowest resolution first."""
        w = self.widths
        return [LastLayerSpec.parse(s).describe(w[i + 1], w[i]) for s, i in zip(self.specs, range(len(w) - 2, -1, -1))]

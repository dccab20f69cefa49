"""The last-upsampling-layer spec of Chandrasegaran et al. (CVPR 2021) and its factory.

A spec string names the layers that make the generator's last x2 upsampling:

``baseline``
    one stride-2 transposed convolution, kernel 4, padding 1 (as in every other layer).
``X.Y.Z``
    ``X`` the x2 upsampling: ``N`` nearest neighbour, ``B`` bilinear (align_corners=True),
    ``Z`` zero insertion (a stride-2 transposed conv with a fixed one-hot 2x2 kernel);
    then ``Y`` convolutions (1 or 3) of kernel ``Z`` (3, 5 or 7), 'same' padding, with no
    normalisation or activation between them (so a 3-conv stack is linear), the first
    ``Y - 1`` keeping the input's channels.
``P.Y.Z``
    pixel shuffle (sub-pixel convolution, Shi et al. 2016; not one of the paper's setups): ``Y``
    convolutions of kernel ``Z`` at the input's resolution, the last one producing ``4 * out``
    channels, then ``PixelShuffle(2)``. Like a transposed convolution, its four output phases
    come from different filters.

``parse(str(spec)) == spec``; :data:`PAPER_SETUPS` lists the paper's 13 setups and
:data:`DECODER_SETUPS` adds pixel shuffle (``P.1.3``), the extra spec of the diffusion-era sources.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

UPSAMPLERS = {"N": "nearest", "B": "bilinear", "Z": "zero insertion", "P": "pixel shuffle"}
PAPER_SETUPS = ("baseline",) + tuple(f"{x}.{y}.{k}" for x in "NZB" for y, k in ((1, 3), (1, 5), (1, 7), (3, 5)))
PIXEL_SHUFFLE = "P.1.3"
DECODER_SETUPS = PAPER_SETUPS + (PIXEL_SHUFFLE,)


class ZeroInsertion(nn.Module):
    """x2 upsampling that puts each input pixel at the even positions and zeros elsewhere
    (equal to ``conv_transpose2d`` with a one-hot 2x2 kernel and stride 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        out = x.new_zeros(n, c, 2 * h, 2 * w)
        out[:, :, ::2, ::2] = x
        return out


@dataclass(frozen=True)
class LastLayerSpec:
    mode: str = "baseline"  # baseline | N | B | Z | P
    n_convs: int = 0
    kernel: int = 0

    @classmethod
    def parse(cls, text: "str | LastLayerSpec") -> "LastLayerSpec":
        if isinstance(text, LastLayerSpec):
            return text
        t = text.strip()
        if t.lower() == "baseline":
            return cls()
        parts = t.split(".")
        try:
            mode, y, k = parts[0].upper(), int(parts[1]), int(parts[2])
            if len(parts) != 3:
                raise ValueError
        except (IndexError, ValueError):
            raise ValueError(f"bad last-layer spec {text!r}: use 'baseline' or X.Y.Z such as N.1.5")
        if mode not in UPSAMPLERS:
            raise ValueError(f"bad last-layer spec {text!r}: X must be N, B, Z or P")
        if y < 1 or k < 1 or k % 2 == 0:
            raise ValueError(f"bad last-layer spec {text!r}: Y >= 1 convolutions of odd kernel size Z")
        return cls(mode, y, k)

    def __str__(self) -> str:
        return "baseline" if self.mode == "baseline" else f"{self.mode}.{self.n_convs}.{self.kernel}"

    def describe(self, in_ch: int = 32, out_ch: int = 3) -> str:
        """Human-readable layer list, e.g. ``nearest x2 -> conv5x5 32->3``."""
        if self.mode == "baseline":
            return f"transposed conv 4x4 stride 2 {in_ch}->{out_ch}"
        chans = [in_ch] * self.n_convs + [out_ch * (4 if self.mode == "P" else 1)]
        convs = ", ".join(f"conv{self.kernel}x{self.kernel} {a}->{b}" for a, b in zip(chans[:-1], chans[1:]))
        if self.mode == "P":
            return f"{convs} -> pixel shuffle x2"
        return f"{UPSAMPLERS[self.mode]} x2 -> {convs}"

    def build(self, in_ch: int, out_ch: int, bias: bool = True, padding_mode: str = "zeros") -> nn.Sequential:
        """The layers: ``(N, in_ch, H, W)`` -> ``(N, out_ch, 2H, 2W)``. ``padding_mode`` is that of
        the 'same' convolutions (``zeros``, as in the paper, or ``replicate``, ``reflect``,
        ``circular``); the baseline's transposed convolution has none (its padding crops the output)."""
        if self.mode == "baseline":
            return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=bias))
        chans = [in_ch] * self.n_convs + [out_ch * (4 if self.mode == "P" else 1)]
        convs = [nn.Conv2d(a, b, self.kernel, 1, self.kernel // 2, bias=bias, padding_mode=padding_mode)
                 for a, b in zip(chans[:-1], chans[1:])]
        if self.mode == "P":
            return nn.Sequential(*convs, nn.PixelShuffle(2))
        up = {"N": lambda: nn.Upsample(scale_factor=2, mode="nearest"),
              "B": lambda: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
              "Z": ZeroInsertion}[self.mode]()
        return nn.Sequential(up, *convs)


def zero_insertion_reference(x: torch.Tensor) -> torch.Tensor:
    """Zero insertion written as the paper defines it: a depthwise stride-2 transposed
    convolution with a one-hot 2x2 kernel (used to test :class:`ZeroInsertion`)."""
    c = x.shape[1]
    k = torch.zeros(c, 1, 2, 2, dtype=x.dtype)
    k[:, 0, 0, 0] = 1.0
    return F.conv_transpose2d(x, k, stride=2, groups=c)

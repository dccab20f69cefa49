"""StarGAN (Choi et al., 2018) with a swappable last upsampling layer.

Generator: 7x7 conv of image + tiled target labels, two stride-2 down convs, residual
blocks, two x2 upsamplings, 7x7 conv to RGB and tanh. The second (last) upsampling is
built from a last-layer spec: ``baseline`` is the original transposed convolution;
``N/B/Z.Y.K`` replaces it by that upsampling and convolutions, followed, as in
Chandrasegaran et al.'s StarGAN, by InstanceNorm and ReLU.
Discriminator: stride-2 4x4 convs with LeakyReLU 0.01, a 3x3 patch "real/fake" output
and a classifier of the domain labels.
Losses (official defaults): WGAN with a one-centred gradient penalty (lambda 10), label
classification on reals (D) and translations (G, lambda_cls 1), cycle reconstruction L1
(lambda_rec 10), 5 critic steps per generator step.

InstanceNorm here always normalises with the instance's own statistics (no running
averages), so translating one image or a batch gives the same result.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from forensics.generators.layers import LastLayerSpec
from forensics.generators.objectives import gradient_penalty
from forensics.generators.optim import adam_pair, optimise
from forensics.generators.tensors import to_uint8
from forensics.report.figures import image_grid


def _inorm(ch: int) -> nn.Module:
    return nn.InstanceNorm2d(ch, affine=True)


class ResidualBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), _inorm(ch), nn.ReLU(True),
                                  nn.Conv2d(ch, ch, 3, 1, 1, bias=False), _inorm(ch))

    def forward(self, x):
        return x + self.body(x)


class StarGenerator(nn.Module):
    def __init__(self, c_dim: int, conv_dim: int = 64, n_res: int = 6, last_layer: str = "baseline"):
        super().__init__()
        d = conv_dim
        self.c_dim = c_dim
        self.last_layer = LastLayerSpec.parse(last_layer)
        self.net = nn.Sequential(
            nn.Conv2d(3 + c_dim, d, 7, 1, 3, bias=False), _inorm(d), nn.ReLU(True),
            nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), _inorm(2 * d), nn.ReLU(True),
            nn.Conv2d(2 * d, 4 * d, 4, 2, 1, bias=False), _inorm(4 * d), nn.ReLU(True),
            *[ResidualBlock(4 * d) for _ in range(n_res)],
            nn.ConvTranspose2d(4 * d, 2 * d, 4, 2, 1, bias=False), _inorm(2 * d), nn.ReLU(True),
            *self.last_layer.build(2 * d, d, bias=False), _inorm(d), nn.ReLU(True),
            nn.Conv2d(d, 3, 7, 1, 3, bias=False), nn.Tanh())
        self.last_in_channels = 2 * d

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c = c.view(len(c), -1, 1, 1).expand(-1, -1, x.shape[2], x.shape[3])
        return self.net(torch.cat([x, c], dim=1))


class StarDiscriminator(nn.Module):
    def __init__(self, size: int, c_dim: int, conv_dim: int = 64, repeat_num: int | None = None):
        super().__init__()
        repeat_num = repeat_num or int(round(math.log2(size))) - 1
        layers, ch = [nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)], conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(ch, 2 * ch, 4, 2, 1), nn.LeakyReLU(0.01)]
            ch *= 2
        self.trunk = nn.Sequential(*layers)
        k = size // 2 ** repeat_num
        self.src = nn.Conv2d(ch, 1, 3, 1, 1, bias=False)
        self.cls = nn.Conv2d(ch, c_dim, k, bias=False)

    def forward(self, x):
        h = self.trunk(x)
        return self.src(h), self.cls(h).view(len(x), -1)


def _cls_loss(logits, target):
    return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(logits)


class StarGANTask:
    n_critic = 5

    def __init__(self, config, device: torch.device, gen: torch.Generator):
        from forensics.generators.quant import quantize_module

        p = config.params
        self.config, self.device, self.gen = config, device, gen
        self.attrs = list(config.attrs)
        c = len(self.attrs)
        torch.manual_seed(int(config.seed))
        self.G = quantize_module(StarGenerator(c, p["conv_dim"], p["n_res"], config.last_layer), config.quant,
                                 lr=p["lr_g"]).to(device)
        self.D = quantize_module(StarDiscriminator(int(config.size), c, p["conv_dim"]), config.quant,
                                 lr=p["lr_d"]).to(device)
        self.optimizers = adam_pair(self.G, self.D, p)
        self.modules = {"G": self.G, "D": self.D}
        self.p = p
        self.fixed = {}

    def init_fixed(self, next_batch) -> None:
        b = next_batch()
        self.fixed = {"images": b["images"][:8].clone(), "labels": b["labels"][:8].clone()}

    def train_step(self, next_batch) -> dict:
        G, D, p = self.G, self.D, self.p
        opt_g, opt_d = self.optimizers["G"], self.optimizers["D"]
        for _ in range(self.n_critic):
            b = next_batch()
            x, c_org = b["images"], b["labels"]
            c_trg = c_org[torch.randperm(len(x), generator=self.gen).to(self.device)]
            with torch.no_grad():
                fake = G(x, c_trg)
            src_r, cls_r = D(x)
            src_f, _ = D(fake)
            adv = src_f.mean() - src_r.mean()
            cls = _cls_loss(cls_r, c_org)
            gp = gradient_penalty(lambda t: D(t)[0], x, fake, 1.0, self.gen)
            loss_d = adv + p["lambda_cls"] * cls + p["lambda_gp"] * gp
            optimise(opt_d, loss_d)
        D.requires_grad_(False)
        fake = G(x, c_trg)
        src_f, cls_f = D(fake)
        g_adv, g_cls = -src_f.mean(), _cls_loss(cls_f, c_trg)
        rec = (x - G(fake, c_org)).abs().mean()
        loss_g = g_adv + p["lambda_cls"] * g_cls + p["lambda_rec"] * rec
        D.requires_grad_(True)
        optimise(opt_g, loss_g)
        return {"d": loss_d.item(), "d_cls": cls.item(), "gp": gp.item(), "g": loss_g.item(),
                "g_cls": g_cls.item(), "rec": rec.item()}

    @torch.no_grad()
    def translate(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Translate images ``x`` in [-1, 1] to target labels ``c`` (0/1 per attribute)."""
        return self.G(x.to(self.device), c.to(self.device).float())

    def sample_grid(self) -> np.ndarray:
        """One row per fixed image: the input, then each attribute flipped in turn."""
        x, c = self.fixed["images"], self.fixed["labels"]
        cols = [x]
        for j in range(c.shape[1]):
            t = c.clone()
            t[:, j] = 1 - t[:, j]
            cols.append(self.translate(x, t))
        tiles = torch.stack(cols, dim=1).flatten(0, 1)
        return image_grid(to_uint8(tiles), cols=len(cols))

    def describe(self) -> dict:
        return {"generator_last_layer": self.G.last_layer.describe(self.G.last_in_channels,
                                                                   self.G.last_in_channels // 2)
                + " -> InstanceNorm -> ReLU", "attributes": self.attrs,
                "G_parameters": sum(q.numel() for q in self.G.parameters()),
                "D_parameters": sum(q.numel() for q in self.D.parameters()), "n_critic": self.n_critic}

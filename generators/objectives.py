"""GAN training objectives, in Mimicry's pattern: each objective overrides only its losses.

An objective has ``n_critic`` (discriminator steps per generator step) and two methods,
``d_loss(D, real, fake)`` and ``g_loss(D, fake, real)``, each returning ``(loss, logs)``.
A further objective (InfoMax-GAN, SSGAN-MS, DAG) subclasses :class:`Objective`, may add
discriminator heads in :meth:`Objective.heads` (they are trained with D and saved with
it, and read ``D.features(x)``), and overrides the two losses; the trainer knows nothing
else about it. Randomness goes through ``self.generator`` (set by the trainer) so runs
and resumed runs are reproducible.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Objective:
    name = "base"
    n_critic = 1
    #: discriminator normalisation the objective wants ("batch" or "group")
    d_norm = "batch"

    def __init__(self):
        self.generator: torch.Generator | None = None

    def heads(self, feature_channels: int) -> nn.ModuleDict:
        """Extra discriminator heads (none here)."""
        return nn.ModuleDict()

    def d_loss(self, D, real, fake):  # pragma: no cover - abstract
        raise NotImplementedError

    def g_loss(self, D, fake, real=None):  # pragma: no cover - abstract
        raise NotImplementedError


class DCGANLoss(Objective):
    """Binary cross-entropy; the generator uses the non-saturating loss."""

    name = "dcgan"

    def d_loss(self, D, real, fake):
        lr, lf = D(real), D(fake)
        loss = F.softplus(-lr).mean() + F.softplus(lf).mean()
        return loss, {"d": loss.item()}

    def g_loss(self, D, fake, real=None):
        loss = F.softplus(-D(fake)).mean()
        return loss, {"g": loss.item()}


class LSGANLoss(Objective):
    """Least squares (Mao et al.): targets 1 for real, 0 for fake."""

    name = "lsgan"

    def d_loss(self, D, real, fake):
        loss = 0.5 * ((D(real) - 1) ** 2).mean() + 0.5 * (D(fake) ** 2).mean()
        return loss, {"d": loss.item()}

    def g_loss(self, D, fake, real=None):
        loss = 0.5 * ((D(fake) - 1) ** 2).mean()
        return loss, {"g": loss.item()}


def gradient_penalty(D, real: torch.Tensor, fake: torch.Tensor, center: float = 0.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``E[(|grad D(x_hat)| - center)^2]`` on random interpolates of real and fake.

    ``center = 0`` is the zero-centred penalty (Chandrasegaran et al.'s WGAN-GP),
    ``center = 1`` Gulrajani et al.'s (and StarGAN's). ``D`` may return any shape per
    sample (a patch map); its outputs are summed, so each sample's gradient is its own.
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real.device, real.dtype)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = D(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    norm = grad.flatten(1).norm(dim=1)
    return ((norm - center) ** 2).mean()


class WGANGPLoss(Objective):
    """Wasserstein loss with a gradient penalty (``lambda_gp = 10``; zero-centred by
    default as in Chandrasegaran et al.), 5 critic steps per generator step, and a
    critic normalised by GroupNorm(1) instead of BatchNorm."""

    name = "wgan-gp"
    n_critic = 5
    d_norm = "group"

    def __init__(self, lambda_gp: float = 10.0, center: float = 0.0):
        super().__init__()
        self.lambda_gp, self.center = lambda_gp, center

    def d_loss(self, D, real, fake):
        wd = D(real).mean() - D(fake).mean()
        gp = gradient_penalty(D, real, fake, self.center, self.generator)
        loss = -wd + self.lambda_gp * gp
        return loss, {"d": loss.item(), "wd": wd.item(), "gp": gp.item()}

    def g_loss(self, D, fake, real=None):
        loss = -D(fake).mean()
        return loss, {"g": loss.item()}


OBJECTIVES = {"dcgan": DCGANLoss, "lsgan": LSGANLoss, "wgan-gp": WGANGPLoss}

"""Named hyper-parameter presets.

``paper``: Chandrasegaran et al.'s settings (Adam betas (0.5, 0.999), batch 64, z = 128,
widths 32, seed 2021; learning rate 1e-4 for DCGAN and LSGAN, 2e-4 for WGAN-GP) and
StarGAN's defaults (Choi et al.: conv_dim 64, 6 residual blocks, batch 16, lr 1e-4,
lambda_cls 1, lambda_rec 10, lambda_gp 10, 5 critic steps). The paper trains for epochs
with FID-based early stopping; here the length is ``--steps``.

``tiny``: the same networks at half the width (a quarter for StarGAN, with 2 residual
blocks), z = 64, learning rate 2e-4, seed 0, for CPU runs: 32x32 DCGANs train at about
15 steps per second on 2 cores.
"""
from __future__ import annotations

from forensics.core.errors import UserError

#: ``init``: "pytorch" keeps PyTorch's default initialisation, as Chandrasegaran et al.'s code does
#: (the faithful ``paper`` preset); "dcgan" draws conv weights from N(0, 0.02) (``tiny``)
_GAN = {"beta1": 0.5, "beta2": 0.999, "batch": 64, "z_dim": 128, "ngf": 32, "ndf": 32, "seed": 2021, "init": "pytorch"}
_PAPER = {
    "dcgan": {**_GAN, "lr_g": 1e-4, "lr_d": 1e-4},
    "lsgan": {**_GAN, "lr_g": 1e-4, "lr_d": 1e-4},
    "wgan-gp": {**_GAN, "lr_g": 2e-4, "lr_d": 2e-4},
    "stargan": {"beta1": 0.5, "beta2": 0.999, "batch": 16, "lr_g": 1e-4, "lr_d": 1e-4, "conv_dim": 64,
                "n_res": 6, "lambda_cls": 1.0, "lambda_rec": 10.0, "lambda_gp": 10.0, "seed": 2021},
}
#: what ``tiny`` changes in ``paper``
_TINY = {"dcgan": {"lr_g": 2e-4, "lr_d": 2e-4, "z_dim": 64, "ngf": 16, "ndf": 16, "seed": 0, "init": "dcgan"},
         "stargan": {"conv_dim": 16, "n_res": 2, "seed": 0}}
_TINY["lsgan"] = _TINY["wgan-gp"] = _TINY["dcgan"]

PRESETS: dict[str, dict[str, dict]] = {
    "paper": _PAPER,
    "tiny": {gan: {**p, **_TINY[gan]} for gan, p in _PAPER.items()},
}

GANS = ("dcgan", "lsgan", "wgan-gp", "stargan")


def preset(name: str, gan: str, **overrides) -> dict:
    """The hyper-parameters of preset ``name`` for ``gan``, with ``overrides`` applied."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    if gan not in PRESETS[name]:
        raise UserError(f"unknown GAN {gan!r}; choose from {', '.join(GANS)}")
    p = dict(PRESETS[name][gan])
    for k, v in overrides.items():
        if v is not None:
            if k not in p:
                raise UserError(f"preset {name!r} has no parameter {k!r} for {gan}")
            p[k] = type(p[k])(v)
    return p

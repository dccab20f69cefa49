"""Direct low-bit quantization (after Hoang, Do, Nguyen & Cheung, arXiv 2012.13762).

No public code exists; this is the reconstruction in the project's method notes (B1):

* **Weights** (:class:`LevelWeight`): a layer's weights are ``v[a(i)]``: ``2^b`` learnable
  levels ``v`` and one level index per weight. There is no float copy of the weights. The
  task loss trains the levels directly (``dL/dv_k`` is the sum of the gradients of the weights
  at level k; the levels are ordinary parameters, so the model's optimiser steps them) and
  moves weights between levels: each weight's gradient, scaled by its running RMS (as in
  RMSprop), accumulates in a per-weight pending step ``r``; once ``v[a] + r`` is nearer another
  level the weight takes that level and ``r`` is cleared. The move is applied at the layer's
  next forward pass in training mode (so every ``backward`` of a step contributes first).
* **Activations** (:class:`ActQuant`): a uniform quantizer ``s * round(clip(x, lo, alpha) / s)``
  (``lo = 0``, or ``-alpha`` when the activations have negative values) with a straight-through
  gradient, whose clip ``alpha`` minimises the **sum over channels of each channel's error
  normalised by that channel's energy** (:func:`choose_clip` with ``criterion="channel"``),
  rather than the total squared error that a few high-variance channels dominate. It is
  searched on a grid on the first training batch and every ``calib_every`` batches after,
  tracked by an exponential moving average.

:func:`quantize_module` swaps every ``Conv2d``, ``ConvTranspose2d`` and ``Linear`` of any model
(generator, discriminator, CNN detector) for a :class:`QuantizedLayer`; biases stay float.
The spec string is ``wNaM`` (N-bit weights, M-bit activations; M >= 16 leaves activations
float) or ``none``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class QuantSpec:
    w_bits: int | None = None
    a_bits: int | None = None

    @classmethod
    def parse(cls, text: "str | QuantSpec") -> "QuantSpec":
        if isinstance(text, QuantSpec):
            return text
        t = str(text).strip().lower()
        if t in ("none", "", "float"):
            return cls()
        m = re.fullmatch(r"w(\d+)a(\d+)", t)
        if not m or not 1 <= int(m[1]) <= 8 or not 1 <= int(m[2]) <= 32:
            raise ValueError(f"quantization {text!r}: expected none or wNaM with 1 <= N <= 8 weight bits "
                             f"and 1 <= M <= 32 activation bits (M >= 16: float activations), e.g. w4a4")
        a = int(m[2])
        return cls(int(m[1]), a if a < 16 else None)

    @property
    def enabled(self) -> bool:
        return self.w_bits is not None

    def __str__(self) -> str:
        return "none" if not self.enabled else f"w{self.w_bits}a{self.a_bits or 32}"


# ----------------------------------------------------------------------------- weights
class _LevelGather(torch.autograd.Function):
    """``levels[index]`` whose backward sums each level's gradient in a fixed order.

    The gradient of a plain gather is an accumulating scatter (``index_put_``) that on a CPU, from
    32768 elements up and with more than one thread, adds with float atomics in whatever order the
    threads run, so two identical runs differ in the last bits. On a CPU the backward here is
    ``torch.bincount`` with weights: one sequential pass in the gradient's memory order, the same
    float32 sums, bit for bit, as the one-thread scatter, whatever the thread count. On other
    devices it is that scatter (sort-based, hence deterministic, under
    ``torch.use_deterministic_algorithms``; ``bincount`` has no such mode there)."""

    @staticmethod
    def forward(ctx, levels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.k = levels.numel()
        return levels[index]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        (index,) = ctx.saved_tensors
        if grad.device.type == "cpu":  # in the gradient's memory order (a conv's is often permuted), as the scatter
            order = sorted(range(grad.dim()), key=lambda d: -grad.stride(d))
            g, i = grad.permute(order).reshape(-1), index.permute(order).reshape(-1)
            return torch.bincount(i, weights=g, minlength=ctx.k), None
        return grad.new_zeros(ctx.k).index_put_((index,), grad, accumulate=True), None


class LevelWeight(nn.Module):
    """The weight tensor of one layer as ``2^bits`` learnable levels and a level index per weight."""

    def __init__(self, w: torch.Tensor, bits: int, lr: float = 1e-4, beta: float = 0.999, eps: float = 1e-8):
        super().__init__()
        k = 2 ** bits
        w = w.detach().float()
        flat = w.flatten()
        if flat.numel() > 1 << 24:  # torch.quantile's limit; a strided subsample is as good for levels
            flat = flat[:: flat.numel() // (1 << 23) + 1]
        q = (torch.arange(k, dtype=torch.float32) + 0.5) / k
        levels = torch.quantile(flat, q)
        self.levels = nn.Parameter(levels)
        self.register_buffer("assign", self.nearest(w, levels).to(torch.uint8))
        self.register_buffer("pending", torch.zeros_like(w))  # accumulated gradient of this step
        self.register_buffer("step_", torch.zeros_like(w))   # the per-weight move r not yet taken
        self.register_buffer("sq", torch.zeros_like(w))      # running mean of squared gradients
        self.register_buffer("t", torch.zeros((), dtype=torch.int64))
        self.register_buffer("has_pending", torch.zeros((), dtype=torch.bool))
        self.lr, self.beta, self.eps = lr, beta, eps

    @staticmethod
    def nearest(w: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """Index of the nearest level of every weight (``levels`` in any order)."""
        order = torch.argsort(levels)
        s = levels[order]
        rank = torch.bucketize(w.contiguous(), (s[1:] + s[:-1]) / 2)
        return order[rank]

    @torch.no_grad()
    def _accumulate(self, g: torch.Tensor) -> None:
        self.pending.add_(g)
        self.has_pending.fill_(True)

    @torch.no_grad()
    def apply_pending(self) -> None:
        """Move weights between levels by the gradient accumulated since the last move."""
        if not bool(self.has_pending):
            return
        g = self.pending
        self.t += 1
        self.sq.mul_(self.beta).addcmul_(g, g, value=1 - self.beta)
        vhat = self.sq / (1 - self.beta ** int(self.t))
        self.step_.add_(g / (vhat.sqrt() + self.eps), alpha=-self.lr)
        a = self.assign.long()
        target = self.levels[a] + self.step_
        new = self.nearest(target, self.levels)
        moved = new != a
        self.assign.copy_(new.to(torch.uint8))
        self.step_.masked_fill_(moved, 0.0)
        self.pending.zero_()
        self.has_pending.fill_(False)

    def forward(self) -> torch.Tensor:
        if self.training:
            self.apply_pending()
        w = _LevelGather.apply(self.levels, self.assign.long())
        if self.training and w.requires_grad:
            w.register_hook(self._accumulate)
        return w


# ------------------------------------------------------------------------- activations
def fake_quantize(x: torch.Tensor, alpha: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
    """``s * round(clip(x, lo, alpha) / s)``: ``2^bits - 1`` steps over ``[0, alpha]``, or
    ``2^(bits-1) - 1`` steps each side of 0 over ``[-alpha, alpha]`` when ``signed``."""
    n = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
    n = max(n, 1)
    lo = -alpha if signed else torch.zeros_like(alpha)
    xc = torch.minimum(torch.maximum(x, lo), alpha)
    s = alpha / n
    return torch.round(xc / s) * s, xc


def channel_errors(x: torch.Tensor, alpha, bits: int, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel squared quantization error of ``x`` (channels on dim 1) and per-channel energy."""
    q, _ = fake_quantize(x, torch.as_tensor(alpha, dtype=x.dtype), bits, signed)
    dims = [d for d in range(x.dim()) if d != 1]
    return ((q - x) ** 2).sum(dims), (x ** 2).sum(dims)


def choose_clip(x: torch.Tensor, bits: int, signed: bool, criterion: str = "channel", grid: int = 64) -> torch.Tensor:
    """The clip on a grid of ``grid`` fractions of ``max |x|`` that minimises the sum over channels of
    the channel's error over its energy (``criterion="channel"``) or the total error (``"total"``)."""
    x = x.detach().float()
    top = x.abs().max() if signed else x.clamp_min(0).max()
    if top <= 0:
        return torch.tensor(1.0)
    best, best_a = None, top
    for j in range(1, grid + 1):
        a = top * j / grid
        err, energy = channel_errors(x, a, bits, signed)
        score = (err / energy.clamp_min(1e-12)).sum() if criterion == "channel" else err.sum()
        if best is None or score < best:
            best, best_a = score, a
    return best_a.detach().clone()


class ActQuant(nn.Module):
    """Activation quantizer with a per-channel-normalised-error clip (see module doc)."""

    def __init__(self, bits: int, calib_every: int = 50, momentum: float = 0.1, calib_n: int = 16):
        super().__init__()
        self.bits, self.calib_every, self.momentum, self.calib_n = bits, calib_every, momentum, calib_n
        self.register_buffer("alpha", torch.ones(()))
        self.register_buffer("signed", torch.zeros((), dtype=torch.bool))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            c = int(self.count)
            if c % self.calib_every == 0:
                with torch.no_grad():
                    sample = x[: self.calib_n]
                    if c == 0:
                        self.signed.fill_(bool(sample.min() < 0))
                    a = choose_clip(sample, self.bits, bool(self.signed)).to(self.alpha)
                    self.alpha.copy_(a if c == 0 else (1 - self.momentum) * self.alpha + self.momentum * a)
            self.count += 1
        q, xc = fake_quantize(x, self.alpha.clone(), self.bits, bool(self.signed))  # later calibrations
        return xc + (q - xc).detach()  # straight-through inside the clip, zero gradient outside


# ------------------------------------------------------------------------------ layers
class QuantizedLayer(nn.Module):
    """A ``Conv2d``, ``ConvTranspose2d`` or ``Linear`` computing with level weights and quantized inputs."""

    KINDS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)

    def __init__(self, layer: nn.Module, spec: QuantSpec, lr: float = 1e-4):
        super().__init__()
        if not isinstance(layer, self.KINDS):
            raise TypeError(f"cannot quantize a {type(layer).__name__}")
        w = layer.weight.detach()
        del layer.weight  # the layer keeps its bias and geometry; the weights live only as levels
        self.layer = layer
        self.wq = LevelWeight(w, spec.w_bits, lr)
        self.act = ActQuant(spec.a_bits) if spec.a_bits else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, m = self.wq(), self.layer
        x = self.act(x)
        if isinstance(m, nn.ConvTranspose2d):
            return F.conv_transpose2d(x, w, m.bias, m.stride, m.padding, m.output_padding, m.groups, m.dilation)
        if isinstance(m, nn.Conv2d):
            return m._conv_forward(x, w, m.bias)
        return F.linear(x, w, m.bias)

    def weight_values(self) -> torch.Tensor:
        """The layer's current weights (for inspection)."""
        with torch.no_grad():
            return self.wq.levels[self.wq.assign.long()]


def quantize_module(model: nn.Module, spec: "str | QuantSpec", lr: float = 1e-4) -> nn.Module:
    """Replace, in place, every conv/linear layer of ``model`` by a :class:`QuantizedLayer`
    (``lr``: the step size of the weights' moves between levels). Returns ``model``."""
    spec = QuantSpec.parse(spec)
    if not spec.enabled:
        return model
    for name, child in list(model.named_children()):
        if isinstance(child, QuantizedLayer):
            continue
        if isinstance(child, QuantizedLayer.KINDS):
            setattr(model, name, QuantizedLayer(child, spec, lr))
        else:
            quantize_module(child, spec, lr)
    return model

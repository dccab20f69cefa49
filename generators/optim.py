"""The pieces of one training step that every task shares: its optimisers, a gradient step, and
subnormal floats flushed while training."""
from __future__ import annotations

from contextlib import contextmanager

import torch


def adam_pair(G: torch.nn.Module, D: torch.nn.Module, p: dict) -> dict:
    """The Adam optimisers of a generator/discriminator pair, from a preset's parameters."""
    betas = (p["beta1"], p["beta2"])
    return {"G": torch.optim.Adam(G.parameters(), p["lr_g"], betas),
            "D": torch.optim.Adam(D.parameters(), p["lr_d"], betas)}


def optimise(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One gradient step of ``opt`` on ``loss``."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@contextmanager
def flush_denormal():
    """Subnormal floats flushed to zero while training: the tails of a sharp softmax (InfoNCE's
    backward) are subnormal and make CPU matrix products about 20x slower."""
    ok = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if ok:
            torch.set_flush_denormal(False)

"""The FID-driven training schedule of Chandrasegaran et al. (CVPR 2021): FID measured every epoch,
learning rate cut when it plateaus, early stopping with patience 5, samples drawn from the
best-FID checkpoint. Trainer-agnostic: the monitor only sees ``(step, fid)`` and answers with
actions; the trainer owns models, optimisers and checkpoints.

How a trainer uses it::

    monitor = FidMonitor(FidSchedule.paper())            # or FidMonitor.from_state(saved) on resume
    for epoch in range(start, epochs):
        train_one_epoch()
        if not monitor.due(epoch):
            continue
        actions = monitor.update(step, fid_of_current_generator())
        if "save_best" in actions:
            save_checkpoint(run / "best.safetensors")     # sample from this one at the end
        if "cut_lr" in actions:
            for opt, base in zip(optimizers, base_lrs):
                for g in opt.param_groups:
                    g["lr"] = base * monitor.lr_scale
        save_json(run / "schedule.json", monitor.state_dict())   # resumes bit-identically
        if "stop" in actions:
            break

A measurement counts as an improvement when it is below the best so far by more than
``min_delta``; a NaN FID never improves. ``lr_patience`` evaluations without improvement since the
best (or since the last cut) cut the learning rate by ``lr_factor`` (at most ``max_cuts`` times);
``patience`` evaluations without improvement stop training.
"""
from __future__ import annotations

import dataclasses
import math
from functools import cache
from typing import Annotated

from forensics.core.config import Config, Count, Range
from forensics.core.errors import warn


@dataclasses.dataclass(frozen=True)
class FidSchedule(Config):
    every: Count = 1            # evaluate every ``every`` epochs (epochs counted from 0)
    patience: Count = 5         # evaluations without improvement before stopping
    lr_patience: Count = 2      # evaluations without improvement before a learning-rate cut
    lr_factor: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] = 0.5  # the learning rate's factor at each cut
    max_cuts: Annotated[int, Range(0)] = 3
    min_delta: Annotated[float, Range(0)] = 0.0
    n: Annotated[int, Range(2)] = 1000  # generated images per measurement (and real ones, at most the data's size)
    mode: str = "clean"       # FID resize mode (forensics.metrics.inception.MODES)

    def validate(self):
        from forensics.metrics.inception import MODES

        if self.mode not in MODES:
            raise ValueError(f"unknown FID resize mode {self.mode!r}; choose from {', '.join(MODES)}")

    @classmethod
    def paper(cls, **changes) -> "FidSchedule":
        """FID every epoch, early stopping with patience 5 (the paper); the plateau rule (halve the
        learning rate after 2 evaluations without improvement, at most 3 times) is this toolkit's
        reading of "learning rate cut on plateau", whose constants the paper does not give.
        ``n`` = 1000 generated images per measurement is this toolkit's CPU-sized default (an
        Inception pass runs at a few images/s on a 2-core CPU); the paper measures 10k vs 10k
        (``FidSchedule.paper(n=10000)``, on a GPU)."""
        return cls(**{**dict(every=1, patience=5, lr_patience=2, lr_factor=0.5, max_cuts=3), **changes})


#: said when the ``paper`` preset's schedule is left out for want of the Inception weights
NO_WEIGHTS = ("the paper preset's FID schedule is off: the Inception weights it measures with are not installed, "
              "so training runs its fixed number of steps (for the paper's schedule: {hint})")


@cache
def tell_no_weights(hint: str) -> None:
    """The :data:`NO_WEIGHTS` warning, once per process: a study builds its runs' configs many times, and
    a paper plan holds several studies (``tell_no_weights.cache_clear()`` says it again)."""
    warn(NO_WEIGHTS.format(hint=hint))


def preset_schedule(preset: str, gan: str, check: bool = True) -> FidSchedule | None:
    """The FID schedule preset ``preset`` brings for ``gan``: the paper's for the ``paper`` preset's
    unconditional GANs, else None. With ``check`` (the default is being taken, not a schedule asked
    for) it is None when the Inception weights are not installed, with a warning saying so and how to
    install them: a plain install trains the fixed number of steps instead of refusing to start. A
    schedule asked for explicitly still needs the weights (the trainer stops at once without them)."""
    if preset != "paper" or gan == "stargan":
        return None
    if check:
        import os

        from forensics.metrics.inception import INSTALL_HINT, weights_available

        # (a FORENSICS_INCEPTION that names no file is a mistake the trainer reports, not a plain install)
        if not weights_available() and not os.environ.get("FORENSICS_INCEPTION"):
            tell_no_weights(INSTALL_HINT)
            return None
    return FidSchedule.paper()


class FidMonitor:
    """Tracks FID measurements and says what the trainer should do after each one."""

    def __init__(self, schedule: FidSchedule = FidSchedule.paper()):
        self.schedule = schedule
        self.best_fid = math.inf
        self.best_step: int | None = None
        self.since_best = 0
        self.since_cut = 0
        self.cuts = 0
        self.lr_scale = 1.0
        self.stopped = False
        self.history: list[list] = []  # [step, fid, actions]

    def due(self, epoch: int) -> bool:
        """Whether FID is measured after epoch ``epoch`` (0-based)."""
        return (epoch + 1) % self.schedule.every == 0

    def update(self, step: int, fid: float) -> set[str]:
        """Record ``fid`` at ``step``; returns a subset of ``{"save_best", "cut_lr", "stop"}``."""
        if self.stopped:
            raise ValueError("the schedule already stopped training; no further FID is expected")
        s = self.schedule
        actions: set[str] = set()
        fid = float(fid)
        if not math.isnan(fid) and fid < self.best_fid - s.min_delta:
            self.best_fid, self.best_step = fid, int(step)
            self.since_best = self.since_cut = 0
            actions.add("save_best")
        else:
            self.since_best += 1
            self.since_cut += 1
            if self.since_best >= s.patience:
                actions.add("stop")
                self.stopped = True
            elif self.since_cut >= s.lr_patience and self.cuts < s.max_cuts:
                self.cuts += 1
                self.since_cut = 0
                self.lr_scale *= s.lr_factor
                actions.add("cut_lr")
        self.history.append([int(step), fid, sorted(actions)])
        return actions

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        return {"schedule": self.schedule.to_dict(), "best_fid": None if math.isinf(self.best_fid) else self.best_fid,
                "best_step": self.best_step, "since_best": self.since_best, "since_cut": self.since_cut,
                "cuts": self.cuts, "lr_scale": self.lr_scale, "stopped": self.stopped, "history": self.history}

    @classmethod
    def from_state(cls, state: dict) -> "FidMonitor":
        m = cls(FidSchedule.from_dict(state["schedule"]))
        m.best_fid = math.inf if state["best_fid"] is None else float(state["best_fid"])
        m.best_step = state["best_step"]
        for k in ("since_best", "since_cut", "cuts", "lr_scale", "stopped"):
            setattr(m, k, state[k])
        m.history = [list(h) for h in state["history"]]
        return m

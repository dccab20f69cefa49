"""The FID schedule: exact action sequences for hand-made FID curves."""
import json
import math

import pytest

from forensics.schedule import FidMonitor, FidSchedule


def run(fids, schedule=FidSchedule.paper()):
    m = FidMonitor(schedule)
    out = []
    for i, f in enumerate(fids):
        out.append(sorted(m.update(100 * (i + 1), f)))
        if "stop" in out[-1]:
            break
    return m, out


def test_improving_curve_only_saves():
    m, acts = run([50, 40, 30, 20])
    assert acts == [["save_best"]] * 4 and m.best_step == 400 and m.lr_scale == 1.0


def test_plateau_cuts_then_early_stop_with_patience_5():
    m, acts = run([50, 40, 41, 42, 43, 44, 45, 46])
    # bad evaluations 1..5 after the best at step 200: cut after 2 and 4, stop at the 5th
    assert acts == [["save_best"], ["save_best"], [], ["cut_lr"], [], ["cut_lr"], ["stop"]]
    assert m.lr_scale == 0.25 and m.best_fid == 40 and m.best_step == 200 and m.stopped
    with pytest.raises(ValueError):
        m.update(900, 1.0)


def test_improvement_resets_both_counters():
    m, acts = run([50, 51, 52, 30, 31, 32, 33, 34, 35])
    assert acts == [["save_best"], [], ["cut_lr"], ["save_best"], [], ["cut_lr"], [], ["cut_lr"], ["stop"]]
    assert m.cuts == 3 and m.lr_scale == 0.125 and m.best_step == 400


def test_max_cuts_min_delta_and_nan():
    s = FidSchedule.paper(max_cuts=1, min_delta=1.0)
    m, acts = run([50, 49.5, 49.2, float("nan"), 10], s)  # 49.5 is within min_delta: not better
    assert acts == [["save_best"], [], ["cut_lr"], [], ["save_best"]]
    assert m.cuts == 1 and m.best_fid == 10


def test_every_and_validation():
    m = FidMonitor(FidSchedule(every=3))
    assert [e for e in range(9) if m.due(e)] == [2, 5, 8]
    with pytest.raises(ValueError):
        FidSchedule(lr_factor=1.5)


def test_state_round_trip_continues_identically():
    fids = [50, 40, 41, 42, 39, 45, 46, 47, 48, 49]
    _, whole = run(fids)
    m, first = run(fids[:5])
    m2 = FidMonitor.from_state(json.loads(json.dumps(m.state_dict())))
    rest = [sorted(m2.update(100 * (i + 6), f)) for i, f in enumerate(fids[5:])]
    assert first + rest == whole
    assert FidMonitor.from_state(FidMonitor().state_dict()).best_fid == math.inf

"""Fairness metrics of generated sets (Choi et al. 2020; Teo & Cheung 2021) with hand-computed values."""
import math

import numpy as np
import pytest

from forensics.metrics import fairness as fm


def test_zero_filled_distribution_keeps_unseen_classes():
    # class 2 never predicted: np.unique would give a length-2 vector and KL against a
    # length-3 uniform would fail; ours keeps the zero
    p = fm.class_distribution([0, 0, 1, 1], 3)
    assert p.tolist() == [0.5, 0.5, 0.0]
    d = fm.discrepancies(p)
    assert d["kl"] == pytest.approx(math.log(3) - math.log(2), abs=1e-12)
    assert np.isfinite(list(d.values())).all()
    with pytest.raises(ValueError, match="0..2"):
        fm.class_distribution([0, 3], 3)


@pytest.mark.parametrize("p, l2, l1, kl, spec", [
    ([0.5, 0.5], 0.0, 0.0, 0.0, 0.0),
    ([1.0, 0.0], math.sqrt(0.5), 1.0, math.log(2), 1.0),
    ([0.9, 0.1], math.sqrt(2 * 0.4 ** 2), 0.8, math.log(2) + 0.9 * math.log(0.9) + 0.1 * math.log(0.1), 0.8),
    ([0.5, 0.5, 0.0, 0.0], 0.5, 1.0, math.log(2), 0.5 - 1.5 / 6),
    ([0.75, 1 / 12, 1 / 12, 1 / 12], math.sqrt(1 / 3), 1.0,
     math.log(4) + 0.75 * math.log(0.75) + 0.25 * math.log(1 / 12), 0.75 - 0.5 / 6),
    ([0.0, 0.0, 1.0, 0.0], math.sqrt(0.75), 1.5, math.log(4), 1.0),
])
def test_metrics_hand_computed(p, l2, l1, kl, spec):
    d = fm.discrepancies(p)
    assert d["l2"] == pytest.approx(l2, abs=1e-12)
    assert d["l1"] == pytest.approx(l1, abs=1e-12)
    assert d["kl"] == pytest.approx(kl, abs=1e-12)
    assert d["specificity"] == pytest.approx(spec, abs=1e-12)


def test_teo_cheung_tie_in_l1_broken_by_l2():
    a = fm.discrepancies([0.5, 0.5, 0, 0])
    b = fm.discrepancies([0.75, 1 / 12, 1 / 12, 1 / 12])
    assert a["l1"] == pytest.approx(b["l1"])
    assert a["l2"] < b["l2"] and a["specificity"] < b["specificity"]


@pytest.mark.parametrize("k", [2, 3, 4, 8, 16])
def test_normalised_metrics_are_one_at_the_extreme_and_zero_at_uniform(k):
    one = np.zeros(k)
    one[k - 1] = 1
    for m, v in fm.discrepancies(one).items():
        if m.endswith("_norm"):
            assert v == pytest.approx(1.0, abs=1e-12), m
    for m, v in fm.discrepancies(np.full(k, 1 / k)).items():
        assert v == pytest.approx(0.0, abs=1e-12), m


def test_raw_fd_scale_depends_on_cardinality_but_normalised_does_not():
    # Teo & Cheung's point (a): the same "all in one class" bias gives different raw FD
    fd = [fm.l2(np.eye(k)[0]) for k in (2, 4, 8)]
    assert fd[0] < fd[1] < fd[2]
    assert [fm.discrepancies(np.eye(k)[0])["l2_norm"] for k in (2, 4, 8)] == pytest.approx([1, 1, 1])


def test_confusion_correction_recovers_the_truth_exactly():
    p_true = np.array([0.6, 0.3, 0.1])
    C = fm.confusion_from_accuracy([0.9, 0.8, 0.7])
    assert C[0].tolist() == pytest.approx([0.9, 0.05, 0.05])
    observed = C.T @ p_true  # what the classifier reports on average
    assert not np.allclose(observed, p_true)
    assert fm.correct_distribution(observed, C) == pytest.approx(p_true, abs=1e-12)


def test_correction_stays_on_the_simplex():
    C = fm.confusion_from_accuracy([0.8, 0.8])
    # an observed share beyond what the classifier can produce: [0.95, 0.05] -> raw solve gives >1
    pc = fm.correct_distribution([0.95, 0.05], C)
    assert pc.sum() == pytest.approx(1) and (pc >= 0).all()
    assert pc == pytest.approx([1.0, 0.0])


def test_simulated_labels_follow_the_confusion_matrix():
    C = fm.confusion_from_accuracy([0.9, 0.6, 0.75])
    t = np.repeat([0, 1, 2], 20000)
    pred = fm.simulate_labels(t, C, seed=1)
    emp = np.stack([np.bincount(pred[t == i], minlength=3) / 20000 for i in range(3)])
    assert emp == pytest.approx(C, abs=0.01)
    assert (fm.simulate_labels(t, np.eye(3)) == t).all()


def test_benchmark_perfect_classifier_measures_truth_and_correction_helps():
    cfg = fm.FairnessBenchmarkConfig(cardinalities=(2, 4), accuracies=(1.0, 0.75), spread=0.0, steps=5, n=4000)
    rows = fm.benchmark(cfg)
    perfect = [r for r in rows if r["accuracy"] == 1.0]
    assert all(r["measured"] == pytest.approx(r["true"], abs=1e-12) for r in perfect)
    # the extreme end of the sweep is exactly one class
    ends = [r for r in perfect if r["t"] == 1.0 and r["metric"].endswith("_norm")]
    assert all(r["true"] == pytest.approx(1.0) for r in ends)
    summ = {(s["metric"], s["k"], s["accuracy"]): s for s in fm.benchmark_summary(rows)}
    for k in (2, 4):
        s = summ[("l2_norm", k, 0.75)]
        assert s["mae_corrected"] < 0.5 * s["mae_measured"]
        assert s["mae_measured"] > 0.05  # a 75%-accurate classifier visibly understates the bias


def test_group_false_positive_rates():
    r = fm.group_false_positive_rates([1, 0, 0, 0, 1, 1], ["a", "a", "a", "a", "b", "b"])
    assert r["groups"]["a"] == {"n": 4, "false_positives": 1, "fpr": 0.25}
    assert r["groups"]["b"]["fpr"] == 1.0
    assert r["overall_fpr"] == 0.5 and r["max_gap"] == 0.75
    with pytest.raises(ValueError):
        fm.group_false_positive_rates([1, 0], ["a"])

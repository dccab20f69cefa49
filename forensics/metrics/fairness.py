"""Fairness of generated sets: how far a set's sensitive-attribute distribution is from uniform.

Choi et al. (ICML 2020) label a generated set with an attribute classifier and report the
*fairness discrepancy* ``FD = ||p_bar - p_hat||_2`` between the uniform distribution ``p_bar`` over
the ``k`` attribute values and the set's class distribution ``p_hat``. Teo & Cheung (arXiv
2107.07754) point out that (a) FD's scale depends on ``k``, so each metric is also divided by its
value at the *extreme* point (every sample in one class); (b) L1 and L2 can rank biases
differently; (c) the public code built ``p_hat`` with ``np.unique``, which drops classes that are
never predicted (a shorter vector, a wrong FD, an undefined KL); (d) everything depends on the
classifier's accuracy. Here:

* :func:`class_distribution` always returns a zero-filled length-``k`` vector;
* :func:`discrepancies` gives L2, L1, KL(p_hat || uniform) and specificity, raw and normalised;
* :func:`correct_distribution` undoes a known confusion matrix (in the spirit of CLEAM, Teo,
  Abdollahzadeh & Cheung 2023: observed = C^T true, solved on the probability simplex);
* :func:`benchmark` is the paper's framework: sets with known distributions swept from uniform to
  one-class for k = 2, 4, 8, labelled by simulated classifiers of given per-class accuracy;
* :func:`group_false_positive_rates` is the detector-side question: on real images carrying group
  labels, the share of each group called "generated".

Extreme values (all mass on one class, ``k`` classes): L2 ``sqrt((k-1)/k)``, L1 ``2(k-1)/k``,
KL ``log k``, specificity 1. All four are 0 at uniform.
"""
from __future__ import annotations

import dataclasses
from typing import Annotated, Sequence

import numpy as np

from forensics.core.config import Config, Count, Range, Seed

METRICS = ("l2", "l1", "kl", "specificity")


# ------------------------------------------------------------------------------ distributions
def class_distribution(labels, k: int) -> np.ndarray:
    """Share of each of the ``k`` classes among integer ``labels`` (length ``k``, zero-filled:
    a class that never occurs gets 0, unlike ``np.unique`` which drops it)."""
    lab = np.asarray(labels).astype(np.int64).ravel()
    if k < 2:
        raise ValueError(f"an attribute needs at least 2 classes, got {k}")
    if lab.size == 0:
        raise ValueError("no labels: the class distribution of an empty set is undefined")
    if lab.min() < 0 or lab.max() >= k:
        raise ValueError(f"labels must lie in 0..{k - 1}, found {lab.min()}..{lab.max()}")
    return np.bincount(lab, minlength=k).astype(np.float64) / lab.size


def _check_p(p) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size < 2:
        raise ValueError(f"a class distribution is a vector of at least 2 shares, got shape {p.shape}")
    if np.any(p < -1e-12) or abs(p.sum() - 1.0) > 1e-6:
        raise ValueError(f"shares must be non-negative and sum to 1 (sum {p.sum():.6g})")
    return np.clip(p, 0.0, None)


def l2(p) -> float:
    """Choi et al.'s fairness discrepancy ``||p - uniform||_2``."""
    p = _check_p(p)
    return float(np.linalg.norm(p - 1.0 / p.size))


def l1(p) -> float:
    p = _check_p(p)
    return float(np.abs(p - 1.0 / p.size).sum())


def kl(p) -> float:
    """``KL(p || uniform) = log k - H(p)`` in nats (0 log 0 = 0, so finite for every ``p``)."""
    p = _check_p(p)
    nz = p[p > 0]
    return float(np.log(p.size) + (nz * np.log(nz)).sum())


def specificity(p) -> float:
    """Teo & Cheung's specificity: the largest share minus a rank-weighted mean of the others,
    weights ``k-1, ..., 1`` from the second-largest share down (0 at uniform, 1 at one class)."""
    p = np.sort(_check_p(p))[::-1]
    rest = p[1:]
    w = np.arange(p.size - 1, 0, -1, dtype=np.float64)
    return float(p[0] - (w * rest).sum() / w.sum())


_FN = {"l2": l2, "l1": l1, "kl": kl, "specificity": specificity}


def extreme(metric: str, k: int) -> float:
    """Value of ``metric`` when every sample falls in one of ``k`` classes."""
    return {"l2": np.sqrt((k - 1) / k), "l1": 2.0 * (k - 1) / k, "kl": np.log(k), "specificity": 1.0}[metric]


def discrepancies(p) -> dict:
    """Every metric of distribution ``p`` against uniform, raw and divided by its extreme value
    (``<name>_norm``, in [0, 1], comparable across cardinalities)."""
    p = _check_p(p)
    out = {}
    for m in METRICS:
        v = _FN[m](p)
        out[m] = v
        out[m + "_norm"] = v / extreme(m, p.size)
    return out


# --------------------------------------------------------------------------- classifier noise
def confusion_from_accuracy(acc) -> np.ndarray:
    """A confusion matrix ``C[i, j] = P(predicted j | true i)`` with per-class accuracy ``acc[i]`` on
    the diagonal and the errors of class ``i`` spread evenly over the other classes."""
    acc = np.asarray(acc, dtype=np.float64)
    k = acc.size
    if k < 2 or np.any(acc < 0) or np.any(acc > 1):
        raise ValueError("per-class accuracies must be at least 2 values in [0, 1]")
    C = np.repeat(((1.0 - acc) / (k - 1))[:, None], k, axis=1)
    C[np.arange(k), np.arange(k)] = acc
    return C


def project_simplex(v) -> np.ndarray:
    """Euclidean projection of ``v`` onto the probability simplex (Duchi et al. 2008)."""
    v = np.asarray(v, dtype=np.float64)
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    rho = np.nonzero(u - css / np.arange(1, v.size + 1) > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1.0), 0.0)


def correct_distribution(p_observed, confusion) -> np.ndarray:
    """The true class distribution that a classifier with ``confusion`` (rows: true class, columns:
    predicted; rows sum to 1) turns into ``p_observed``: least squares of ``C^T p = p_observed``,
    projected onto the simplex. Exact when ``C`` is invertible and ``p_observed`` noise-free."""
    p = _check_p(p_observed)
    C = np.asarray(confusion, dtype=np.float64)
    if C.shape != (p.size, p.size):
        raise ValueError(f"confusion matrix is {C.shape}, expected {(p.size, p.size)}")
    if np.any(np.abs(C.sum(1) - 1.0) > 1e-6):
        raise ValueError("each confusion-matrix row (a true class) must sum to 1")
    x = np.linalg.lstsq(C.T, p, rcond=None)[0]
    return project_simplex(x)


def simulate_labels(true_labels, confusion, seed: int = 0) -> np.ndarray:
    """Labels a classifier with ``confusion`` would predict for samples of ``true_labels`` (seeded)."""
    C = np.asarray(confusion, dtype=np.float64)
    t = np.asarray(true_labels, dtype=np.int64)
    cdf = np.cumsum(C, axis=1)[t]
    u = np.random.default_rng(seed).random(t.size)[:, None]
    return np.minimum((u > cdf).sum(1), C.shape[0] - 1)


def fairness_report(pred_labels, k: int, confusion=None, class_names: Sequence[str] | None = None) -> dict:
    """Distribution and discrepancies of predicted labels; with a ``confusion`` matrix also the
    corrected distribution and its discrepancies."""
    p = class_distribution(pred_labels, k)
    out = {"n": int(np.asarray(pred_labels).size), "k": k,
           "classes": list(class_names) if class_names else [str(i) for i in range(k)],
           "distribution": p.tolist(), "metrics": discrepancies(p)}
    if confusion is not None:
        pc = correct_distribution(p, confusion)
        out["corrected_distribution"] = pc.tolist()
        out["corrected_metrics"] = discrepancies(pc)
    return out


# ------------------------------------------------------------------------------- benchmark
@dataclasses.dataclass(frozen=True)
class FairnessBenchmarkConfig(Config):
    """Teo & Cheung's framework: for each cardinality, sets whose true distribution moves from
    uniform (t = 0) to one class (t = 1) as ``p(t) = (1 - t) uniform + t e_0``, ``n`` samples
    each, labelled by classifiers whose per-class accuracy is each value of ``accuracies``
    (class 0, the dominant one, gets ``accuracy``; the others are spread down to
    ``accuracy - spread`` so errors are not symmetric)."""

    cardinalities: Annotated[tuple[int, ...], Range(2, 1 << 16)] = (2, 4, 8)
    accuracies: Annotated[tuple[float, ...], Range(0, 1, lo_open=True)] = (1.0, 0.9, 0.8, 0.7)
    spread: Annotated[float, Range(0, 1)] = 0.1
    steps: Annotated[int, Range(2)] = 11
    n: Count = 10000
    seed: Seed = 0


def benchmark_accuracies(k: int, accuracy: float, spread: float) -> np.ndarray:
    """Per-class accuracies of a simulated classifier: ``accuracy`` for class 0 down to
    ``accuracy - spread`` for class ``k-1`` (clipped to ``1/k`` at least: no worse than chance)."""
    return np.clip(np.linspace(accuracy, accuracy - spread, k), 1.0 / k, 1.0)


def benchmark(config: FairnessBenchmarkConfig = FairnessBenchmarkConfig()) -> list[dict]:
    """One row per (k, accuracy, t, metric): the metric's true value (of ``p(t)``), measured
    value (of the simulated classifier's labels) and corrected value (after
    :func:`correct_distribution` with the classifier's confusion matrix)."""
    rows = []
    rng = np.random.default_rng(config.seed)
    for k in config.cardinalities:
        u = np.full(k, 1.0 / k)
        for acc in config.accuracies:
            C = confusion_from_accuracy(benchmark_accuracies(k, acc, config.spread))
            for t in np.linspace(0.0, 1.0, config.steps):
                p = (1 - t) * u
                p[0] += t
                counts = np.floor(p * config.n).astype(int)
                counts[0] += config.n - counts.sum()  # exact known composition
                true_lab = np.repeat(np.arange(k), counts)
                pred = simulate_labels(true_lab, C, int(rng.integers(2 ** 31)))
                r = fairness_report(pred, k, C)
                truth = discrepancies(class_distribution(true_lab, k))
                for m in METRICS:
                    for norm in ("", "_norm"):
                        rows.append({"k": k, "accuracy": acc, "t": float(t), "metric": m + norm,
                                     "true": truth[m + norm], "measured": r["metrics"][m + norm],
                                     "corrected": r["corrected_metrics"][m + norm]})
    return rows


def benchmark_summary(rows: list[dict]) -> list[dict]:
    """Mean absolute error of measured and corrected values against the truth, per metric,
    cardinality and accuracy (normalised metrics only)."""
    out = {}
    for r in rows:
        if not r["metric"].endswith("_norm"):
            continue
        key = (r["metric"], r["k"], r["accuracy"])
        e = out.setdefault(key, [[], []])
        e[0].append(abs(r["measured"] - r["true"]))
        e[1].append(abs(r["corrected"] - r["true"]))
    return [{"metric": m, "k": k, "accuracy": a, "mae_measured": float(np.mean(e[0])),
             "mae_corrected": float(np.mean(e[1]))} for (m, k, a), e in sorted(out.items())]


def plot_benchmark(rows: list[dict], path) -> None:
    """One panel per normalised metric: measured (solid) and corrected (dashed) against the truth,
    a line per (k, accuracy); the diagonal is a perfect metric."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    from forensics.io.files import atomic_write_bytes

    metrics = [m + "_norm" for m in METRICS]
    ks = sorted({r["k"] for r in rows})
    accs = sorted({r["accuracy"] for r in rows}, reverse=True)
    fig, axes = plt.subplots(2, len(metrics), figsize=(4.0 * len(metrics), 8.0), squeeze=False)
    cmap = plt.get_cmap("viridis")
    styles = ["-", "--", ":", "-."]
    for row, which in enumerate(("measured", "corrected")):
        for ax, m in zip(axes[row], metrics):
            for i, k in enumerate(ks):
                for j, a in enumerate(accs):
                    sel = [r for r in rows if r["metric"] == m and r["k"] == k and r["accuracy"] == a]
                    ax.plot([r["true"] for r in sel], [r[which] for r in sel], styles[j % 4],
                            color=cmap(i / max(1, len(ks) - 1)), lw=1.2, label=f"k={k}, acc={a:g}")
            ax.plot([0, 1], [0, 1], color="k", lw=0.6)
            ax.set_title(f"{m.replace('_norm', '')} (normalised), {which}")
            ax.set_xlabel("true value")
            ax.set_ylabel(f"{which} value")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------- detector fairness on reals
def group_false_positive_rates(flagged, groups) -> dict:
    """Per-group false-positive rate of a detector on **real** images: ``flagged[i]`` is True when
    image ``i`` was called generated, ``groups[i]`` its group label. Returns ``{"groups": {g:
    {"n", "false_positives", "fpr"}}, "overall_fpr", "max_gap"}`` (largest minus smallest
    group FPR)."""
    f = np.asarray(flagged).astype(bool).ravel()
    g = np.asarray(groups).ravel()
    if f.size != g.size:
        raise ValueError(f"{f.size} verdicts for {g.size} group labels")
    if f.size == 0:
        raise ValueError("no verdicts")
    out = {}
    for name in sorted(set(g.tolist()), key=str):
        m = g == name
        fp = int(f[m].sum())
        out[str(name)] = {"n": int(m.sum()), "false_positives": fp, "fpr": fp / int(m.sum())}
    rates = [v["fpr"] for v in out.values()]
    return {"groups": out, "overall_fpr": float(f.mean()), "max_gap": float(max(rates) - min(rates))}


def run_benchmark(config: FairnessBenchmarkConfig, out) -> list[dict]:
    """:func:`benchmark`, written to ``out``: ``rows.csv``, ``summary.csv``, ``benchmark.png`` and
    ``config.json``; returns the summary."""
    from pathlib import Path

    from forensics.io.files import write_config, write_csv

    out = Path(out)
    rows = benchmark(config)
    summary = benchmark_summary(rows)
    write_csv(out / "rows.csv", rows, ["k", "accuracy", "t", "metric", "true", "measured", "corrected"])
    write_csv(out / "summary.csv", summary, ["metric", "k", "accuracy", "mae_measured", "mae_corrected"])
    plot_benchmark(rows, out / "benchmark.png")
    write_config(out, {"command": "fairness-benchmark", "config": config.to_dict()})
    return summary

"""A study once per GAN seed and the spread over seeds: bit-identical numbers hold on one machine
only, so a result worth quoting is a spread over seeds."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from forensics.io.files import atomic_write_text, write_json
from forensics.study.config import StudyConfig
from forensics.study.report import seeds_text
from forensics.study.stages import run_study


def summarise_seeds(results: dict[int, dict]) -> dict:
    """Spread over GAN seeds of several studies' ``results.json`` (one per seed, same settings but
    the seed): per detector and setup, the mean, standard deviation, minimum and maximum over seeds
    of each study's mean detection rate, real accuracy and ROC-AUC."""
    seeds = sorted(results)
    first = results[seeds[0]]
    out = {"seeds": seeds, "detectors": {}}
    for det, per_setup in first["detectors"].items():
        out["detectors"][det] = {}
        for setup in per_setup:
            cell = {}
            for m in ("detection_rate", "real_accuracy", "auc"):
                v = np.array([results[s]["detectors"][det][setup][m]["mean"] for s in seeds], float)
                cell[m] = {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                           "min": float(np.min(v)), "max": float(np.max(v)), "per_seed": v.tolist()}
            out["detectors"][det][setup] = cell
    return out


def run_seeds(config: StudyConfig, seeds, out, progress: bool = True) -> dict:
    """The study ``config`` once per GAN seed (``out/seed<S>/``, each cached and resumable as usual),
    then ``out/seeds.json`` and ``out/seeds.md``: the spread over seeds (:func:`summarise_seeds`), and
    each study's seconds per stage (``timings``, by seed).
    Bit-identical numbers hold on one machine only; across machines, CPU kernels differ and GAN
    training amplifies it, so a result worth quoting is a spread over seeds."""

    out = Path(out)
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"give distinct seeds, not {seeds}")
    runs = {s: run_study(config.replace(seed=s), out / f"seed{s}", progress) for s in seeds}
    summary = {"config": {**config.to_dict(), "seed": seeds},
               **summarise_seeds({s: r["results"] for s, r in runs.items()}),
               "timings": {s: r["timings"] for s, r in runs.items()}}
    write_json(out / "seeds.json", summary)

    atomic_write_text(out / "seeds.md", seeds_text(summary) + "\n")
    return summary

"""The study verbs' library side: run the studies a preset plans (``forensics counterexample``) and the
demo (``forensics demo``, once or over several GAN seeds), echoing each result's tables as it ends."""
from __future__ import annotations

from pathlib import Path

from forensics.study.config import StudyConfig
from forensics.study.report import results_text, seeds_text, timings_text
from forensics.study.seeds import run_seeds
from forensics.study.stages import run_study


def run_plan(plans, progress: bool = True, echo=print) -> list[dict]:
    """Run (or resume) each ``(config, folder)`` of :func:`~forensics.study.config.plan_study`; after each,
    ``echo`` its tables, the time of each stage and the path of its report. Returns the studies' results."""
    done = []
    for config, out in plans:
        r = run_study(config, out, progress)
        echo(f"{results_text(r['results'])}\nTime per stage (wall clock):\n\n{timings_text({'time': r['timings']})}\n\n"
             f"report: {r['report'][1]}")
        done.append(r)
    return done


def run_demo(config: StudyConfig, out, seeds: int | None = None, progress: bool = True, echo=print) -> dict:
    """The demo study ``config`` in ``out``; with ``seeds``, once per GAN seed (``seed``, ``seed + 1``, ...)
    into ``out/seed<S>/`` and the spread over seeds (``out/seeds.md``)."""
    if seeds is None:
        return run_plan([(config, Path(out))], progress, echo)[0]
    if seeds < 1:
        raise ValueError(f"the number of seeds must be at least 1, not {seeds}")
    summary = run_seeds(config, range(config.seed, config.seed + seeds), out, progress)
    times = timings_text({f"seed {s}": t for s, t in summary["timings"].items()})
    echo(f"{seeds_text(summary)}\nTime per stage (wall clock):\n\n{times}\n\nsummary: {Path(out) / 'seeds.md'}")
    return summary

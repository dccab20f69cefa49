import json
import subprocess
import sys

import numpy as np
import pytest

from forensics.experiment import Experiment, paper_plan
from forensics.generators.layers import PAPER_SETUPS


def test_paper_preset_configuration_builds_on_cpu(tmp_path):
    plans = paper_plan("celeba/", tmp_path, n_real_images=162770)
    assert [p["gan"] for p in plans] == ["dcgan", "lsgan", "wgan-gp"]
    for p in plans:
        assert p["setups"] == list(PAPER_SETUPS) and p["size"] == 128 and p["n_fake"] == 1000
        assert p["detectors"][0] == "dzanic-faithful-knn" and p["policy"] == "resize:128:area"
        assert p["params"]["batch"] == 64 and (p["params"]["beta1"], p["params"]["beta2"]) == (0.5, 0.999)
    steps = {p["gan"]: p["steps"] for p in plans}
    assert steps == {"dcgan": 127165, "lsgan": 127165, "wgan-gp": 50866}  # 50 / 50 / 100 epochs
    assert {p["gan"]: p["params"]["lr_g"] for p in plans} == {"dcgan": 1e-4, "lsgan": 1e-4, "wgan-gp": 2e-4}
    # every configuration's networks build at 128 px (not trained here)
    import torch

    from forensics.generators.config import GanConfig
    from forensics.generators.trainer import build_task

    for p in plans:
        params = {k: v for k, v in p["params"].items() if k != "seed"}
        task = build_task(GanConfig.paper(p["gan"], params, last_layer="B.3.5", size=128, seed=0), torch.device("cpu"))
        assert task.G(torch.randn(1, 128)).shape == (1, 3, 128, 128)


def test_paper_dry_run_cli(tmp_path):
    p = subprocess.run([sys.executable, "-m", "forensics", "counterexample", "--real", "celeba/", "--preset", "paper",
                        "--steps", "10", "--out", str(tmp_path), "--dry-run"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    plans = json.loads(p.stdout)
    assert len(plans) == 3 and all(len(x["setups"]) == 13 and x["steps"] == 10 for x in plans)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    exp = Experiment("builtin", "dcgan", ["baseline", "N.1.5"], 16, 20, 120, out, seed=3,
                     detectors=["dzanic-knn", "durall-lr"], n_train=50, reps=3, n_real=300, progress=False,
                     gan_overrides={"ngf": 4, "ndf": 4, "batch": 16})
    return out, exp.run()


def test_results_schema(small_study):
    out, r = small_study
    res = json.loads((out / "results.json").read_text())
    assert set(res) == {"config", "detectors", "matrix"}
    assert res["config"]["seed"] == 3 and res["config"]["reps"] == 3
    assert set(res["detectors"]) == {"dzanic-knn", "durall-lr"}
    for det, per_setup in res["detectors"].items():
        assert set(per_setup) == {"baseline", "N.1.5"}
        for v in per_setup.values():
            assert set(v) == {"detection_rate", "real_accuracy", "auc"}
            for m in v.values():
                assert set(m) == {"mean", "std"} and 0 <= m["mean"] <= 1 and m["std"] >= 0
    m = res["matrix"]["durall-lr"]
    assert set(m) == {"baseline", "N.1.5"} and set(m["N.1.5"]["detection_rate"]) == {"baseline", "N.1.5"}
    assert len(list((out / "fakes" / "N.1.5").glob("*.png"))) == 120
    assert json.loads((out / "config.json").read_text())["seed"] == 3


def test_report_is_self_contained(small_study):
    out, r = small_study
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "| setup | detection rate (%) | real accuracy (%) | ROC-AUC |" in md
    assert "spectra.png" in md and "samples_N.1.5.png" in md
    assert html.count("data:image/png;base64,") == 4  # spectra + real + 2 setups, embedded
    assert 'src="spectra.png"' not in html


def test_rerun_skips_finished_stages(small_study):
    out, first = small_study
    stamp = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("checkpoint.safetensors")}
    stamp.update({p: p.stat().st_mtime_ns for p in (out / "fakes").rglob("000000.png")})
    exp = Experiment("builtin", "dcgan", ["baseline", "N.1.5"], 16, 20, 120, out, seed=3,
                     detectors=["dzanic-knn", "durall-lr"], n_train=50, reps=3, n_real=300, progress=False,
                     gan_overrides={"ngf": 4, "ndf": 4, "batch": 16})
    r2 = exp.run()
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())
    assert "train baseline" not in exp.timings
    assert r2["results"]["detectors"] == first["results"]["detectors"]  # same seeds, same numbers


def test_paper_plan_counts_the_celeba_train_split(tmp_path):
    from PIL import Image

    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    for i in range(5):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "img_align_celeba" / f"{i:06d}.jpg")
    (root / "list_eval_partition.txt").write_text("".join(f"{i:06d}.jpg {0 if i < 3 else 1}\n" for i in range(5)))
    p = subprocess.run([sys.executable, "-m", "forensics", "counterexample", "--real", str(root), "--preset", "paper",
                        "--out", str(tmp_path / "o"), "--dry-run"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    steps = {x["gan"]: x["steps"] for x in json.loads(p.stdout)}
    assert steps == {"dcgan": 3, "lsgan": 3, "wgan-gp": 1}  # ceil(50*3/64), ceil(100*3/(64*5))


def test_interrupted_run_resumes_and_samples_are_replaced(tmp_path):
    from forensics.generators.trainer import CHECKPOINT

    kw = dict(detectors=["durall-lr"], n_train=20, reps=1, n_real=100, progress=False,
              gan_overrides={"ngf": 4, "ndf": 4, "batch": 16})
    exp = Experiment("builtin", "dcgan", ["baseline"], 16, 6, 40, tmp_path, seed=1, **kw)
    real = exp.stage_real()
    assert len(real) == 100
    run = tmp_path / "runs" / "baseline"
    exp.stage_train("baseline")
    (run / "stage.json").unlink()  # as if the first training had been interrupted before its end ...
    from forensics.experiment import _mark_done

    _mark_done(run, {"gan": "dcgan", "setup": "baseline", "data": "builtin", "size": 16, "preset": "tiny",
                     "overrides": kw["gan_overrides"], "seed": 1, "n_real": 100}, step=0)
    longer = Experiment("builtin", "dcgan", ["baseline"], 16, 9, 30, tmp_path, seed=1, **kw)
    longer.stage_train("baseline")  # ... it resumes instead of refusing
    from forensics.generators.checkpoint import load_checkpoint

    assert load_checkpoint(run / CHECKPOINT)["step"] == 9
    exp.stage_fakes("baseline", run)
    assert len(list((tmp_path / "fakes" / "baseline").glob("*.png"))) == 40
    assert len(longer.stage_fakes("baseline", run)) == 30
    assert len(list((tmp_path / "fakes" / "baseline").glob("*.png"))) == 30  # no stale samples left

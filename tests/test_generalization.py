"""The leave-one-family-out protocol (issue 19): the split keeps every image of the held-out family and
of the held-out photo groups out of training, test-only families are never trained on, the figures are
right where they are known, bad files are error rows, processing is applied to what is scored."""
import hashlib
import json
from typing import ClassVar

import cv2
import numpy as np
import pytest
from PIL import Image

from forensics.evaluation import generalization as gen
from forensics.evaluation.generalization import ALL, BY, GeneralizationConfig, plan_splits, run_generalization, unit_of
from forensics.io.corpus import Entry, read_manifest, write_manifest
from forensics.io.files import dumps
from forensics.io.processing import perturb

N_PHOTOS = 9


def _photo(rng, n=96):
    """A smooth random 'photograph': blurred noise at four scales plus a little sensor noise."""
    x = sum(cv2.GaussianBlur(rng.normal(0, 1, (n, n, 3)), (0, 0), s) * s for s in (2, 4, 8, 16))
    x = (x - x.min()) / (np.ptp(x) + 1e-9) * 200 + 20 + rng.normal(0, 2, x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def make_corpus(root, twin: bool = False):
    """Per photo (group ``p<i>``): two 64 px crops and the whole 96 px photo (real), the crops
    downscaled and upsampled x2 by nearest (``up:N-x2``) and bilinear (``up:B-x2``) interpolation;
    6 noise images (``noise:-``, no group) and 6 nearest-upsampled noise images (``external-x:-``,
    test only). ``twin``: a family ``twin:-`` of exact copies of the real images (same groups)."""
    rng = np.random.default_rng(0)
    es = []

    def put(rel, im, label, fam, group):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(root / rel)
        es.append(Entry(rel, label, fam, group))

    for p in range(N_PHOTOS):
        ph, g = _photo(rng), f"p{p}"
        put(f"real/{g}.png", ph, 0, "real", g)
        if twin:
            put(f"twin/{g}.png", ph, 1, "twin:-", g)
        for c, (y, x) in enumerate(((0, 0), (32, 32))):
            crop = ph[y:y + 64, x:x + 64]
            put(f"real/{g}_{c}.png", crop, 0, "real", g)
            if twin:
                put(f"twin/{g}_{c}.png", crop, 1, "twin:-", g)
            small = cv2.resize(crop, (32, 32), interpolation=cv2.INTER_AREA)
            put(f"nn/{g}_{c}.png", cv2.resize(small, (64, 64), interpolation=cv2.INTER_NEAREST), 1, "up:N-x2", g)
            put(f"bl/{g}_{c}.png", cv2.resize(small, (64, 64), interpolation=cv2.INTER_LINEAR), 1, "up:B-x2", g)
    for i in range(6):
        put(f"noise/{i}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), 1, "noise:-", "-")
        ext = cv2.resize(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (64, 64), interpolation=cv2.INTER_NEAREST)
        put(f"ext/{i}.png", ext, 1, "external-x:-", "-")
    write_manifest(root, es)
    return root


def _digest(im) -> str:
    im = np.ascontiguousarray(im)
    return hashlib.sha1(str(im.shape).encode() + im.tobytes()).hexdigest()


class Recorder:
    """Wraps a real detector and records the images it is fitted on and asked to score (by their pixels)."""

    fits: ClassVar[list] = []
    scored: ClassVar[set] = set()

    def __init__(self, det):
        self.det = det
        self.min_size = det.min_size

    def fit(self, X, y):
        Recorder.fits.append([_digest(x) for x in X])
        self.det.fit(X, y)
        return self

    def p_generated(self, X):
        Recorder.scored.update(_digest(x) for x in X)
        return self.det.p_generated(X)


class FeatureRecorder(Recorder):
    """The same for a detector fitted and scored on per-image features: each feature array is traced back
    to the pixels it was computed from."""

    origin: ClassVar[dict] = {}

    def image_features(self, X):
        feats = self.det.image_features(X)
        FeatureRecorder.origin.update((id(f), _digest(x)) for x, f in zip(X, feats))
        return feats

    def fit_features(self, feats, y):
        Recorder.fits.append([FeatureRecorder.origin[id(f)] for f in feats])
        self.det.fit_features(feats, y)
        return self

    def p_generated_features(self, feats):
        Recorder.scored.update(FeatureRecorder.origin[id(f)] for f in feats)
        return self.det.p_generated_features(feats)


@pytest.fixture(params=["features", "images"])
def recorder(monkeypatch, request):
    """Every detector the protocol makes, recorded: one that takes per-image features (as the tiled
    estimators do), or one that takes only images (as the CNN or the native detector)."""
    real = gen.make_detector
    Recorder.fits, Recorder.scored, FeatureRecorder.origin = [], set(), {}
    wrap = FeatureRecorder if request.param == "features" else Recorder
    monkeypatch.setattr(gen, "make_detector", lambda *a, **kw: wrap(real(*a, **kw)))
    return Recorder


def _cfg(root, out, **kw):
    return GeneralizationConfig(corpus=str(root), detector="periodic-lr", out=str(out), folds=3,
                                **{"processing": (), **kw})


def test_family_strings_map_to_their_units():
    assert [unit_of("gan-dcgan@w4a4:N.1.5", b) for b in BY] == ["gan-dcgan", "N", "gan-dcgan@w4a4:N.1.5"]
    assert [unit_of(f, "layer") for f in ("up:N-x2", "up:baseline-x2", "ldm:baseline", "ae-kl:B.1.3",
                                          "up:bicubic-x2", "ddpm:-", "gan-lsgan")] == \
        ["N", "baseline", "baseline", "B", "other", "other", "other"]
    assert unit_of("ae-kl-f8:Z.1.5", "kind") == "ae-kl" and unit_of("up:N-x2", "kind") == "up"


def _sets(fold):
    return fold.key, fold.test_groups, fold.calibration_groups, [
        (s.unit, *(tuple(a) for a in (s.train, s.calibration, s.test_real, s.test_fake))) for s in fold.splits]


@pytest.mark.parametrize("by", BY)
def test_split_keeps_the_held_out_unit_its_photos_and_test_only_families_out_of_training(tmp_path, by):
    entries = read_manifest(make_corpus(tmp_path)).entries
    usable = np.ones(len(entries), bool)
    usable[[3, 10]] = False  # unreadable files are in no set
    folds = plan_splits(entries, by, folds=3, repeats=2, seed=5, usable=usable)
    again = plan_splits(entries, by, folds=3, repeats=2, seed=5, usable=usable)  # a pure function of its inputs
    assert [_sets(f) for f in folds] == [_sets(f) for f in again]
    key = [e.group if e.group != "-" else f"-#{e.path}" for e in entries]
    units = {unit_of(e.family, by) for e in entries if e.label and not e.family.startswith("external-")}
    assert len(folds) == 6 and {s.unit for s in folds[0].splits} == units | {ALL}
    tested = {}
    for fold in folds:
        held = set(fold.test_groups) | set(fold.calibration_groups)
        assert not set(fold.test_groups) & set(fold.calibration_groups)
        for s in fold.splits:
            train = [entries[i] for i in s.train]
            assert {key[i] for i in s.train}.isdisjoint(held), "a training image shares a held-out photo"
            assert not any(e.family.startswith("external-") for e in train), "a test-only family was trained on"
            assert s.unit == ALL or all(unit_of(e.family, by) != s.unit for e in train if e.label)
            assert {0, 1} <= {e.label for e in train} and usable[s.train].all() and usable[s.test_fake].all()
            assert all(entries[i].label == 0 and key[i] in fold.calibration_groups for i in s.calibration)
            assert all(entries[i].label == 0 and key[i] in fold.test_groups for i in s.test_real)
            assert all(key[i] in fold.test_groups and (s.unit == ALL or unit_of(entries[i].family, by) == s.unit)
                       for i in s.test_fake)
            if s.unit != ALL:
                for i in s.test_fake:
                    tested[fold.repeat, i] = tested.get((fold.repeat, i), 0) + 1
            else:
                assert set(s.test_fake) == {i for i in range(len(entries)) if entries[i].label and usable[i]
                                            and key[i] in fold.test_groups}
    # every usable trainable fake is tested exactly once per repeat, by the model that did not see its unit
    trainable = [i for i, e in enumerate(entries) if e.label and usable[i] and not e.family.startswith("external-")]
    assert tested == {(r, i): 1 for r in (0, 1) for i in trainable}
    # the two repeats deal the photos differently; another seed another split
    assert {f.test_groups for f in folds[:3]} != {f.test_groups for f in folds[3:]}
    assert [_sets(f) for f in plan_splits(entries, by, 3, 2, seed=6, usable=usable)] != [_sets(f) for f in folds]


def test_a_split_with_nothing_to_train_on_is_refused(tmp_path):
    entries = [e for e in read_manifest(make_corpus(tmp_path)).entries if e.family in ("real", "up:N-x2")]
    with pytest.raises(ValueError, match="holding out up:N-x2 .* no generated image"):
        plan_splits(entries, "family", folds=3)
    with pytest.raises(ValueError, match="unit.* up:Q"):
        plan_splits(read_manifest(tmp_path).entries, "family", folds=3, units=("up:Q",))
    with pytest.raises(ValueError, match="fewer than the 40 folds"):
        plan_splits(read_manifest(tmp_path).entries, "family", folds=40)


def test_the_protocol_fits_on_exactly_the_planned_images(tmp_path, recorder):
    """Instrumented: each fit gets the split's training images, none of the held-out family, of a
    held-out photo group or of a test-only family (compared by the pixels, not by bookkeeping)."""
    root = make_corpus(tmp_path / "c")
    res = run_generalization(_cfg(root, tmp_path / "o", by="kind"), progress=False)
    corpus = read_manifest(root)
    pix = [_digest(np.asarray(Image.open(corpus.file(e)).convert("RGB"))) for e in corpus.entries]
    folds = plan_splits(corpus.entries, "kind", folds=3, seed=0)
    splits = [s for f in folds for s in f.splits]
    assert len(recorder.fits) == len(splits) == 3 * 3  # units up, noise and (all), 3 folds
    for fitted, s, fold in zip(recorder.fits, splits, [f for f in folds for _ in f.splits]):
        assert sorted(fitted) == sorted(pix[i] for i in s.train)
        forbidden = {pix[i] for i, e in enumerate(corpus.entries)
                     if (e.group in fold.test_groups or e.group in fold.calibration_groups
                         or e.family.startswith("external-") or (e.label and unit_of(e.family, "kind") == s.unit))}
        assert not forbidden & set(fitted)
    # the split recorded in results.json is the one planned
    assert [r["test_groups"] for r in res["split"]] == [list(f.test_groups) for f in folds]
    groups = {e.group for e in corpus.entries} - {"-"}
    for r in res["split"]:
        train, held = set(r["train_groups"]), set(r["test_groups"]) | set(r["calibration_groups"])
        assert not train & held and train | (held & groups) == groups
    assert res["split"][0]["training"]["up"]["families"] == ["noise:-"]
    assert res["split"][0]["training"][ALL]["families"] == ["noise:-", "up:B-x2", "up:N-x2"]


def test_figures_are_right_where_they_are_known(tmp_path):
    """A family identical to the real images scores AUC 0.5 whatever the model; nearest x2 upsampling,
    held out while bilinear x2 is trained on, is found by the periodic-spectrum detector; the counts are the
    corpus's; a test-only family is its own row."""
    res = run_generalization(_cfg(make_corpus(tmp_path / "c", twin=True), tmp_path / "o"), progress=False)
    rows = {r["unit"]: r for r in res["rows"]}
    assert list(rows) == ["twin:-", "up:N-x2", "up:B-x2", "noise:-", "external-x:-"]
    # (identical images may differ in the last bits of their scores when batched differently: 0.5 within 0.02)
    assert rows["twin:-"]["auc"]["n"] == 3 and rows["twin:-"]["auc"]["mean"] == pytest.approx(0.5, abs=0.02)
    assert rows["twin:-"]["auc_seen"]["mean"] == pytest.approx(0.5, abs=0.02)
    assert rows["up:N-x2"]["auc"]["mean"] > 0.95 and rows["up:N-x2"]["auc_seen"]["mean"] > 0.95
    assert rows["up:N-x2"]["tpr_at_fpr"]["mean"] > 0.8
    assert [rows[u]["n_test_fake"] for u in rows] == [3 * N_PHOTOS, 2 * N_PHOTOS, 2 * N_PHOTOS, 6, 6]
    assert all(r["n_test_real"] == 3 * N_PHOTOS for r in rows.values())
    assert rows["external-x:-"]["test_only"] and rows["external-x:-"]["auc_seen"]["n"] == 0
    # the figures of one fold, recomputed from the detector's own scores
    corpus = read_manifest(tmp_path / "c")
    fold = plan_splits(corpus.entries, "family", folds=3)[0]
    s = next(s for s in fold.splits if s.unit == "up:N-x2")
    ims = [np.asarray(Image.open(corpus.file(e)).convert("RGB")) for e in corpus.entries]
    det = gen.make_detector("periodic-lr", seed=0).fit([ims[i] for i in s.train], [corpus.entries[i].label
                                                                                      for i in s.train])
    thr = gen.threshold_at_fpr(det.p_generated([ims[i] for i in s.calibration]), 0.05)
    r, f = det.p_generated([ims[i] for i in s.test_real]), det.p_generated([ims[i] for i in s.test_fake])
    logged = json.loads((tmp_path / "o" / "folds.json").read_text())["rows"][0]
    sp = next(x for x in logged["splits"] if x["unit"] == "up:N-x2")
    assert sp["threshold"] == pytest.approx(thr)
    assert sp["conditions"]["none"]["up:N-x2"] == pytest.approx(gen.figures(r, f, thr, 0.05), nan_ok=True)
    table = (tmp_path / "o" / "table.md").read_text()
    assert "| `up:N-x2` | 18 |" in table and "`external-x:-` (test only)" in table


def test_a_corrupt_or_too_small_file_is_an_error_row_and_the_rest_is_evaluated(tmp_path, capsys):
    root = make_corpus(tmp_path / "c")
    (root / "real/p0_0.png").write_bytes(b"not an image")
    (root / "nn/p1_1.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "bl/p2_0.png")  # below the 32 px tiles
    res = run_generalization(_cfg(root, tmp_path / "o"), progress=False)
    assert res["n_errors"] == 3
    assert [e["path"] for e in res["errors"]] == ["real/p0_0.png", "nn/p1_1.png", "bl/p2_0.png"]
    assert "16x16" in res["errors"][2]["reason"] and all(e["reason"] for e in res["errors"])
    err = capsys.readouterr().err
    assert err.count("forensics: skipped") == 3 and "Traceback" not in err
    rows = {r["unit"]: r for r in res["rows"]}
    assert rows["up:N-x2"]["n_test_fake"] == 2 * N_PHOTOS - 1 and rows["up:B-x2"]["n_test_fake"] == 2 * N_PHOTOS - 1
    assert rows["up:N-x2"]["n_test_real"] == 3 * N_PHOTOS - 1 and np.isfinite(rows["up:N-x2"]["auc"]["mean"])
    assert "Not used (3)" in (tmp_path / "o" / "table.md").read_text()


def test_processing_is_applied_to_the_images_scored(tmp_path, recorder):
    """JPEG q75: every held-out real image is scored as its JPEG re-encoding (as well as clean), and the
    figures under it are those of the re-encoded images."""
    root = make_corpus(tmp_path / "c")
    res = run_generalization(_cfg(root, tmp_path / "o", processing=("jpeg:75",)), progress=False)
    corpus = read_manifest(root)
    reals = [np.asarray(Image.open(corpus.file(e)).convert("RGB")) for e in corpus.entries if e.label == 0]
    jpeg = perturb(reals, "jpeg", 75)
    assert all(_digest(j) != _digest(r) for j, r in zip(jpeg, reals))
    assert {_digest(j) for j in jpeg} <= recorder.scored and {_digest(r) for r in reals} <= recorder.scored
    clean, q75 = res["processing"]
    assert clean["processing"] == "none" and q75["processing"] == "jpeg:75"
    assert q75["n_fake"] == clean["n_fake"] == 2 * 2 * N_PHOTOS + 6
    assert (q75["real_fpr"], q75["auc"]) != (clean["real_fpr"], clean["auc"])
    assert set(q75["per_unit"]) == {"up:N-x2", "up:B-x2", "noise:-", "external-x:-"}


def test_an_interrupted_run_resumes_with_the_folds_it_finished(tmp_path, monkeypatch):
    root = make_corpus(tmp_path / "c")
    whole = run_generalization(_cfg(root, tmp_path / "a"), progress=False)
    run_fold, calls = gen._run_fold, []

    def dies_on_the_second(cfg, fold, *a):
        calls.append(fold.key)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return run_fold(cfg, fold, *a)

    monkeypatch.setattr(gen, "_run_fold", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        run_generalization(_cfg(root, tmp_path / "b"), progress=False)
    assert (tmp_path / "b" / "folds.json.partial").is_file() and not (tmp_path / "b" / "results.json").exists()
    with pytest.raises(FileExistsError):  # not resuming: refused, the finished fold is kept
        run_generalization(_cfg(root, tmp_path / "b"), progress=False)
    calls.clear()
    monkeypatch.setattr(gen, "_run_fold", lambda cfg, fold, *a: calls.append(fold.key) or run_fold(cfg, fold, *a))
    res = run_generalization(_cfg(root, tmp_path / "b", resume=True), progress=False)
    assert calls == ["r0-f1", "r0-f2"]
    for k in ("rows", "processing", "split"):  # (strict JSON: NaN as null, so that equal figures compare equal)
        assert dumps(res[k]) == dumps(whole[k])
    with pytest.raises(ValueError, match="other settings"):  # a finished run resumes only with its settings
        run_generalization(_cfg(root, tmp_path / "b", resume=True, seed=1), progress=False)


def test_the_cli_verb_prints_the_table_and_refuses_bad_settings(tmp_path, capsys):
    from forensics.cli.main import main

    root = make_corpus(tmp_path / "c")
    assert main(["generalization", str(root), "--detector", "periodic-lr", "--hold-out", "layer", "--folds", "3",
                 "--processing", "blur:1", "--out", str(tmp_path / "o")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# Leave-one-layer-out generalization of `periodic-lr`") and "| blur σ 1 |" in out
    assert "| `N` |" in out and "| `B` |" in out and "| `other` |" in out
    assert "forensics generalization: 4 held-out rows" in err
    assert json.loads((tmp_path / "o" / "config.json").read_text())["config"]["by"] == "layer"
    for bad, says in ((["--folds", "1"], "--folds must be in [2, 1000]"), (["--detector", "nope"], "unknown detector"),
                      (["--processing", "jpeg:700"], "jpeg strength must be in [1, 100]"),
                      (["--param", "foo=1"], "bad detector parameters")):
        argv = ["generalization", str(root), "--detector", "periodic-lr", "--out", str(tmp_path / "x"), *bad]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("forensics: error: ") and says in err and err.count("\n") == 1

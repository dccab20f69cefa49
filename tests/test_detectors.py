import json
from pathlib import Path

import numpy as np
import pytest

from forensics.core.errors import UserError
from forensics.detectors import PAPER_DETECTORS, TOOLKIT_DETECTORS, Detector, detector_names, make_detector
from forensics.detectors.estimators import ESTIMATORS, Scorer, fit_state, make_estimator
from forensics.metrics.rates import roc_auc


@pytest.fixture(scope="module")
def split(sim_pair):
    real, fake = sim_pair
    return real[0::2], fake[0::2], real[1::2], fake[1::2]


@pytest.mark.parametrize("name", TOOLKIT_DETECTORS + ("durall-lr", "durall-svm"))
def test_detectors_separate_simulated_upsampling(name, split, tmp_path):
    rtr, ftr, rte, fte = split
    det = make_detector(name, seed=1).fit_real_fake(rtr, ftr)
    sr, sf = det.score(rte), det.score(fte)
    assert ((0 <= sr) & (sr <= 1)).all() and ((0 <= sf) & (sf <= 1)).all()
    assert roc_auc(sr, sf) > 0.9
    assert det.predict(fte).mean() > 0.75 and det.predict(rte).mean() < 0.25
    det.save(tmp_path / "m")
    back = Detector.load(tmp_path / "m")
    assert back.name == name and back.threshold_ == det.threshold_
    assert np.array_equal(back.score(fte), sf)  # the saved model scores exactly the same
    assert np.array_equal(back.predict(fte), det.predict(fte))


def test_standardisation_uses_training_statistics_only(split):
    # oracle: scikit-learn's StandardScaler fitted on the training features alone; test images
    # must not move the statistics (scoring one image alone or in a batch gives one answer)
    from sklearn.preprocessing import StandardScaler

    rtr, ftr, rte, _ = split
    det = make_detector("dzanic+-knn").fit_real_fake(rtr, ftr)
    sc = StandardScaler().fit(np.concatenate([det.transform(rtr), det.transform(ftr)]))
    assert np.allclose(det.mean_, sc.mean_, rtol=1e-12) and np.allclose(det.scale_, sc.scale_, rtol=1e-12)
    one = det.score(rte[:5])
    assert np.array_equal(one, det.score(rte)[:5])
    # published Durall classifiers see unscaled features
    raw = make_detector("durall-svm").fit_real_fake(rtr, ftr)
    assert np.array_equal(raw.mean_, np.zeros(80)) and np.array_equal(raw.scale_, np.ones(80))


def test_fit_accepts_features_or_images(split):
    rtr, ftr, rte, _ = split
    a = make_detector("durall+-lr").fit_real_fake(rtr, ftr)
    b = make_detector("durall+-lr").fit_real_fake(a.transform(rtr), a.transform(ftr))
    assert np.allclose(a.score(rte), b.score(b.transform(rte)))


@pytest.mark.parametrize("est", ESTIMATORS)
def test_exported_state_scores_like_sklearn(est):
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (80, 4)), rng.normal(0.8, 1, (80, 4))]
    y = np.r_[np.zeros(80), np.ones(80)].astype(int)
    T = rng.normal(0.4, 1.3, (40, 4))
    params, arrays = fit_state(est, X, y, seed=3)
    got = Scorer(est, params, arrays)(T)
    ref = make_estimator(est, 3).fit(X, y)
    if est == "svm":  # the exported decision function is scikit-learn's exactly
        dec = Scorer(est, params, arrays).decision(T)
        assert np.allclose(dec, ref.decision_function(T), atol=1e-10)
    else:
        assert np.allclose(got, ref.predict_proba(T)[:, 1], atol=1e-8)


def test_calibrate_caps_false_positive_rate(split):
    rtr, ftr, rte, _ = split
    det = make_detector("durall+-lr").fit_real_fake(rtr, ftr).calibrate(rte, 0.05)
    s = det.score(rte)
    k = int(np.floor(0.05 * len(s)))
    # oracle: the threshold is the (k+1)-th largest real score, so exactly the k largest exceed it
    # (no ties among continuous scores)
    assert det.threshold_ == np.sort(s)[-k - 1]
    assert det.predict(rte).sum() == k


def test_names_and_errors(tmp_path):
    assert set(PAPER_DETECTORS) <= set(detector_names())
    assert make_detector("dzanic-mlp").features == "dzanic" and make_detector("dzanic+-mlp").features == "dzanic+"
    assert make_detector("dzanic-svm").published and not make_detector("dzanic+-svm").published
    with pytest.raises(UserError, match="unknown detector"):
        make_detector("fourier-magic")
    with pytest.raises(UserError, match="now dzanic-knn"):
        make_detector("dzanic-faithful-knn")
    with pytest.raises(UserError, match="not found"):
        Detector.load(tmp_path / "nothing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(UserError, match="needs model.json"):
        Detector.load(tmp_path / "junk")
    (tmp_path / "junk" / "model.json").write_text(json.dumps({"format": "forensics-detector", "format_version": 99}))
    np.savez(tmp_path / "junk" / "model.npz", a=np.zeros(1))
    with pytest.raises(UserError, match="version 99"):
        Detector.load(tmp_path / "junk")


def test_pickled_arrays_are_refused(tmp_path, split):
    rtr, ftr, _, _ = split
    make_detector("durall+-lr").fit_real_fake(rtr, ftr).save(tmp_path / "m")
    np.savez(tmp_path / "m" / "model.npz", est_coef=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(UserError, match="damaged model"):
        Detector.load(tmp_path / "m")


# ------------------------------------------------------------------ scikit-learn compatibility
def _xy(split, n=60):
    rtr, ftr, _, _ = split
    X = np.concatenate([rtr[:n], ftr[:n]])
    return X, np.r_[np.zeros(n, int), np.ones(n, int)]


def test_clone_get_params_set_params(split):
    from sklearn.base import clone

    det = make_detector("durall+-svm", seed=4, classifier_params={"C": 3.0})
    assert det.get_params(deep=True)["classifier_params"] == {"C": 3.0}
    c = clone(det)
    assert c.get_params() == det.get_params() and not hasattr(c, "scorer_")
    c.set_params(classifier="lr", classifier_params=None)
    assert c.name == "durall+-lr" and det.name == "durall+-svm"
    X, y = _xy(split)
    fitted = det.fit(X, y)
    assert fitted is det and hasattr(clone(det), "get_params") and not hasattr(clone(det), "scorer_")


@pytest.mark.parametrize("name", ["dzanic+-knn", "durall+-svm", "durall-svm", "durall-lr", "dzanic+-mlp"])
def test_detector_equals_its_sklearn_pipeline(split, name):
    # oracle: the same features, StandardScaler (or none, as published) and scikit-learn estimator
    # assembled as a plain Pipeline; predict must agree image for image (SVM: sign of the decision)
    rtr, ftr, rte, fte = split
    X, y = _xy(split, 100)
    T = np.concatenate([rte[:80], fte[:80]])
    det = make_detector(name, seed=2).fit(X, y)
    pipe = det.to_pipeline().fit(X, y)
    assert np.array_equal(det.predict(T), pipe.predict(T))
    if hasattr(pipe, "decision_function") and name.split("-")[-1] in ("svm", "lr"):
        assert np.allclose(det.decision_function(T), pipe.decision_function(T), atol=1e-8)
    # scores stay probabilities, and the stored threshold agrees with predict
    p = det.predict_proba(T)
    assert np.allclose(p.sum(1), 1) and ((p >= 0) & (p <= 1)).all()
    assert np.array_equal(det.predict(T), (p[:, 1] > det.threshold_).astype(int)) or name.endswith("svm")
    if name.endswith("svm"):
        assert ((p[:, 1] > det.threshold_) == det.predict(T).astype(bool)).mean() >= 0.99


def test_published_svm_decides_by_the_decision_function_not_platt(split):
    from sklearn.svm import SVC

    X, y = _xy(split, 100)
    rtr, ftr, rte, fte = split
    T = np.concatenate([rte[:100], fte[:100]])
    det = make_detector("durall-svm").fit(X, y)
    F = det.transform(X)
    ref = SVC(kernel="rbf", C=6.37, gamma=0.86).fit(F, y)  # Durall et al.'s classifier, unscaled
    assert np.array_equal(det.predict(T), ref.predict(det.transform(T)))


def test_feature_transformer_pipeline_cross_val_and_grid_search(split):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from forensics.detectors import SpectralFeatures
    from forensics.spectral import spectrum

    X, y = _xy(split, 60)
    tf = SpectralFeatures("durall+")
    assert np.array_equal(tf.fit_transform(X), spectrum.features(X, "durall+"))
    assert list(tf.get_feature_names_out())[:2] == ["durall+_0", "durall+_1"]
    pipe = Pipeline([("f", SpectralFeatures("dzanic+")), ("s", StandardScaler()), ("c", LogisticRegression())])
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    acc = cross_val_score(pipe, X, y, cv=cv)
    assert acc.shape == (3,) and acc.mean() > 0.8
    # the detector itself in cross_val_score (default scoring: accuracy) and GridSearchCV
    det = make_detector("durall+-lr")
    acc2 = cross_val_score(det, X, y, cv=cv)
    assert acc2.mean() > 0.8
    gs = GridSearchCV(det, {"features": ["durall+", "dzanic+"], "classifier_params": [{"C": 0.01}, {"C": 10.0}]},
                      cv=cv).fit(X, y)
    assert gs.best_params_["features"] in ("durall+", "dzanic+") and gs.best_estimator_.n_train_["real"] == 60
    # a detector as the last step of a Pipeline
    outer = Pipeline([("keep", "passthrough"), ("det", make_detector("dzanic+-knn"))]).fit(X, y)
    assert np.array_equal(outer.predict(X), outer[-1].predict(X))


def test_replacing_a_model_swaps_the_pair(split, tmp_path, monkeypatch):
    from forensics.detectors import base

    X, y = _xy(split, 40)
    a = make_detector("durall+-lr").fit(X, y)
    b = make_detector("dzanic+-knn").fit(X, y)
    a.save(tmp_path / "m")
    b.save(tmp_path / "m")
    assert Detector.load(tmp_path / "m").name == "dzanic+-knn"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # nothing left beside it
    # interrupted between the two renames of the fallback swap: the new model ends up in place
    monkeypatch.setattr(base, "_exchange", lambda *_: False)
    real_replace = base.os.replace
    crashed = []

    def crash_once(src, dst):  # the rename that would put the new folder in place
        if Path(dst) == tmp_path / "m" and ".new-" in str(src) and not crashed:
            crashed.append(dst)
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(base.os, "replace", crash_once)
    with pytest.raises(KeyboardInterrupt):
        a.save(tmp_path / "m")
    monkeypatch.setattr(base.os, "replace", real_replace)
    assert crashed and Detector.load(tmp_path / "m").name == "durall+-lr"
    # a hard crash (no handler ran) at the same point: load finishes the swap
    import shutil

    shutil.copytree(tmp_path / "m", tmp_path / ".m.new-x")
    b.save(tmp_path / ".m.new-x")
    (tmp_path / ".m.new-x" / ".complete").touch()
    (tmp_path / "m").rename(tmp_path / ".m.old-1")
    assert Detector.load(tmp_path / "m").name == "dzanic+-knn"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        a.save(tmp_path / "other")


def test_format_1_models_load_with_their_old_meaning():
    # the previous default model (data/models/durall-lr) was trained as "durall-lr" in format 1
    from forensics.detectors.store import load_model
    from forensics.io.sources import data_dir

    det = load_model(data_dir() / "models" / "durall-lr")
    assert det.name == "durall+-lr" and det.rule_ == "threshold" and det.threshold_ == 0.5

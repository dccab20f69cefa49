import json

import numpy as np
import pytest

from forensics.detectors import PAPER_DETECTORS, Detector, detector_names, make_detector
from forensics.detectors.estimators import ESTIMATORS, Scorer, fit_state, make_estimator
from forensics.errors import UserError
from forensics.metrics import roc_auc


@pytest.fixture(scope="module")
def split(sim_pair):
    real, fake = sim_pair
    return real[0::2], fake[0::2], real[1::2], fake[1::2]


@pytest.mark.parametrize("name", PAPER_DETECTORS)
def test_paper_detectors_separate_simulated_upsampling(name, split, tmp_path):
    rtr, ftr, rte, fte = split
    det = make_detector(name, seed=1).fit(rtr, ftr)
    sr, sf = det.score(rte), det.score(fte)
    assert ((0 <= sr) & (sr <= 1)).all() and ((0 <= sf) & (sf <= 1)).all()
    assert roc_auc(sr, sf) > 0.9
    assert det.predict(fte).mean() > 0.75 and det.predict(rte).mean() < 0.25
    det.save(tmp_path / "m")
    back = Detector.load(tmp_path / "m")
    assert back.name == name and back.threshold_ == det.threshold_
    assert np.array_equal(back.score(fte), sf)  # the saved model scores exactly the same
    # the array file holds plain numbers only: readable without pickle
    with np.load(tmp_path / "m" / "model.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_standardisation_uses_training_statistics(split):
    rtr, ftr, rte, _ = split
    det = make_detector("dzanic-knn").fit(rtr, ftr)
    X = np.concatenate([det.transform(rtr), det.transform(ftr)])
    assert np.allclose(det.mean_, X.mean(0)) and np.allclose(det.scale_, X.std(0))
    one = det.score(rte[:5])
    assert np.array_equal(one, det.score(rte)[:5])  # a sample's score doesn't depend on its batch


def test_fit_accepts_features_or_images(split):
    rtr, ftr, rte, _ = split
    a = make_detector("durall-lr").fit(rtr, ftr)
    b = make_detector("durall-lr").fit(a.transform(rtr), a.transform(ftr))
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
    if est == "svm":  # Platt scaling keeps the SVM's decision boundary
        assert ((got > 0.5) == (ref.decision_function(T) > 0)).mean() >= 0.95
    else:
        assert np.allclose(got, ref.predict_proba(T)[:, 1], atol=1e-8)


def test_calibrate_caps_false_positive_rate(split):
    rtr, ftr, rte, _ = split
    det = make_detector("durall-lr").fit(rtr, ftr).calibrate(rte, 0.05)
    assert det.predict(rte).mean() <= 0.05
    assert det.predict(rte).mean() > 0 or det.threshold_ >= det.score(rte).max()


def test_names_and_errors(tmp_path):
    assert set(PAPER_DETECTORS) <= set(detector_names())
    assert make_detector("dzanic-faithful-mlp").features == "dzanic-faithful"
    with pytest.raises(UserError, match="unknown detector"):
        make_detector("fourier-magic")
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
    make_detector("durall-lr").fit(rtr, ftr).save(tmp_path / "m")
    np.savez(tmp_path / "m" / "model.npz", est_coef=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(UserError, match="damaged model"):
        Detector.load(tmp_path / "m")

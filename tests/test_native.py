"""The native-resolution detector (``native``): a local upsampling artefact in a 1024-px photo is
caught, mixed sizes score in one call, the model round-trips code-free, it is a scikit-learn
estimator, and a larger image gives more evidence than a crop of it."""
import json

import numpy as np
import pytest

from forensics.generators.simulate import simulate_family
from forensics.io.sources import builtin_photos

#: the 512x512 built-in photos that make the 1024-px mosaic; never in training here
MOSAIC = (0, 1, 5, 6)


def _photos():
    return [p[1] for p in builtin_photos(extra=True)]


#: built-in photos held out to set the threshold; never in training here
CALIBRATION = (2, 3, 8, 13)


def _crops(photos, n, side, rng):
    out = []
    for im in photos:
        h, w = im.shape[:2]
        for _ in range(n):
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            out.append(im[y:y + side, x:x + side])
    return np.stack(out)


@pytest.fixture(scope="module")
def trained():
    """A small seeded model: 128- and 256-px crops of the other photos vs their simulated
    upsampling (every method of simulate_family, 1-2 stages), thresholded at 5 % false positives
    on crops of the calibration photos."""
    from forensics.detectors.names import make_detector

    rng = np.random.default_rng(0)
    ph = _photos()
    train = [im for i, im in enumerate(ph) if i not in MOSAIC + CALIBRATION]
    X, y = [], []
    for n, side in ((6, 128), (3, 256)):
        real = _crops(train, n, side, rng)
        fake = simulate_family(real, seed=side, chunk=4, stages=(1, 2), channels=4)
        X += list(real) + list(fake)
        y += [0] * len(real) + [1] * len(fake)
    det = make_detector("native", seed=0).fit(X, np.array(y))
    cal = [ph[i] for i in CALIBRATION]
    return det.calibrate(cal + list(_crops(cal, 10, 128, rng)) + list(_crops(cal, 10, 240, rng)), 0.05)


def _mosaic() -> np.ndarray:
    ph = _photos()
    top = np.concatenate([ph[MOSAIC[0]], ph[MOSAIC[1]]], axis=1)
    bottom = np.concatenate([ph[MOSAIC[2]], ph[MOSAIC[3]]], axis=1)
    return np.ascontiguousarray(np.concatenate([top, bottom], axis=0))


def test_a_local_upsampling_artefact_in_a_1024px_photo_is_flagged_and_the_clean_photo_is_not(trained):
    clean = _mosaic()
    assert clean.shape == (1024, 1024, 3)
    # one 256x256 region (1/16 of the image) replaced by its x2-down, bilinear-up + conv version
    hit = clean.copy()
    region = np.ascontiguousarray(clean[128:384, 640:896])
    hit[128:384, 640:896] = simulate_family(region[None], seed=3, methods=("bilinear",))[0]
    p_clean, p_hit = trained.p_generated([clean, hit])
    assert p_clean < trained.threshold_ < p_hit, (p_clean, trained.threshold_, p_hit)
    assert trained.predict([clean, hit]).tolist() == [0, 1]
    # and the flag comes from that region: its tiles are the image's most suspicious ones
    z, side = trained.tile_logits(hit)
    grid = z.reshape(1024 // side, 1024 // side)
    inside = np.zeros_like(grid, bool)
    inside[128 // side:384 // side, 640 // side:896 // side] = True
    assert grid[inside].mean() > np.percentile(grid[~inside], 95)


def test_mixed_sizes_in_one_call_and_below_min_size_is_nan(trained):
    ph = _photos()
    ims = [ph[9][:300, :500], ph[2][:40, :48], ph[2][:20, :20], ph[3][:64, :100], ph[4][:31, :200]]
    s = trained.p_generated(ims)
    assert s.shape == (5,)
    assert np.isfinite(s[[0, 1, 3]]).all() and np.isnan(s[[2, 4]]).all()
    assert trained.min_size == 32
    # one call scores each image as alone
    one = np.array([trained.p_generated([im])[0] for im in ims])
    np.testing.assert_array_equal(np.isnan(one), np.isnan(s))
    np.testing.assert_allclose(one[[0, 1, 3]], s[[0, 1, 3]])
    # a flat image has nothing to judge
    assert np.isnan(trained.p_generated([np.full((128, 128, 3), 90, np.uint8)]))[0]


def test_save_load_round_trip_is_code_free_and_identical(trained, tmp_path):
    from forensics.detectors.store import load_model

    folder = trained.save(tmp_path / "native")
    meta = json.loads((folder / "model.json").read_text())
    assert meta["class"] == "NativeResolutionDetector" and meta["name"] == "native"
    with np.load(folder / "model.npz", allow_pickle=False) as z:
        assert all(z[k].dtype.kind == "f" for k in z.files)
    det = load_model(folder)
    ph = _photos()
    ims = [ph[9], ph[2][:48, :48], _mosaic()]
    np.testing.assert_array_equal(det.p_generated(ims), trained.p_generated(ims))
    assert det.threshold_ == trained.threshold_


def test_sklearn_clone_and_params():
    from sklearn.base import clone

    from forensics.detectors.names import make_detector

    det = make_detector("native", seed=3, C=0.5, window=3)
    c = clone(det)
    assert c.get_params() == det.get_params()
    assert c.get_params()["C"] == 0.5 and c.get_params()["seed"] == 3 and c is not det
    with pytest.raises(ValueError, match="multiple of 8"):
        make_detector("native", tile=60).fit([np.zeros((64, 64, 3), np.uint8)] * 2, [0, 1])


def test_a_larger_image_gives_more_evidence_than_its_crops(trained):
    """Upsampled 512-px images score above their 64-px crops on average; and the whole-image term
    grows with the area both ways (above the crops' for fakes, below for real photos)."""
    ph = _photos()
    real = np.stack([ph[i] for i in MOSAIC])
    fake = simulate_family(real, seed=5, chunk=1)
    for ims, sign in ((fake, 1), (real, -1)):
        crops = [im[y:y + 64, x:x + 64] for im in ims for y in range(0, 512, 128) for x in range(0, 512, 128)]
        part = trained.decision_function(crops).reshape(len(ims), -1).mean(axis=1)
        whole_term = np.array([trained.terms(*trained.tile_logits(im))[0] for im in ims])
        assert sign * whole_term.mean() > 1.2 * sign * part.mean() > 0, (sign, whole_term, part)
        if sign == 1:
            whole = trained.decision_function(list(ims))
            assert whole.mean() > 1.2 * part.mean() > 0, (whole, part)


def test_features_computed_once_fit_and_score_like_the_images(trained):
    """The per-image feature path (what the leave-one-family-out protocol uses) gives the same model and
    the same scores as fitting and scoring on the images."""
    from sklearn.base import clone

    rng = np.random.default_rng(3)
    ph = _photos()
    real = _crops(ph[:6], 2, 128, rng)
    fake = simulate_family(real, seed=5, chunk=4, channels=4)
    X = list(real) + list(fake) + [ph[0], ph[1][:40, :200], ph[2][:20, :20]]
    y = np.r_[np.zeros(len(real)), np.ones(len(fake)), 0, 0, 1]
    a = clone(trained).fit(X, y)
    b = clone(trained).fit_features(a.image_features(X), y)
    pa, pb = a.p_generated(X), b.p_generated_features(b.image_features(X))
    assert np.isnan(pa[-1]) and np.isnan(pb[-1])
    assert np.array_equal(pa, pb, equal_nan=True)
    assert np.array_equal(pa, b.p_generated(X), equal_nan=True)


def test_spectrum_features_flat_for_noise_and_peaked_for_a_period():
    """White noise gives a flat radial profile (log power over the mean: ~0 away from the lowest rings,
    which the window and the removed mean shape); a period-4 pattern along x puts a peak in the rows'
    spectrum at kx = s/4 and none in the columns' spectrum there."""
    from forensics.detectors.native import spectrum_features

    rng = np.random.default_rng(0)
    g = (100 + 20 * rng.normal(size=(256, 256))).astype(np.float32)
    F = spectrum_features(g, 64)
    n = 32
    assert F.shape == (16, 3 * n)
    assert np.abs(F[:, 2:n].mean(0)).max() < 0.2
    stripes = (g + 30 * np.cos(2 * np.pi * np.arange(256) / 4)[None, :]).astype(np.float32)
    F = spectrum_features(stripes, 64)
    rows, cols = F[:, n:2 * n].mean(0), F[:, 2 * n:].mean(0)
    assert rows.argmax() + 1 == 64 // 4 and rows.max() > 2.0
    assert cols[64 // 4 - 1] < 0.0


def test_linear_tile_classifier_round_trips(tmp_path):
    """``hidden=0`` (a logistic regression per tile, 0.4's first build) fits, saves and loads to the same
    scores as the default one-layer network does."""
    from forensics.detectors.names import make_detector
    from forensics.detectors.store import load_model

    rng = np.random.default_rng(1)
    real = _crops(_photos()[9:13], 4, 96, rng)
    fake = simulate_family(real, seed=2, chunk=4)
    X, y = list(real) + list(fake), np.r_[np.zeros(len(real)), np.ones(len(fake))]
    for hidden, spectrum in ((0, False), (8, True)):
        det = make_detector("native", hidden=hidden, spectrum=spectrum, seed=0).fit(X, y)
        assert ("W0" in det.models_[64]) == bool(hidden)
        det.threshold_ = 0.5
        folder = det.save(tmp_path / f"h{hidden}")
        if not spectrum:  # as a file written before these parameters existed: read as what it holds
            mj = folder / "model.json"
            meta = json.loads(mj.read_text())
            del meta["params"]["hidden"], meta["params"]["spectrum"]
            mj.write_text(json.dumps(meta))
        back = load_model(folder)
        assert back.spectrum == spectrum and back.hidden == hidden  # what the file holds, not the defaults
        np.testing.assert_array_equal(back.p_generated(X[:4]), det.p_generated(X[:4]))
    for bad in (-1, True, 2.5):
        with pytest.raises(ValueError, match="hidden"):
            make_detector("native", hidden=bad).fit(X, y)
    # a handful of images (too few tiles of a class for early stopping's held-out tenth) still fits
    few = make_detector("native", seed=0).fit(X[:2] + X[len(real):len(real) + 2], [0, 0, 1, 1])
    assert np.isfinite(few.decision_function(X[:2])).all()

"""The robust detector's second version (level features, cross-fitted calibration, two-stage
simulation), the wider built-in real set and the default model that is now the robust detector."""
import json
import warnings

import numpy as np
import pytest
from PIL import Image


def fields(n, seed, contrast, noise=0.0, gain=1.0, size=32):
    """1/f^2 Gaussian fields of grey standard deviation drawn from ``contrast`` (low, high),
    plus white noise of ``noise`` grey levels, then scaled by ``gain`` around grey 128 and
    rounded; grey RGB uint8."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    amp = 1 / f
    amp[0, 0] = 0
    x = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, size, size))) * amp).real
    x = x / x.std(axis=(1, 2), keepdims=True) * rng.uniform(*contrast, (n, 1, 1)) + 128
    x = (x + noise * rng.standard_normal(x.shape) - 128) * gain + 128
    return np.repeat(np.clip(np.rint(x), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def test_level_features_shift_by_the_log_of_the_power_ratio():
    from forensics.detectors.robust import level_features

    rng = np.random.default_rng(0)
    g = rng.standard_normal((400, 32, 32))
    a, b = level_features(10 * g), level_features(20 * g)
    # white noise twice as strong: 4x the power at every frequency, so log power + log 4 exactly
    np.testing.assert_allclose(b - a, np.log(4.0), atol=1e-2)  # (up to the 1e-3 floor inside the log)
    # and they are what the contrast-free spectrum drops: a constant offset of the log power
    from forensics.detectors.robust import folded_log_power

    d = folded_log_power(20 * g) - folded_log_power(10 * g)
    assert np.median(np.abs(d)) < 1e-3 and np.abs(d.mean(axis=0)).max() < 2e-2  # (bins near 0 feel the floor)


def test_low_contrast_smooth_images_are_caught_only_with_the_level_features():
    """The first version's blind spot: a generator's low-contrast output is smooth up to the 8-bit
    rounding, a photograph of the same contrast keeps its noise. Contrast-free features cannot
    tell them apart; the level features can."""
    from forensics.detectors.robust import RobustSpectralDetector

    real = fields(320, 0, (3, 12), noise=3.0)
    held_out = fields(200, 1, (3, 12), noise=3.0)
    # a real-looking image of contrast 6-12 turned down 4x before rounding: its spectrum has the
    # shape of a real one (all the contrast-free features see), its noise is 4x too weak
    smooth = fields(200, 2, (6, 12), noise=3.0, gain=0.25)
    kw = dict(n_sim=1, hidden=16, seed=0)
    new = RobustSpectralDetector(**kw).fit(real)
    old = RobustSpectralDetector(level=False, **kw).fit(real)
    assert (new.predict(held_out) == 0).mean() >= 0.9 and (old.predict(held_out) == 0).mean() >= 0.9
    assert new.predict(smooth).mean() >= 0.85  # measured 0.94
    assert old.predict(smooth).mean() <= 0.15  # measured 0.02: blind to it


def test_cross_fitted_calibration_scores_every_training_photo_once():
    from forensics.detectors.robust import RobustSpectralDetector

    real = fields(120, 3, (10, 40), noise=1.0)
    groups = np.repeat(np.arange(6), 20)
    det = RobustSpectralDetector(n_sim=1, hidden=8, seed=0, calib_folds=3).fit(real, groups=groups)
    assert det.n_train_["real_tiles_heldout"] == 120 and det.n_train_["real_tiles_fit"] == 120
    one = RobustSpectralDetector(n_sim=1, hidden=8, seed=0, calib_folds=1).fit(real, groups=groups)
    assert one.n_train_["real_tiles_heldout"] == 40  # round(0.25 * 6) = 2 photos of 20
    with pytest.raises(ValueError, match="at least as many photos"):
        RobustSpectralDetector(n_sim=1, hidden=8, calib_folds=8).fit(real, groups=groups)
    with pytest.raises(ValueError, match="calibration folds"):
        RobustSpectralDetector(calib_folds=0).fit(real)


def test_simulate_family_stages():
    from forensics.generators.simulate import simulate_family

    x = fields(64, 4, (10, 40))
    one, two = simulate_family(x, seed=1), simulate_family(x, seed=1, stages=(2,))
    assert one.shape == two.shape == x.shape and one.dtype == two.dtype == np.uint8
    np.testing.assert_array_equal(one, simulate_family(x, seed=1, stages=(1,)))  # the default is one stage
    assert not np.array_equal(one, two)
    three = simulate_family(x, seed=1, stages=(3,))  # x8: the corpus's up:G-x8 families
    assert three.shape == x.shape and not np.array_equal(three, two)
    with pytest.raises(ValueError, match="stages"):
        simulate_family(x, stages=(4,))


# ------------------------------------------------------------------------------ built-in photos
def test_builtin_wide_adds_the_extra_photos_and_keeps_builtin_as_it_was():
    from forensics.io.sources import builtin_patches, data_dir, load_source

    core, wide = builtin_patches(32), builtin_patches(32, extra=True)
    assert core.manifest["source"] == "builtin" and wide.manifest["source"] == "builtin-wide"
    np.testing.assert_array_equal(wide.images[:len(core)], core.images)  # core photos first, unchanged
    extra = {n.split("@")[0] for n in wide.names[len(core):]}
    assert len(extra) == 13 and all(n.startswith("extra_") for n in extra)
    assert len(load_source("builtin-wide", 32, n=10, seed=1)) == 10
    # every photograph, core or extra, has its licence recorded in both places
    meta = json.loads((data_dir() / "real" / "sources.json").read_text())
    sources_md = (data_dir() / "real" / "SOURCES.md").read_text()
    for p in meta["photos"]:
        assert p["licence"] and p["file"] in sources_md and (data_dir() / "real" / p["file"]).is_file()
    assert sum(p.get("set") == "extra" for p in meta["photos"]) == 13


def test_a_damaged_extra_photo_is_refused(tmp_path, monkeypatch):
    import shutil

    from forensics.core.errors import UserError
    from forensics.io.sources import builtin_photos, data_dir

    copy = tmp_path / "data"
    shutil.copytree(data_dir() / "real", copy / "real")
    (copy / "real" / "extra_mate_wood.png").write_bytes(b"not the photo")
    monkeypatch.setenv("FORENSICS_DATA", str(copy))
    builtin_photos.cache_clear()
    try:
        builtin_photos(False)  # the core set does not read the extra files
        with pytest.raises(UserError, match="extra_mate_wood.png"):
            builtin_photos(True)
    finally:
        builtin_photos.cache_clear()


# ------------------------------------------------------------------------------ default model
def test_the_default_model_is_the_robust_detector_with_a_card_and_envelope(tmp_path):
    from forensics.core.errors import ForensicsWarning
    from forensics.detection.detect import detect
    from forensics.detectors.store import default_model_dir, load_model
    from forensics.io.sources import data_dir

    det = load_model()
    assert det.name == "robust-spectral"
    tr = det.meta_["training"]
    assert tr["real"] == "builtin-wide" and tr["generated"].startswith("none")
    assert tr["envelope"]["colour"] is True and tr["sizes"] == {"real": {"32x32": tr["n_real"]}}
    assert "Measured rates" in (default_model_dir() / "MODEL_CARD.md").read_text()
    assert (data_dir() / "models" / "durall-lr" / "model.json").is_file()  # the previous default is kept
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 255, (32, 32, 3), np.uint8)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    Image.fromarray(colour[..., 1]).save(tmp_path / "grey.png")
    with pytest.warns(ForensicsWarning, match="1 of 2 images are greyscale"):
        rows = detect(tmp_path, progress=False)
    assert len(rows) == 2 and all(r["label"] in ("real", "generated") for r in rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForensicsWarning)  # colour and 32x32: inside the envelope
        detect(tmp_path / "colour.png", progress=False)


def test_flat_images_get_no_verdict_and_flat_tiles_no_vote():
    """An image whose pixels are all equal has no spectrum: NaN (detect's error row), not the
    'generated' its zero fine-scale energy used to give; a flat tile beside a textured one does
    not change the textured image's score."""
    from forensics.detectors.robust import RobustSpectralDetector

    det = RobustSpectralDetector(n_sim=1, hidden=16, seed=0).fit(fields(160, 0, (3, 12), noise=3.0))
    flat = np.zeros((2, 32, 32, 3), np.uint8)
    flat[1] = 255
    assert np.isnan(det.p_generated(flat)).all()
    tex = fields(1, 5, (3, 12), noise=3.0)[0]
    wide = np.concatenate([tex, np.full_like(tex, 128)], axis=1)  # 32 x 64: one textured, one flat tile
    assert det.p_generated(wide[None])[0] == pytest.approx(det.p_generated(tex[None])[0], abs=1e-9)
    assert np.isfinite(det.p_generated(tex[None])).all()


def test_device_cuda_with_the_default_model_says_it_is_not_used(tmp_path, capsys):
    """The robust default model has no torch feature path: --device cpu|cuda must say so in one
    warning line (it was silently ignored) and still score every file with NumPy."""
    from forensics.cli.main import main

    for i, im in enumerate(fields(2, 9, (10, 30), noise=3.0)):
        Image.fromarray(im).save(tmp_path / f"{i}.png")
    assert main(["detect", str(tmp_path), "--device", "cuda", "--out", str(tmp_path / "d.json")]) == 0
    err = capsys.readouterr().err
    assert "has no torch feature path" in err and "'cuda' is not used" in err
    rows = json.loads((tmp_path / "d.json").read_text())["rows"]
    assert len(rows) == 2 and all(r["label"] in ("real", "generated") for r in rows)

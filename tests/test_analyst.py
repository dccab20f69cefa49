"""The analyst's toolkit: metrics against hand-made answers and sklearn, the robust detector on
power-law images, model round trips, and the evaluate / calibrate / robustness verbs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from forensics.cli.main import main
from forensics.metrics.rates import best_threshold, binary_metrics, confusion, threshold_at_fpr, tpr_at_fpr


# ------------------------------------------------------------------------------ metrics
def test_tpr_at_fpr_on_hand_made_scores():
    real = np.arange(1, 11) / 10.0  # 0.1 .. 1.0
    fake = np.array([0.95, 0.85, 1.0, 0.05])
    # 10 % of 10 reals = 1 may exceed the threshold -> threshold 0.9; fakes above: 0.95, 1.0
    assert threshold_at_fpr(real, 0.10) == 0.9
    assert tpr_at_fpr(real, fake, 0.10) == 0.5
    # 1 % of 10 = 0 reals may exceed -> threshold 1.0, nothing above it
    assert tpr_at_fpr(real, fake, 0.01) == 0.0
    # 25 % of 10 -> floor 2 reals above -> threshold 0.8; 0.95, 0.85, 1.0 above
    assert tpr_at_fpr(real, fake, 0.25) == 0.75
    # FPR 1: every real may be above: threshold below all -> every fake detected
    assert tpr_at_fpr(real, fake, 1.0) == 1.0


def test_one_threshold_at_fpr_rule_with_its_edge_cases():
    # one function sets every threshold for a false-positive rate (issue: a second copy in detectors.base
    # gave 0.5 on an empty set and lost one image to float rounding, where this one gave -inf)
    from forensics.detectors import base, fusion, robust
    from forensics.metrics import rates

    assert base.threshold_at_fpr is fusion.threshold_at_fpr is robust.threshold_at_fpr is rates.threshold_at_fpr
    real = np.arange(1, 101) / 100.0
    t = threshold_at_fpr(real, 0.57)  # 0.57 * 100 = 56.99999999999999 in floats: still 57 may be above
    assert t == 0.43 and (real > t).sum() == 57
    assert threshold_at_fpr(np.r_[real, np.nan, np.inf], 0.57) == 0.43  # unscored images are left out
    assert threshold_at_fpr(real, 0.0) == 1.0 and threshold_at_fpr(real, 1.0) == -np.inf
    with pytest.raises(ValueError, match="no finite real-image score"):
        threshold_at_fpr([np.nan], 0.05)
    assert np.isnan(tpr_at_fpr([], [0.5], 0.05))
    # a detector's calibrate() follows the same rule, and refuses a rate that gives no finite threshold
    from forensics.detectors.spectral import SpectralDetector

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    det = SpectralDetector(features="dzanic+", classifier="lr").fit(X, np.r_[np.zeros(30), np.ones(30)].astype(int))
    det.calibrate(X[:30], 0.1)
    assert det.threshold_ == threshold_at_fpr(det.p_generated(X[:30]), 0.1)
    with pytest.raises(ValueError, match="target false-positive rate"):
        det.calibrate(X[:30], 1.0)


def test_binary_metrics_agree_with_sklearn():
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, confusion_matrix, roc_auc_score

    rng = np.random.default_rng(0)
    r, f = rng.normal(0, 1, 200), rng.normal(1, 1, 150)
    m = binary_metrics(r, f, 0.5)
    y, s = np.r_[np.zeros(200), np.ones(150)], np.r_[r, f]
    assert m["auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["average_precision"] == pytest.approx(average_precision_score(y, s))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, s > 0.5))
    (tn, fp), (fn, tp) = confusion_matrix(y, s > 0.5)
    assert m["confusion"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert confusion([0.2, 0.7], [0.7, 0.9], 0.7) == {"tn": 2, "fp": 0, "fn": 1, "tp": 1}  # ties are real


def test_best_threshold_separates_and_maximises_balanced_accuracy():
    r, f = np.array([0.1, 0.2, 0.3]), np.array([0.6, 0.7])
    t = best_threshold(r, f, "mcc")
    assert 0.3 <= t < 0.6
    # overlapping: the balanced-accuracy optimum found by brute force over all cut points
    rng = np.random.default_rng(1)
    r, f = rng.normal(0, 1, 50), rng.normal(0.8, 1, 40)
    t = best_threshold(r, f, "balanced-accuracy")
    ba = lambda c: ((r <= c).mean() + (f > c).mean()) / 2  # noqa: E731
    assert ba(t) == pytest.approx(max(ba(c) for c in np.r_[r, f, -9]))


# ------------------------------------------------------------------------------ robust detector
def power_law_images(n, beta, seed, size=32, tail=1.0):
    """Gaussian random fields with power spectrum 1/f^beta (amplitude times ``tail`` above a
    quarter of the sampling rate), random contrast, as RGB uint8."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    f = np.sqrt(fy ** 2 + fx ** 2)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2)
    amp[0, 0] = 0
    amp[f > 0.25] *= tail
    x = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, size, size))) * amp).real
    x = x / x.std(axis=(1, 2), keepdims=True) * rng.uniform(15, 40, (n, 1, 1)) + 128
    return np.repeat(np.clip(np.rint(x), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


@pytest.fixture(scope="module")
def robust_on_power_law():
    from forensics.detectors.robust import RobustSpectralDetector

    real = power_law_images(240, 2.0, seed=0)
    return RobustSpectralDetector(n_sim=1, hidden=16, seed=0).fit(real)


def test_robust_detector_flags_over_and_undershooting_spectra(robust_on_power_law):
    det = robust_on_power_law
    held_out = power_law_images(200, 2.0, seed=1)
    over = power_law_images(200, 2.0, seed=2, tail=2.5)   # more high-frequency energy than real
    under = power_law_images(200, 2.0, seed=3, tail=0.5)  # less: what N.1.5 / B.1.5 fakes do
    assert (det.predict(held_out) == 0).mean() >= 0.88
    assert det.predict(over).mean() >= 0.85
    assert det.predict(under).mean() >= 0.85


def test_robust_model_round_trip_and_clone(robust_on_power_law, tmp_path):
    from sklearn.base import clone

    from forensics.detection.detect import detect
    from forensics.detectors.store import load_model

    det = robust_on_power_law
    det.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    x = power_law_images(10, 2.4, seed=5)
    np.testing.assert_allclose(back.score(x), det.score(x), rtol=1e-12)
    assert back.threshold_ == det.threshold_
    assert clone(det).get_params() == det.get_params()
    # the toolkit's detect verb reads it like any model; larger images are tiled
    Image.fromarray(np.tile(x[0], (3, 2, 1))).save(tmp_path / "big.png")
    Image.fromarray(x[1][:20, :20]).save(tmp_path / "small.png")
    rows = {r["path"].split("/")[-1]: r for r in detect([tmp_path / "big.png", tmp_path / "small.png"],
                                                       tmp_path / "m", progress=False)}
    assert rows["big.png"]["label"] in ("real", "generated")
    assert rows["small.png"]["label"] == "error"


def test_frank_periodic_and_fusion_learn_and_round_trip(tmp_path):
    from forensics.detectors.frank import FrankDCTDetector
    from forensics.detectors.fusion import ScoreFusion
    from forensics.detectors.periodic import PeriodicSpectrumDetector
    from forensics.detectors.store import load_model

    real = power_law_images(160, 2.0, seed=6)
    fake = real.copy()
    fake[:, 1::2, :] = fake[:, ::2, :]  # nearest-neighbour row doubling: a period-2 trace
    X, y = np.r_[real[:120], fake[:120]], np.r_[np.zeros(120), np.ones(120)].astype(int)
    dets = [FrankDCTDetector().fit(X, y), PeriodicSpectrumDetector().fit(X, y)]
    te = np.r_[real[120:], fake[120:]]
    for d in dets:
        assert d.score(te, np.r_[np.zeros(40), np.ones(40)].astype(int)) >= 0.9  # sklearn accuracy
        d.save(tmp_path / d.name)
        np.testing.assert_allclose(load_model(tmp_path / d.name).score(te), d.score(te), rtol=1e-12)
    fu = ScoreFusion("mean").with_members(dets)
    np.testing.assert_allclose(fu.score(te), (dets[0].score(te) + dets[1].score(te)) / 2)
    fu.save(tmp_path / "fu")
    np.testing.assert_allclose(load_model(tmp_path / "fu").score(te), fu.score(te))


# ------------------------------------------------------------------------------ verbs
@pytest.fixture(scope="module")
def folders(tmp_path_factory, robust_on_power_law):
    root = tmp_path_factory.mktemp("analyst")
    for name, imgs in (("real", power_law_images(40, 2.0, seed=10)), ("gen_over", power_law_images(30, 2.0, seed=11, tail=3.0)),
                       ("gen_under", power_law_images(30, 2.0, seed=12, tail=0.4))):
        (root / name).mkdir()
        for i, im in enumerate(imgs):
            Image.fromarray(im).save(root / name / f"{i:03d}.png")
    (root / "real" / "broken.png").write_bytes(b"not an image")
    robust_on_power_law.save(root / "model")
    return root


def test_evaluate_verb_writes_metrics_plots_and_report(folders, tmp_path):
    out = tmp_path / "ev"
    assert main(["evaluate", str(folders / "model"), "--real", str(folders / "real"), "--fake",
                 str(folders / "gen_over"), "--fake", str(folders / "gen_under"), "--out", str(out)]) == 0
    ev = json.loads((out / "evaluation.json").read_text())
    assert set(ev["per_generator"]) == {"gen_over", "gen_under"}
    o = ev["overall"]
    assert o["n_real"] == 40 and o["n_generated"] == 60 and ev["n_errors"] == 1
    c = o["confusion"]
    assert c["tn"] + c["fp"] == 40 and c["tp"] + c["fn"] == 60
    assert o["auc"] > 0.9
    for f in ("roc.png", "roc.svg", "pr.png", "pr.svg", "report.md", "scores.csv", "config.json"):
        assert (out / f).is_file(), f
    # the same data in a 0_real / 1_fake layout
    lay = tmp_path / "lay"
    lay.mkdir()
    (lay / "0_real").symlink_to(folders / "real")
    (lay / "1_fake").symlink_to(folders / "gen_under")
    assert main(["evaluate", str(folders / "model"), "--data", str(lay), "--out", str(tmp_path / "ev2")]) == 0
    ev2 = json.loads((tmp_path / "ev2" / "evaluation.json").read_text())
    assert ev2["per_generator"]["1_fake"]["auc"] == pytest.approx(ev["per_generator"]["gen_under"]["auc"])


def test_calibrate_verb_meets_the_target_and_records_the_set(folders, tmp_path, capsys):
    import shutil

    from forensics.detection.scoring import score_paths
    from forensics.detectors.store import load_model

    model = tmp_path / "m"
    shutil.copytree(folders / "model", model)
    assert main(["calibrate", str(model), "--real", str(folders / "real"), "--target-fpr", "0.1"]) == 0
    det = load_model(model)
    _, s, _ = score_paths(det, folders / "real", progress=False)
    s = s[np.isfinite(s)]
    assert (s > det.threshold_).sum() == 4  # floor(0.1 * 40): the most the target allows
    meta = json.loads((model / "model.json").read_text())
    assert meta["calibration"]["real"][0]["n_scored"] == 40 and meta["calibration"]["mode"] == "fpr"
    assert not list(tmp_path.glob(".m.*"))  # no leftovers of the swap
    assert main(["calibrate", str(model), "--real", str(folders / "real"), "--mode", "mcc"]) == 2
    assert "needs generated images" in capsys.readouterr().err


def test_robustness_verb_is_seeded_and_identical_for_both_classes(folders, tmp_path):
    from forensics.evaluation.robustness import perturb

    im = [power_law_images(1, 2.0, seed=3)[0]] * 2
    a, b = perturb(im, "noise", 5.0, seed=0, indices=[0, 1]), perturb(im, "noise", 5.0, seed=0, indices=[0, 1])
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], a[1])
    assert perturb(im, "crop", 0.5)[0].shape == (16, 16, 3)
    assert perturb(im, "resize", 2.0)[0].shape == (64, 64, 3)
    out = tmp_path / "rob"
    assert main(["robustness", str(folders / "model"), "--real", str(folders / "real"), "--fake",
                 str(folders / "gen_under"), "--only", "noise,resize", "--noise", "2", "--resize", "2",
                 "--out", str(out)]) == 0
    r = json.loads((out / "robustness.json").read_text())
    assert [row["strength"] for row in r["curves"]["noise"]] == [2.0]
    assert r["clean"]["n_real"] == 40
    assert (out / "noise.png").is_file() and (out / "resize.svg").is_file()


def test_fuse_keeps_the_members_policy_and_fits_on_patches_they_can_score(tmp_path):
    """fuse: the fused model's stored policy is the members' (detect then crops as they were
    trained to), a conflicting pair needs an explicit policy, and fitting on built-in patches
    uses a side every member can score (48 here; the old fixed 32 left a 48-px member NaN)."""
    from forensics.detectors.frank import FrankDCTDetector
    from forensics.detectors.periodic import PeriodicSpectrumDetector
    from forensics.detectors.store import load_model
    from forensics.io.images import center_crop

    real = power_law_images(100, 2.0, seed=20, size=48)
    fake = real.copy()
    fake[:, 1::2, :] = fake[:, ::2, :]
    X, y = np.r_[real[:80], fake[:80]], np.r_[np.zeros(80), np.ones(80)].astype(int)
    a = FrankDCTDetector(size=48, preprocess="crop:48").fit(X, y)
    b = PeriodicSpectrumDetector(size=48, preprocess="crop:48").fit(X, y)
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    assert main(["fuse", str(tmp_path / "a"), str(tmp_path / "b"), "--rule", "mean", "--out", str(tmp_path / "fu")]) == 0
    fu = load_model(tmp_path / "fu")
    assert fu.preprocess == "crop:48"
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    big = [np.pad(im, ((5, 7), (3, 9), (0, 0)), mode="reflect") for im in np.r_[real[80:84], fake[80:84]]]
    for i, im in enumerate(big):
        Image.fromarray(im).save(imgs / f"{i}.png")
    assert main(["detect", str(imgs), "--model", str(tmp_path / "fu"), "--out", str(tmp_path / "d.json")]) == 0
    rows = json.loads((tmp_path / "d.json").read_text())["rows"]
    crops = np.stack([center_crop(im, 48, 48) for im in big])
    want = (a.p_generated(crops) + b.p_generated(crops)) / 2
    np.testing.assert_allclose([r["score"] for r in rows], want, atol=1e-6)
    # members trained with different policies: the fusion needs one
    PeriodicSpectrumDetector(size=48, preprocess="none").fit(X, y).save(tmp_path / "c")
    assert main(["fuse", str(tmp_path / "a"), str(tmp_path / "c"), "--out", str(tmp_path / "fu2")]) == 2
    assert main(["fuse", str(tmp_path / "a"), str(tmp_path / "c"), "--preprocess", "crop:48",
                 "--out", str(tmp_path / "fu2")]) == 0
    # stacking on built-in real patches: 48-px patches (the policy's size), every member scores them
    gen = tmp_path / "gen"
    gen.mkdir()
    for i, im in enumerate(fake[:40]):
        Image.fromarray(im).save(gen / f"{i}.png")
    assert main(["fuse", str(tmp_path / "a"), str(tmp_path / "b"), "--rule", "stack", "--real", "builtin",
                 "--fake", str(gen), "--out", str(tmp_path / "st")]) == 0
    st = load_model(tmp_path / "st")
    assert np.isfinite(st.weights_).all() and np.isfinite(st.p_generated(crops)).all()


def test_detect_warns_once_for_greyscale_inputs_outside_a_colour_envelope(robust_on_power_law, tmp_path):
    from forensics.core.errors import ForensicsWarning
    from forensics.detection.detect import detect
    from forensics.io.images import is_greyscale

    det = robust_on_power_law
    det.save(tmp_path / "colour", extra={"training": {"envelope": {"colour": True}}})
    det.save(tmp_path / "plain")
    x = power_law_images(3, 2.0, seed=7)  # grey fields (three equal channels)
    colour = x[1].copy()
    colour[..., 0] = 255 - colour[..., 0]
    assert is_greyscale(x[0]) and not is_greyscale(colour)
    Image.fromarray(x[0]).save(tmp_path / "grey_rgb.png")
    Image.fromarray(x[2][..., 0], mode="L").save(tmp_path / "grey_l.png")
    Image.fromarray(colour).save(tmp_path / "colour.png")
    files = [tmp_path / n for n in ("grey_rgb.png", "grey_l.png", "colour.png")]
    with pytest.warns(ForensicsWarning) as rec:
        rows = detect(files, tmp_path / "colour", progress=False)
    msgs = [str(w.message) for w in rec if "greyscale" in str(w.message)]
    assert msgs == [("2 of 3 images are greyscale: grey_rgb.png, grey_l.png; the model was trained on colour "
                     "photographs only and its rates were not measured on greyscale images")]
    assert all(r["label"] in ("real", "generated") for r in rows)  # still scored
    # a model whose card records no colour envelope does not warn
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ForensicsWarning)
        detect(files[:2], tmp_path / "plain", progress=False)


def test_fusion_members_keep_their_own_thresholds_and_real_images_alone_calibrate_it(tmp_path):
    """A member with a high threshold (the robust default sits at 0.68) used to make `fuse --rule max`
    call every real image generated: scores are now recentred on each member's threshold, so `max`
    at 0.5 is exactly "some member calls it generated"; and a target false-positive rate needs only
    real images (as `calibrate` does)."""
    from forensics.detectors.frank import FrankDCTDetector
    from forensics.detectors.fusion import ScoreFusion
    from forensics.detectors.periodic import PeriodicSpectrumDetector

    real = power_law_images(120, 2.0, seed=30)
    fake = real.copy()
    fake[:, 1::2, :] = fake[:, ::2, :]
    X, y = np.r_[real[:80], fake[:80]], np.r_[np.zeros(80), np.ones(80)].astype(int)
    a = FrankDCTDetector().fit(X, y)
    b = PeriodicSpectrumDetector().fit(X, y)
    test = np.r_[real[80:], fake[80:]]
    a.threshold_ = float(np.quantile(a.p_generated(test), 0.7))  # a strict member, like the robust default
    fu = ScoreFusion(rule="max").with_members([a, b])
    fu.classes_ = np.array([0, 1])
    either = (a.predict(test) == 1) | (b.predict(test) == 1)
    np.testing.assert_array_equal(fu.predict(test) == 1, either)
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    d = tmp_path / "real"
    d.mkdir()
    for i, im in enumerate(real[80:]):
        Image.fromarray(im).save(d / f"{i}.png")
    assert main(["fuse", str(tmp_path / "a"), str(tmp_path / "b"), "--rule", "max", "--real", str(d),
                 "--target-fpr", "0.1", "--out", str(tmp_path / "fu")]) == 0
    from forensics.detectors.store import load_model

    cal = load_model(tmp_path / "fu")
    assert (cal.predict(real[80:]) == 1).mean() <= 0.1 and cal.threshold_ != 0.5

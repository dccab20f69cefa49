import json

import numpy as np
import pytest

from forensics.detectors import make_detector
from forensics.detectors.attacks import apply_attack, equalize, match2d
from forensics.io.sources import builtin_photos
from forensics.metrics.similarity import psnr
from forensics.spectral import spectrum


@pytest.fixture(scope="module")
def reals():
    return [p[1] for p in builtin_photos()]


@pytest.fixture(scope="module")
def trained(sim_pair):
    real, fake = sim_pair
    det = make_detector("durall-lr").fit_real_fake(real[0::2], fake[0::2])
    return det, real[1::2], fake[1::2]


def test_strength_zero_changes_nothing(sim_pair, reals):
    _, fake = sim_pair
    assert np.array_equal(equalize(fake[:8], reals, strength=0.0), fake[:8])
    assert np.array_equal(match2d(fake[:8], reals, strength=0.0), fake[:8])


@pytest.mark.parametrize("method", ["equalize", "match2d"])
def test_attacks_defeat_a_detector_trained_on_the_originals(method, trained, reals):
    det, real_te, fake_te = trained
    before = det.predict(fake_te).mean()
    after_imgs = np.stack(apply_attack(method, list(fake_te), reals))
    after = det.predict(after_imgs).mean()
    assert before > 0.85 and after < 0.35, (before, after)
    assert det.predict(real_te).mean() < 0.15  # the detector still works on real images
    # both add real-like high frequencies to these smooth fakes: a visible but small change
    assert np.median(psnr(fake_te, after_imgs)) > 22


def test_notch_only_attenuates_the_artefact_peak(sim_pair, reals):
    _, fake = sim_pair
    out = match2d(fake[:64], reals, max_gain=1.0)

    def nyquist_power(imgs):  # the corner (0.5, 0.5) cycles/pixel, where the checkerboard lives
        g = imgs.astype(float) @ [0.299, 0.587, 0.114]
        return (np.abs(np.fft.fft2(g)[:, 32, 32]) ** 2).mean()

    assert nyquist_power(out) < 0.5 * nyquist_power(fake[:64])
    gain = np.abs(np.fft.fft2(out.astype(float) @ [0.299, 0.587, 0.114])) / \
        np.maximum(np.abs(np.fft.fft2(fake[:64].astype(float) @ [0.299, 0.587, 0.114])), 1e-9)
    assert np.median(gain) <= 1.01  # never amplifies (up to rounding)


def test_equalize_brings_the_profile_shape_to_the_real_mean(sim_pair, reals):
    from forensics.detectors.attacks import reference_crops

    _, fake = sim_pair
    out = equalize(fake[:64], reals, from_freq=0.1)
    target = spectrum.azimuthal_profile(reference_crops(reals, 64, 64), "magnitude").mean(0)
    hf = slice(8, 45)  # from 0.125 cycles/pixel to the corners
    rel = lambda p: np.log(p[:, hf]) - np.log(p[:, hf]).mean(1, keepdims=True)  # noqa: E731
    d_before = np.abs(rel(spectrum.azimuthal_profile(fake[:64], "magnitude")) - rel(target[None])).mean()
    d_after = np.abs(rel(spectrum.azimuthal_profile(out, "magnitude")) - rel(target[None])).mean()
    assert d_after < 0.3 * d_before


def test_attack_cli(tmp_path, mixed_folder):
    from forensics.cli.main import main

    root, _ = mixed_folder
    assert main(["attack", "--fake", str(root / "fake"), "--real", "builtin", "--method", "equalize",
                 "--detectors", "durall-lr", "--out", str(tmp_path / "a")]) == 0
    r = json.loads((tmp_path / "a" / "attack.json").read_text())
    assert set(r) == {"config", "image_change", "detectors", "model"}
    d = r["detectors"]["durall-lr"]
    assert {"before", "after", "real_accuracy"} <= set(d) and 0 <= d["after"]["detection_rate"] <= 1
    assert r["image_change"]["psnr_db"]["mean"] > 20 and 0 < r["image_change"]["ssim"]["mean"] <= 1
    assert len(list((tmp_path / "a" / "images").glob("*.png"))) == 12
    assert main(["attack", "--fake", str(root / "fake"), "--real", "builtin", "--method", "match2d", "--max-gain", "1",
                 "--detectors", "durall-lr", "--out", str(tmp_path / "n")]) == 0
    assert json.loads((tmp_path / "n" / "attack.json").read_text())["config"]["method_options"] == {"max_gain": 1.0}
    with pytest.raises(SystemExit) as e:  # argparse rejects an unknown method
        main(["attack", "--fake", str(root / "fake"), "--real", "builtin", "--method", "blur", "--out", str(tmp_path / "b")])
    assert e.value.code == 2

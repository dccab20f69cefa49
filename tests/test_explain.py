"""``forensics explain`` end to end: a CNN and a durall-mlp spectral detector on a folder
with good, unreadable and too-small files."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from forensics.cli.main import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from forensics.generators.simulate import simulate_upsampling
    from forensics.io.sources import builtin_patches

    imgs = builtin_patches(16).images
    real, fake = imgs[:120], simulate_upsampling(imgs[120:240], seed=1, strength=(0.1, 0.2))
    root = tmp_path_factory.mktemp("explain")
    folder = root / "images"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(imgs[300 + i]).save(folder / f"real{i}.png")
    Image.fromarray(fake[-1]).save(folder / "sub" / "fake.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    Image.fromarray(imgs[0][:8, :8]).save(folder / "tiny.png")
    (root / "fakes").mkdir()
    for i, im in enumerate(fake):
        Image.fromarray(im).save(root / "fakes" / f"{i:03d}.png")
    return root, folder, real, fake


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_cnn_then_explain_folder(data):
    import json

    from forensics.detectors.cnn import CNNDetector

    root, folder, real, fake = data
    (root / "cfg.json").write_text(json.dumps({"channels": [4, 8], "batch": 32}))
    assert main(["train-cnn", "--real", "builtin", "--n", "120", "--fake", str(root / "fakes"), "--size", "16",
                 "--epochs", "2", "--config", str(root / "cfg.json"), "--out", str(root / "cnn")]) == 0
    det = CNNDetector.load(root / "cnn")
    assert det.cfg.channels == (4, 8) and det.cfg.size == 16 and det.n_train_ == {"real": 96, "generated": 96}
    m = json.loads((root / "cnn" / "metrics.json").read_text())
    assert m["n_test"] == {"real": 24, "generated": 24} and 0 <= m["roc_auc"] <= 1
    out = root / "why_cnn"
    assert main(["explain", str(root / "cnn"), str(folder), "--out", str(out)]) == 0
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in _rows(out / "summary.csv")}
    assert len(rows) == 6
    assert rows["broken.png"]["status"] == "error" and rows["broken.png"]["error"]
    assert rows["tiny.png"]["status"] == "error" and "16x16" in rows["tiny.png"]["error"]
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert len(ok) == 4
    for r in ok:
        z = np.load(out / r["files"].split()[0], allow_pickle=False)
        logit = float(z["logit"])
        # the stored prediction is the model's own, and the relevances add up to the logit
        assert float(r["logit"]) == pytest.approx(logit, abs=1e-5)
        assert z["image_relevance"].sum() == pytest.approx(logit, rel=1e-3, abs=1e-3)
        # frequency relevance carries the same total, and the rings split it into low + high
        assert z["frequency_relevance"].sum() == pytest.approx(z["relevance"].sum(), rel=1e-9, abs=1e-9)
        assert z["radial_relevance"].sum() == pytest.approx(z["relevance"].sum(), rel=1e-9, abs=1e-9)
        lo, hi = float(r["low_frequency_relevance"]), float(r["high_frequency_relevance"])
        assert lo + hi == pytest.approx(float(r["relevance_sum"]), abs=1e-5)
        assert (out / r["files"].split()[1]).stat().st_size > 0  # the PNG heat map
    assert len(_rows(out / "radial.csv")) == 4
    assert (out / "config.json").is_file() and (out / "radial.png").is_file()
    # the same model scores these images the same way outside explain
    img = np.asarray(Image.open(folder / "real0.png").convert("RGB"))
    assert float(rows["real0.png"]["logit"]) == pytest.approx(float(det.decision_function(img[None])[0]), abs=1e-5)


def test_explain_durall_mlp_per_frequency(data, capsys):
    from forensics.detectors import SpectralDetector

    root, folder, real, fake = data
    det = SpectralDetector(features="durall+", classifier="mlp", seed=0).fit_real_fake(real, fake)
    det.save(root / "mlp")
    out = root / "why_mlp"
    assert main(["explain", str(root / "mlp"), str(folder), "--out", str(out), "--no-maps"]) == 0
    ok = [r for r in _rows(out / "summary.csv") if r["status"] == "ok"]
    assert len(ok) == 4  # the broken file and the 8 px one (durall needs 16 px) fail
    for r in ok:
        z = np.load(out / r["files"], allow_pickle=False)
        f = z["radial_frequency"]
        assert len(f) == 80 and np.all(np.diff(f) > 0) and 0 < f[0] and f[-1] < 0.75
        # relevance per durall frequency sample adds up to the logit (less what the ε = 1e-6
        # stabiliser absorbs at small pre-activations); the logit is the detector's
        assert z["radial_relevance"].sum() == pytest.approx(float(z["logit"]), rel=1e-4)
        p = 1 / (1 + np.exp(-float(z["logit"])))
        assert float(r["p_generated"]) == pytest.approx(p, abs=1e-6)
    img = np.asarray(Image.open(folder / "sub" / "fake.png").convert("RGB"))
    fake_row = next(r for r in ok if r["path"].endswith("fake.png"))
    assert float(fake_row["p_generated"]) == pytest.approx(float(det.score(img[None])[0]), abs=1e-6)


def test_explain_refuses_models_without_a_network(data, capsys):
    from forensics.detectors import SpectralDetector

    root, folder, real, fake = data
    SpectralDetector(features="dzanic+", classifier="knn").fit_real_fake(real, fake).save(root / "knn")
    assert main(["explain", str(root / "knn"), str(folder), "--out", str(root / "x")]) == 2
    err = capsys.readouterr().err
    assert "mlp or lr" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------ explanations of image groups
def _artefact(images, band, amp, seed):
    """``images`` plus Gaussian noise kept only at radial frequencies in ``band`` (cycles/pixel)."""
    s = images.shape[1]
    f = np.fft.fftfreq(s)
    rad = np.hypot(f[:, None], f[None, :])
    keep = (rad >= band[0]) & (rad < band[1])
    n = np.random.default_rng(seed).normal(size=images.shape[:3])
    n = np.real(np.fft.ifft2(np.fft.fft2(n) * keep))
    n /= n.std()
    return np.clip(images + amp * n[..., None], 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def patches():
    from forensics.io.sources import builtin_patches

    imgs = builtin_patches(32).images
    idx = np.random.default_rng(0).permutation(len(imgs))
    return imgs[idx[:250]], imgs[idx[250:500]]


def _explained(name, real, fake, **kw):
    from forensics.detectors import make_detector
    from forensics.explain.explainers import explain_groups

    det = make_detector(name, seed=0, size=32, **kw)
    prep = (lambda x: x) if name.startswith("cnn") else det.transform
    det.fit_real_fake(prep(real[:150]), prep(fake[:150]))
    return explain_groups(det, {"real": prep(real[150:]), "fake": prep(fake[150:])}, (32, 32))


@pytest.mark.parametrize("name,amp,kw", [("durall+-lr", 10.0, {}), ("durall-lr", 10.0, {}),
                                         ("cnn-spectrum", 6.0, {"epochs": 6, "channels": (8, 16, 32)})])
def test_relevance_of_a_high_frequency_artefact_sits_at_the_highest_frequencies(patches, name, amp, kw):
    """Fakes = reals + noise only above 0.375 cycles/pixel (what the paper expects of baseline
    GANs: a high-frequency discrepancy). The detector's evidence for 'generated' on them must sit
    in the top bands, and the real verdicts' evidence (negative) there too."""
    real, other = patches
    out = _explained(name, real, _artefact(other, (0.375, 1.0), amp, 1), **kw)
    assert out["axis"] == "frequency" and out["bands"][-1] == "≥ 0.5"
    fake, re = out["groups"]["fake"], out["groups"]["real"]
    assert fake["called_generated"] - re["called_generated"] > 0.3  # it did learn the artefact
    assert fake["top_band_index"] >= 3 and fake["top_band_sign"] == 1  # 0.375-0.5 or >= 0.5, for generated
    b = np.asarray(fake["bands"])
    assert b[3:].sum() > 0 and b[3:].sum() > np.abs(b[:3]).sum()  # the high bands outweigh the rest
    assert np.asarray(re["bands"])[3:].sum() < 0  # and speak for real on the reals


def test_relevance_of_a_low_frequency_artefact_sits_at_the_lowest_frequencies(patches):
    """The control: the same detector on an artefact below 0.125 cycles/pixel puts its evidence
    there (a reversed or misplaced frequency axis fails one of the two tests)."""
    real, other = patches
    out = _explained("durall+-lr", real, _artefact(other, (0.0, 0.125), 25.0, 1))
    fake = out["groups"]["fake"]
    assert fake["called_generated"] - out["groups"]["real"]["called_generated"] > 0.3
    assert fake["top_band_index"] == 0 and fake["top_band_sign"] == 1


def test_group_relevance_adds_up_to_the_mean_logit_and_bands_partition_it():
    """Hand-made relevances: band sums and the summary's numbers by hand."""
    from forensics.explain.explainers import band_sums, summarise_group

    f = np.array([0.0, 0.1, 0.2, 0.3, 0.45, 0.6])
    R = np.array([[1.0, 0.0, 0.0, 0.0, 2.0, 3.0], [0.0, 1.0, 0.0, -1.0, 0.0, 5.0]])
    np.testing.assert_allclose(band_sums(f, R), [[1, 0, 0, 2, 3], [1, 0, -1, 0, 5]])
    e = summarise_group(R, np.array([6.0, 5.0]), 0.0, freqs=f)
    assert e["n"] == 2 and e["mean_logit"] == 5.5 and e["called_generated"] == 1.0
    np.testing.assert_allclose(e["bands"], [1.0, 0.0, -0.5, 1.0, 4.0])
    assert e["top_band"] == "≥ 0.5" and e["top_band_sign"] == 1 and e["peak_frequency"] == 0.6
    assert e["top_band_share"] == pytest.approx(4.0 / 6.5)

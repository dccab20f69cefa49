"""``forensics explain`` end to end: a CNN and a durall-mlp spectral detector on a folder
with good, unreadable and too-small files."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from forensics.cli import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from forensics.data import builtin_patches
    from forensics.generators.simulate import simulate_upsampling

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

"""Scale-out paths: Dask (a local multi-process cluster) gives the rows of a single-process
run in the same order; the torch FFT features equal the NumPy ones to float32 tolerance."""
import json

import numpy as np
import pytest
from PIL import Image

from forensics import cli
from forensics.spectral import spectrum


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    rng = np.random.default_rng(0)
    for i in range(70):  # mixed sizes, a few bad files: rows of every kind
        side = (40, 64, 80)[i % 3]
        Image.fromarray(rng.integers(0, 256, (side, side + i % 5, 3), dtype=np.uint8)).save(root / f"{i:03d}.png")
    (root / "bad.png").write_bytes(b"nope")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "small.png")
    return root


def test_dask_local_cluster_gives_the_single_process_rows(folder, tmp_path):
    pytest.importorskip("distributed")
    one, many = tmp_path / "one.json", tmp_path / "many.json"
    assert cli.main(["detect", str(folder), "--out", str(one)]) == 0
    assert cli.main(["detect", str(folder), "--out", str(many), "--scheduler", "local:2"]) == 0
    a, b = json.loads(one.read_text()), json.loads(many.read_text())
    assert len(a["rows"]) == 72 and a == b
    labels = {r["label"] for r in a["rows"]}
    assert labels >= {"error"} and labels & {"real", "generated"}
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    assert cli.main(["spectrum", str(folder), "--out", str(s1)]) == 0
    assert cli.main(["spectrum", str(folder), "--out", str(s2), "--scheduler", "local:2"]) == 0
    for f in ("features.csv", "profiles.csv"):
        assert (s1 / f).read_bytes() == (s2 / f).read_bytes()


@pytest.mark.parametrize("name", ["dzanic+", "durall+"])
def test_torch_features_equal_numpy_to_float32_tolerance(name, patches64):
    pytest.importorskip("torch")
    from forensics.spectral import spectrum_torch

    imgs = list(patches64[:40]) + [patches64[40][:48, :57], patches64[41][:33, :64]]  # mixed sizes
    ref = spectrum.features(imgs, name)
    got = spectrum_torch.features(imgs, name, "cpu")
    # float32 spectra: ring means agree to ~1e-6 relative; the dB / log features to ~1e-5 of their range
    scale = np.abs(ref).max(axis=0)
    assert np.all(np.abs(got - ref) <= 1e-5 * scale + 1e-6), np.abs(got - ref).max(axis=0)


def test_ring_profiles_match_an_independent_full_plane_average():
    torch = pytest.importorskip("torch")
    from forensics.spectral import spectrum_torch

    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (2, 20, 26, 3), dtype=np.uint8)
    grey = img.astype(np.float64) @ np.array(spectrum.BT601)
    mag = np.abs(np.fft.fft2(grey, norm="ortho"))  # full plane, float64, no Hermitian shortcut
    fy, fx = np.fft.fftfreq(20)[:, None], np.fft.fftfreq(26)[None, :]
    k = np.rint(np.sqrt(fy ** 2 + fx ** 2) * 20).astype(int)
    want = np.stack([[m[k == b].mean() for b in range(k.max() + 1)] for m in mag])
    got = spectrum_torch.ring_profiles(img, "cpu")
    assert got.shape == want.shape and np.allclose(got, want, rtol=2e-6, atol=1e-6)
    assert torch.get_num_threads() >= 1


def test_detect_device_cpu_scores_like_numpy(folder, tmp_path):
    pytest.importorskip("torch")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert cli.main(["detect", str(folder), "--out", str(a)]) == 0
    assert cli.main(["detect", str(folder), "--out", str(b), "--device", "cpu"]) == 0
    ra, rb = json.loads(a.read_text())["rows"], json.loads(b.read_text())["rows"]
    assert [r["path"] for r in ra] == [r["path"] for r in rb]
    assert [r["label"] for r in ra] == [r["label"] for r in rb]
    sa = np.array([r["score"] if r["score"] is not None else np.nan for r in ra])
    sb = np.array([r["score"] if r["score"] is not None else np.nan for r in rb])
    assert np.allclose(sa, sb, atol=1e-5, equal_nan=True)


def test_evaluate_on_a_dask_cluster_gives_the_single_process_figures_and_rows(folder, tmp_path):
    """evaluate streams through detect's scoring path: on a local 2-process cluster it writes the
    same evaluation.json and scores.csv (rows in the same order) as in one process, and its
    scores are detect's; calibrate on the cluster sets the single-process threshold."""
    pytest.importorskip("distributed")
    from forensics.detectors.store import default_model_dir

    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir(), fake.mkdir()
    files = sorted(folder.iterdir())
    for i, f in enumerate(files):  # split the mixed folder (bad and tiny files included) in two
        ((real, fake)[i % 2] / f.name).write_bytes(f.read_bytes())
    model = str(default_model_dir())
    args = ["evaluate", model, "--real", str(real), "--fake", str(fake), "--fake", str(folder)]
    assert cli.main(args + ["--out", str(tmp_path / "one")]) == 0
    assert cli.main(args + ["--out", str(tmp_path / "many"), "--scheduler", "local:2"]) == 0
    for f in ("evaluation.json", "scores.csv"):
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "many" / f).read_bytes(), f
    ev = json.loads((tmp_path / "one" / "evaluation.json").read_text())
    assert ev["overall"]["n_real"] + ev["overall"]["n_generated"] + ev["n_errors"] == 2 * len(files)
    assert ev["n_errors"] == 4  # bad.png and small.png, each seen twice
    # the same scores as detect on the same files, in the same order
    assert cli.main(["detect", str(folder), "--out", str(tmp_path / "d.json")]) == 0
    d = json.loads((tmp_path / "d.json").read_text())["rows"]
    import csv

    with open(tmp_path / "many" / "scores.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["group"] == folder.name]
    assert [r["path"] for r in rows] == [r["path"] for r in d]
    assert [float(r["score"]) if r["score"] else None for r in rows] == [r["score"] for r in d]
    # calibrate on the cluster: the same threshold and calibration record as in one process
    cal = ["calibrate", model, "--real", str(real), "--fake", str(fake), "--mode", "mcc"]
    assert cli.main(cal + ["--out", str(tmp_path / "m1")]) == 0
    assert cli.main(cal + ["--out", str(tmp_path / "m2"), "--scheduler", "local:2"]) == 0
    m1, m2 = (json.loads((tmp_path / m / "model.json").read_text()) for m in ("m1", "m2"))
    assert m1["threshold"] == m2["threshold"] and m1["calibration"] == m2["calibration"]


def test_evaluate_rejects_a_malformed_scheduler(tmp_path, capsys):
    from forensics.detectors.store import default_model_dir

    assert cli.main(["evaluate", str(default_model_dir()), "--real", str(tmp_path), "--fake", str(tmp_path),
                     "--out", str(tmp_path / "o"), "--scheduler", "local:0"]) == 2
    assert "local:N" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_greyscale_warning_is_the_same_on_a_dask_cluster(tmp_path, capsys):
    """The default model's colour envelope: greyscale files are counted where they are decoded, so
    a --scheduler run warns exactly like a single-process one (it used to stay silent)."""
    pytest.importorskip("distributed")
    rng = np.random.default_rng(4)
    for i in range(6):
        im = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        if i % 3 == 0:
            im[..., 1] = im[..., 2] = im[..., 0]  # a grey image stored as RGB
        Image.fromarray(im).save(tmp_path / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8), mode="L").save(tmp_path / "l.png")
    msgs = []
    for extra in ([], ["--scheduler", "local:1"]):
        assert cli.main(["detect", str(tmp_path), "--out", str(tmp_path / f"o{len(extra)}.json"), *extra]) == 0
        msgs.append([ln for ln in capsys.readouterr().err.splitlines() if "are greyscale" in ln])
    assert msgs[0] == msgs[1] and len(msgs[0]) == 1 and msgs[0][0].startswith("forensics: warning: 3 of 7 images")


def test_envelope_warnings_are_the_same_on_a_dask_cluster(folder, tmp_path, capsys):
    """Sizes outside the default model's 32x32 envelope: one summary line (count, sizes, first
    names in file order) on a 2-worker cluster exactly as in one process."""
    pytest.importorskip("distributed")
    lines = []
    for extra in ([], ["--scheduler", "local:2"]):
        capsys.readouterr()
        assert cli.main(["detect", str(folder), "--out", str(tmp_path / f"o{len(extra)}.csv"), *extra]) == 0
        lines.append([ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("forensics: warning:")])
    assert lines[0] == lines[1] == [
        ("forensics: warning: 70 of 72 images (40x40, 65x64, 82x80, 43x40 and 11 more sizes) differ in size from the "
         "model's training images (32x32): 000.png, 001.png, 002.png and 67 more; its rates were measured on those "
         "sizes only")]


def test_robustness_on_a_dask_cluster_gives_the_single_process_figures(folder, tmp_path, capsys):
    """robustness --scheduler: the perturbations run on the workers, seeded by file position (not
    by chunk or worker), and the chunks come back in file order, so a 2-process cluster writes the
    same robustness.json and robustness.csv, byte for byte, as one process; the noisy scores
    themselves are equal exactly (the same code on the same pixels, one image at a time)."""
    pytest.importorskip("distributed")
    from forensics.detection.scoring import score_paths
    from forensics.detectors.store import default_model_dir, load_model
    from forensics.evaluation.robustness import Perturbation
    from forensics.io.engine import client

    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir(), fake.mkdir()
    for i, f in enumerate(sorted(folder.iterdir())):  # bad and tiny files included
        ((real, fake)[i % 2] / f.name).write_bytes(f.read_bytes())
    model = str(default_model_dir())
    args = ["robustness", model, "--real", str(real), "--fake", str(fake), "--only", "noise,resize,jpeg",
            "--noise", "2,10", "--resize", "0.5", "--jpeg", "50"]
    assert cli.main(args + ["--out", str(tmp_path / "bad"), "--scheduler", "local:0"]) == 2
    assert "local:N" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert cli.main(args + ["--out", str(tmp_path / "one")]) == 0
    assert cli.main(args + ["--out", str(tmp_path / "many"), "--scheduler", "local:2"]) == 0
    for f in ("robustness.json", "robustness.csv"):
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "many" / f).read_bytes(), f
    r = json.loads((tmp_path / "one" / "robustness.json").read_text())
    assert r["clean"]["n_real"] + r["clean"]["n_generated"] == 70  # bad.png and small.png unscored
    assert 0 < r["curves"]["resize"][0]["n_real"] < r["clean"]["n_real"]  # halved 40 px images are too small
    det = load_model(model)
    noise = Perturbation("noise", 10.0, seed=0)
    _, here, _ = score_paths(det, str(folder), transform=noise, progress=False)
    with client("local:2") as c:
        _, there, _ = score_paths(det, str(folder), transform=noise, progress=False, client=c, model_dir=model)
    _, clean, _ = score_paths(det, str(folder), progress=False)
    assert np.array_equal(here, there, equal_nan=True) and not np.array_equal(here, clean, equal_nan=True)

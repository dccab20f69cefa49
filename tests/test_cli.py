import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensics.cli.main import main

COLUMNS = ["path", "score", "label", "threshold", "detector", "width", "height", "error"]


def run_cli(*args):
    """The installed command as a user runs it: exit status, stdout, stderr."""
    p = subprocess.run([sys.executable, "-m", "forensics", *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def read_csv(path):
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        return r.fieldnames, list(r)


def test_detect_mixed_folder_with_default_model(mixed_folder):
    root, reasons = mixed_folder
    rc, _, err = run_cli("detect", root, "--out", root / "v.csv")
    assert rc == 0, err
    assert "Traceback" not in err
    cols, rows = read_csv(root / "v.csv")
    assert cols == COLUMNS
    assert len(rows) == 12 + 12 + len(reasons)
    by = {r["path"].split("/")[-1]: r for r in rows}
    for name, why in reasons.items():
        assert by[name]["label"] == "error" and why in by[name]["error"] and by[name]["score"] == ""
    real = [r for r in rows if "/real/" in r["path"]]
    fake = [r for r in rows if "/fake/" in r["path"]]
    assert all(r["width"] == "64" and r["error"] == "" for r in real + fake)
    assert sum(r["label"] == "generated" for r in fake) >= 10  # the default model's own kind of fake
    assert sum(r["label"] == "real" for r in real) >= 10
    assert "24 files" not in err and f"{len(rows)} files:" in err and "4 error" in err


def test_detect_json_and_trained_model(mixed_folder, tmp_path):
    root, _ = mixed_folder
    assert main(["train-detector", "--real", str(root / "real"), "--fake", str(root / "fake"),
                 "--detector", "dzanic+-knn", "--out", str(tmp_path / "model"), "--test-fraction", "0.25"]) == 0
    m = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert {"real_accuracy", "generated_accuracy", "roc_auc"} <= set(m)
    assert m["n_test"] == {"real": 3, "generated": 3}
    assert json.loads((tmp_path / "model" / "config.json").read_text())["seed"] == 0
    assert main(["detect", str(root / "fake"), "--model", str(tmp_path / "model"), "--out", str(tmp_path / "v.json")]) == 0
    out = json.loads((tmp_path / "v.json").read_text())
    assert out["detector"] == "dzanic+-knn" and len(out["rows"]) == 12
    assert set(out["rows"][0]) == set(COLUMNS)


@pytest.mark.parametrize("case", ["missing", "empty", "model", "ext"])
def test_user_errors_are_one_line(case, tmp_path, mixed_folder):
    root, _ = mixed_folder
    (tmp_path / "empty").mkdir()
    (tmp_path / "notamodel").mkdir()
    args = {"missing": ["detect", tmp_path / "nope", "--out", tmp_path / "o.csv"],
            "empty": ["detect", tmp_path / "empty", "--out", tmp_path / "o.csv"],
            "model": ["detect", root / "real", "--model", tmp_path / "notamodel", "--out", tmp_path / "o.csv"],
            "ext": ["detect", root / "real", "--out", tmp_path / "o.txt"]}[case]
    rc, out, err = run_cli(*args)
    assert rc == 2
    assert err.startswith("forensics: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()


def test_spectrum_outputs(mixed_folder, tmp_path):
    root, reasons = mixed_folder
    assert main(["spectrum", str(root / "real"), str(root / "fake"), str(root / "bad"), "--out", str(tmp_path / "s")]) == 0
    cols, prof = read_csv(tmp_path / "s" / "profiles.csv")
    assert cols == ["group", "n_images", "bin", "frequency", "mean_db", "std_db"]
    groups = {r["group"] for r in prof}
    assert groups == {str(root / "real"), str(root / "fake")}  # bad/ has no usable image
    real_rows = [r for r in prof if r["group"] == str(root / "real")]
    assert len(real_rows) == round(64 / 2 ** 0.5) + 1 and real_rows[0]["n_images"] == "12"
    _, feats = read_csv(tmp_path / "s" / "features.csv")
    assert len(feats) == 24 + len(reasons)
    assert sum(bool(r["error"]) for r in feats) == len(reasons)
    # default feature sets dzanic+ and dzanic: the published Dzanic fit has no finite objective
    # at 64 px (empty bins in its band), so its b is blank there while y_i, y_f are not
    assert all(r["dzanic+_0"] and r["dzanic_1"] and r["dzanic_2"] and not r["dzanic_0"]
               for r in feats if not r["error"])
    png = (tmp_path / "s" / "spectrum.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000
    assert json.loads((tmp_path / "s" / "config.json").read_text())["preprocess"] == "none"


def test_every_help_example_parses_to_its_verb():
    """Each verb's documented examples must be accepted by the parser as written (a renamed or removed
    flag breaks its example), and dispatch to that verb."""
    import shlex

    from forensics.cli.main import build_parser
    from forensics.cli.registry import GROUPS, VERBS

    p = build_parser()
    n = 0
    # a verb's examples, and a verb group's (``forensics hash``: each line runs one of its actions)
    documented = [(name, v["example"]) for name, v in VERBS.items()] + [(g, v["example"]) for g, v in GROUPS.items()]
    for name, example in documented:
        for line in example.splitlines():
            words = shlex.split(line.split("#")[0])
            words = [w for w in words if w != "..."]
            if "..." in line or line.lstrip().startswith("#"):
                continue  # an abbreviated continuation line, or a comment about the example
            key = f"{name} {words[2]}" if name in GROUPS else name
            assert words[:len(key.split()) + 1] == ["forensics", *key.split()], line
            a = p.parse_args(words[1:])
            assert a._fn is VERBS[key]["fn"]
            n += 1
    assert n >= len(VERBS)


def test_version_and_warnings_as_one_line(tmp_path, capsys):
    from forensics import __version__
    from forensics.cli.main import main

    assert main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"forensics {__version__}"
    # the default model saw 32 px patches: 100 px images are scored, with one warning line
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (100, 100, 3), np.uint8)).save(tmp_path / f"{i}.png")
    assert main(["detect", str(tmp_path), "--out", str(tmp_path / "v.csv")]) == 0
    err = capsys.readouterr().err
    assert "forensics: warning: 3 of 3 images (100x100) differ in size from the model's training images" in err
    assert "Traceback" not in err and "warnings.warn" not in err
    # no warning when the sizes match what the model saw
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(tmp_path / f"{i}.png")
    assert main(["detect", str(tmp_path), "--out", str(tmp_path / "v.csv")]) == 0
    assert "forensics: warning" not in capsys.readouterr().err


def test_train_detector_warns_when_classes_differ_in_size(tmp_path, capsys):
    from forensics.cli.main import main

    rng = np.random.default_rng(1)
    for cls, size in (("r", 64), ("f", 32)):
        (tmp_path / cls).mkdir()
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(tmp_path / cls / f"{i}.png")
    assert main(["train-detector", "--real", str(tmp_path / "r"), "--fake", str(tmp_path / "f"),
                 "--detector", "durall+-lr", "--out", str(tmp_path / "m")]) == 0
    assert "warning: real images are 64x64 but generated images are 32x32" in capsys.readouterr().err
    # image models have their own training verbs: a one-line error, not a traceback
    assert main(["train-detector", "--real", str(tmp_path / "r"), "--fake", str(tmp_path / "f"),
                 "--detector", "cnn", "--out", str(tmp_path / "m2")]) == 2
    assert "train-cnn" in capsys.readouterr().err
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["training"]["sizes"] == {"real": {"64x64": 12}, "generated": {"32x32": 12}}


def test_notebook_api_names_the_entry_points():
    import subprocess
    import sys

    code = ("import sys, forensics; assert 'torch' not in sys.modules; "
            "ims, names, errs = forensics.load_images(sys.argv[1], policy='resize:32', progress=False); "
            "p = forensics.azimuthal_profile(ims); "
            "rows = forensics.detect_images(sys.argv[1], progress=False); "
            "print(ims.shape, p.shape[0], len(rows), type(forensics.StudyConfig.demo()).__name__)")
    from forensics.io.sources import data_dir

    r = subprocess.run([sys.executable, "-c", code, str(data_dir() / "real")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["(67,", "32,", "32,", "3)", "67", "67", "StudyConfig"]  # 13 core + 13 extra + 41 wild photos


def test_spectrum_mixes_image_sizes(tmp_path):
    from PIL import Image

    from forensics.io.sources import builtin_patches

    (tmp_path / "m").mkdir()
    for i, im in enumerate(builtin_patches(64, n=4).images):
        Image.fromarray(im).save(tmp_path / "m" / f"a{i}.png")
    for i, im in enumerate(builtin_patches(32, n=4).images):
        Image.fromarray(im).save(tmp_path / "m" / f"b{i}.png")
    assert main(["spectrum", str(tmp_path / "m"), "--out", str(tmp_path / "s")]) == 0
    _, prof = read_csv(tmp_path / "s" / "profiles.csv")
    assert len(prof) == round(32 / 2 ** 0.5) + 1 and prof[0]["n_images"] == "8"  # on the 32 px grid


def test_output_into_a_closed_pipe_is_not_a_traceback(monkeypatch, tmp_path):
    import os

    r, w = os.pipe()
    os.close(r)  # like `forensics ... | head` after head has exited
    out = os.fdopen(w, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["counterexample", "--real", "builtin", "--out", str(tmp_path), "--dry-run"]) == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_detect_rows_in_file_order_with_direct_scores(mixed_folder, monkeypatch, workers):
    # scoring runs chunk by chunk on the decoding pool (or inline without one): rows must
    # still come out in file order, each with the score of its own image
    from forensics.detection.detect import detect
    from forensics.detectors.store import load_model
    from forensics.io import images as I

    root, reasons = mixed_folder
    monkeypatch.setattr(I.os, "cpu_count", lambda: workers)
    rows = detect([root], progress=False, chunk=5)
    files = I.scan_nonempty([root])
    assert [r["path"] for r in rows] == [str(f) for f in files]
    det = load_model()
    for f, row in zip(files, rows):
        r = I.load_image(f)
        if r.ok:
            assert row["score"] == round(float(det.score([r.image])[0]), 6)
        else:
            assert row["label"] == "error" and f.name in reasons


def test_training_features_stream_from_folders(mixed_folder, monkeypatch, capsys, tmp_path):
    # train-detector computes features chunk by chunk (never the whole folder's images in
    # memory): the result must equal the features of all images at once; unreadable files
    # are reported and skipped; images too small for the features are an error
    from forensics.core.errors import UserError
    from forensics.detection import training as D
    from forensics.detectors import make_detector
    from forensics.io.images import Policy, load_image, scan_nonempty

    root, reasons = mixed_folder
    for name in reasons:  # bad files among the good ones
        (root / "real" / name).write_bytes((root / "bad" / name).read_bytes())
    monkeypatch.setattr(D, "CHUNK", 5)
    det = make_detector("dzanic+-knn")
    got, sizes = D.source_features(det, str(root / "real"), 64, Policy.parse(None), "real")
    imgs = [r.image for r in map(load_image, scan_nonempty(root / "real")) if r.ok]
    assert len(got) == len(imgs) == 12 and sizes == {"64x64": 12}
    assert np.allclose(got, det.transform(imgs), rtol=1e-9, atol=0)
    err = capsys.readouterr().err
    assert all(f"skipped {root / 'real' / name}" in err for name in reasons)
    (tmp_path / "small").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "small" / "tiny.png")
    with pytest.raises(UserError, match="smaller than 16 px"):
        D.source_features(det, str(tmp_path / "small"), 64, Policy.parse(None), "real")


def test_spectrum_features_columns_and_published_jpeg_grey(tmp_path):
    # oracle: the library's feature sets on the same pixels; for durall on a JPEG, the grey that
    # OpenCV's imread(path, 0) decodes (the JPEG decoder's luma, as Durall et al. read images)
    import cv2
    from PIL import Image

    from forensics.io.sources import builtin_patches
    from forensics.spectral import spectrum as S

    ims = builtin_patches(64, n=2, seed=5).images
    (tmp_path / "in").mkdir()
    Image.fromarray(ims[0]).save(tmp_path / "in" / "a.png")
    Image.fromarray(ims[1]).save(tmp_path / "in" / "b.jpg", quality=85)
    assert main(["spectrum", str(tmp_path / "in"), "--features", "durall,dzanic+", "--out", str(tmp_path / "s")]) == 0
    cols, rows = read_csv(tmp_path / "s" / "features.csv")
    assert cols[5:] == [f"durall_{i}" for i in range(80)] + ["dzanic+_0", "dzanic+_1", "dzanic+_2"]
    by = {Path(r["path"]).name: r for r in rows}
    got = {k: np.array([float(by[k][f"durall_{i}"]) for i in range(80)]) for k in by}
    assert np.allclose(got["a.png"], S.features(ims[0][None], "durall")[0], rtol=1e-8)
    luma = cv2.imread(str(tmp_path / "in" / "b.jpg"), cv2.IMREAD_GRAYSCALE)
    assert np.allclose(got["b.jpg"], S.features(luma[None], "durall")[0], rtol=1e-8)
    dz = np.array([float(by["a.png"][f"dzanic+_{i}"]) for i in range(3)])
    assert np.allclose(dz, S.features(ims[0][None], "dzanic+")[0], rtol=1e-8)
    assert main(["spectrum", str(tmp_path / "in"), "--features", "nope", "--out", str(tmp_path / "t")]) == 2

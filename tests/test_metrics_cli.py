"""Attribute classifier, fairness and group-FPR verbs end to end on synthetic labelled folders."""
import csv
import json

import numpy as np
import pytest
from PIL import Image

from forensics.cli.main import main


def _folder(path, bright, red, seed):
    """Images whose attributes are visible: Bright = high mean grey, Red = red cast."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (b, r) in enumerate(zip(bright, red)):
        im = rng.normal(170 if b else 70, 20, (24, 24, 3))
        im[..., 0] += 60 if r else -30
        name = f"img{seed}_{i:03d}.png"
        Image.fromarray(np.clip(im, 0, 255).astype(np.uint8)).save(path / name)
        rows.append((name, int(b), int(r)))
    return rows


def _table(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "Bright", "Red"])
        for n, b, r in rows:
            w.writerow([n, 1 if b else -1, r])  # -1/1 and 0/1 both read


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    rng = np.random.default_rng(0)
    b, r = rng.integers(0, 2, 80), rng.integers(0, 2, 80)
    rows = _folder(root / "train", b, r, 0)
    _table(root / "attrs.csv", rows)
    return root


def test_train_attribute_then_fairness_of_a_known_set(labelled, tmp_path, capsys):
    clf = tmp_path / "clf"
    assert main(["train-attribute", "--data", str(labelled / "train"), "--attributes", str(labelled / "attrs.csv"),
                 "--attribute", "Bright,Red", "--size", "16", "--out", str(clf)]) == 0
    meta = json.loads((clf / "model.json").read_text())
    assert meta["k"] == 4 and meta["classes"][3] == "Bright=1,Red=1"
    assert meta["accuracy"] == 1.0 and all(a == 1.0 for a in meta["per_class_accuracy"])
    assert (clf / "config.json").is_file()
    with np.load(clf / "model.npz", allow_pickle=False) as z:
        assert z["W"].shape == (16 * 16 * 3, 4)
    # a generated set of known composition: 6 bright-red, 2 dark-red, 0 of the others; plus a bad file
    _folder(tmp_path / "fakes", [1] * 6 + [0] * 2, [1] * 8, 7)
    (tmp_path / "fakes" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "fair"
    assert main(["fairness", str(tmp_path / "fakes"), "--classifier", str(clf), "--attribute", "Bright,Red",
                 "--out", str(out)]) == 0
    r = json.loads((out / "fairness.json").read_text())
    # class index = Bright + 2 Red: dark-red = 2, bright-red = 3; classes 0 and 1 never predicted (zero-filled)
    assert r["distribution"] == [0.0, 0.0, 0.25, 0.75]
    assert r["metrics"]["l2"] == pytest.approx(np.sqrt(2 * 0.25 ** 2 + 0 + 0.5 ** 2))
    assert r["metrics"]["kl"] == pytest.approx(np.log(4) + 0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    assert r["corrected_distribution"] == pytest.approx([0, 0, 0.25, 0.75])  # perfect classifier: no change
    assert len(r["skipped"]) == 1 and "broken.png" in r["skipped"][0]["path"]
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == 9 and sum(x["class_name"] == "error" for x in rows) == 1
    # the wrong attribute is a one-line error
    assert main(["fairness", str(tmp_path / "fakes"), "--classifier", str(clf), "--attribute", "Male",
                 "--out", str(out)]) == 2
    assert "classifies Bright,Red" in capsys.readouterr().err


def test_group_fpr_from_detect_verdicts(labelled, tmp_path, capsys):
    rows = list(csv.reader(open(labelled / "attrs.csv")))[1:]
    bright = [n for n, b, _ in rows if b == "1"][:4]
    dark = [n for n, b, _ in rows if b == "-1"][:5]
    with open(tmp_path / "v.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["path", "score", "label"])
        w.writeheader()
        for i, n in enumerate(bright):
            w.writerow({"path": f"/x/{n}", "score": 0.9, "label": "generated" if i < 2 else "real"})
        for n in dark:
            w.writerow({"path": f"/x/{n}", "score": 0.1, "label": "real"})
        w.writerow({"path": "/x/other.png", "score": 0.1, "label": "real"})
        w.writerow({"path": "/x/bad.png", "score": "", "label": "error"})
    assert main(["group-fpr", str(tmp_path / "v.csv"), "--attributes", str(labelled / "attrs.csv"),
                 "--attribute", "Bright", "--out", str(tmp_path / "fpr.json")]) == 0
    r = json.loads((tmp_path / "fpr.json").read_text())
    assert r["groups"]["Bright=1"] == {"n": 4, "false_positives": 2, "fpr": 0.5}
    assert r["groups"]["Bright=0"]["fpr"] == 0.0 and r["max_gap"] == 0.5
    assert r["unmatched"] == 1 and r["errors"] == 1


def test_fairness_benchmark_verb(tmp_path):
    assert main(["fairness-benchmark", "--out", str(tmp_path / "fb"), "--cardinalities", "2,4",
                 "--accuracies", "1,0.8", "--steps", "4", "--n", "500"]) == 0
    for f in ("rows.csv", "summary.csv", "benchmark.png", "config.json"):
        assert (tmp_path / "fb" / f).is_file()


def test_fid_verb_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    assert main(["fid", str(tmp_path / "missing"), str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("forensics: error:") and "missing" in err and len(err.strip().splitlines()) == 1

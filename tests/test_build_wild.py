"""data/build_wild_model.py rebuilds the same model on one machine (the tiny corpus: seconds)."""
import numpy as np

from forensics.builtin import build_wild_model
from forensics.detectors.store import load_model
from forensics.io.files import read_npz


def test_the_build_script_reproduces_its_model_and_card(tmp_path):
    for k in ("a", "b"):  # two builds from nothing, each its own corpus
        build_wild_model.main(["--tiny", "--no-generalization", "--work", str(tmp_path / f"w{k}"),
                               "--out", str(tmp_path / f"m{k}")])
    a, b = read_npz(tmp_path / "ma" / "model.npz"), read_npz(tmp_path / "mb" / "model.npz")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    det = load_model(tmp_path / "ma")
    assert det.name == "native" and 0 < det.threshold_ < 1
    x = [np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)]
    assert np.array_equal(det.p_generated(x), load_model(tmp_path / "mb").p_generated(x))
    card = (tmp_path / "ma" / "MODEL_CARD.md").read_text()
    assert "Known failures" in card and "--no-generalization" in card
    # rerunning over its own output folder replaces the model (the card is one of the model's files)
    build_wild_model.main(["--tiny", "--no-generalization", "--work", str(tmp_path / "wa"), "--out", str(tmp_path / "ma")])
    assert np.array_equal(read_npz(tmp_path / "ma" / "model.npz")["t32_W0"], a["t32_W0"])

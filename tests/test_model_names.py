"""Shipped models are reachable by name (``--model durall-lr`` or ``models/durall-lr``), never changed in place."""
import numpy as np
import pytest

from forensics.detectors.store import default_model_dir, load_model, model_folder, shipped_models
from forensics.io.sources import data_dir


def test_shipped_models_load_by_name_and_by_models_prefix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no folder of that name here
    assert "durall-lr" in shipped_models() and "default" in shipped_models()
    a, b = load_model("durall-lr"), load_model("models/durall-lr")
    assert model_folder("durall-lr") == data_dir() / "models" / "durall-lr"
    x = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    assert np.array_equal(a.p_generated(x), b.p_generated(x))
    assert model_folder(None) == default_model_dir()


def test_a_local_folder_wins_over_a_shipped_name_and_unknown_names_list_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "durall-lr").mkdir()
    assert model_folder("durall-lr").resolve() == tmp_path / "durall-lr"
    with pytest.raises(FileNotFoundError, match="shipped models: .*durall-lr"):
        load_model("no-such-model")


def test_calibrating_a_shipped_model_needs_an_output_folder(tmp_path, monkeypatch):
    from forensics.core.errors import UserError
    from forensics.evaluation.calibrate import CalibrateConfig, calibrate

    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    with pytest.raises(UserError, match="not changed in place; give --out"):
        calibrate(CalibrateConfig(model="durall-lr", real=(str(tmp_path / "real"),)), progress=False)

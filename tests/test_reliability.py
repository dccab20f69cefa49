"""Bounded read-ahead, resumable scans and fuzzing of the image decoder and the model loader."""
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from forensics import cli
from forensics.io.images import Prefetcher, load_image, map_chunks, scan


def _pngs(folder, n, side=32, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")


def test_read_ahead_is_bounded_by_decoded_bytes_not_file_count(tmp_path):
    _pngs(tmp_path, 60)
    one = 32 * 32 * 3
    pf = Prefetcher(scan(tmp_path), workers=3, max_bytes=4 * one)
    held_max = queued_max = 0
    n = 0
    for r in pf:
        time.sleep(0.005)  # a slow consumer: the decoders would run far ahead if unbounded
        done = [f for f in list(pf.pending) if f.done()]
        held_max = max(held_max, sum(f.result().image.nbytes for f in done))
        queued_max = max(queued_max, len(pf.pending))
        n += r.ok
    assert n == 60
    assert held_max <= 4 * one  # never more decoded images waiting than the budget holds
    assert queued_max <= 4  # not the 256 files of a count-based read-ahead


def test_chunks_are_cut_by_bytes_and_keep_order(tmp_path):
    _pngs(tmp_path, 25)
    one = 32 * 32 * 3
    sizes, order = [], []
    for loaded, kept, res in map_chunks(Prefetcher(scan(tmp_path), workers=2), lambda ims: len(ims),
                                        lambda r: r.ok, chunk=100, chunk_bytes=5 * one):
        sizes.append(res)
        order += [r.path.name for r in loaded]
    assert sizes == [5] * 5 and order == sorted(order) and len(order) == 25


def test_unreadable_file_gets_its_own_reason(tmp_path, monkeypatch):
    # permission bits do not bind root, so simulate what access() reports for another user
    _pngs(tmp_path, 1)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m, *a, **k: False if m == os.R_OK else real_access(p, m))
    r = load_image(tmp_path / "00000.png")
    assert not r.ok and r.error == "permission denied (file is not readable)"


def _detect(argv):
    env = {**os.environ, "FORENSICS_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, "-m", "forensics", "detect", *argv], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)


def test_killed_scan_resumes_to_the_rows_of_an_uninterrupted_one(tmp_path):
    _pngs(tmp_path / "in", 1500, side=24)
    full, cut = tmp_path / "full.csv", tmp_path / "cut.csv"
    assert _detect([str(tmp_path / "in"), "--out", str(full)]).wait() == 0
    p = _detect([str(tmp_path / "in"), "--out", str(cut)])
    partial = tmp_path / "cut.csv.partial"
    deadline = time.time() + 60
    while time.time() < deadline:  # kill once some rows, but not all, are on disk
        if partial.is_file() and partial.read_bytes().count(b"\n") > 130:
            break
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    lines = partial.read_bytes().count(b"\n")
    assert not cut.exists() and 130 < lines < 1501, lines
    with open(partial, "ab") as f:
        f.write(b'{"path": "torn')  # a row cut in half by the kill
    p = _detect([str(tmp_path / "in"), "--out", str(cut), "--resume"])
    assert p.wait() == 0, p.stderr.read().decode()
    assert "kept from the earlier output" in p.stderr.read().decode()
    assert cut.read_bytes() == full.read_bytes()
    assert not partial.exists()


def test_resume_of_a_finished_scan_scores_only_new_files(tmp_path, capsys):
    _pngs(tmp_path / "in", 3)
    out = tmp_path / "o.json"
    assert cli.main(["detect", str(tmp_path / "in"), "--out", str(out)]) == 0
    first = json.loads(out.read_text())["rows"]
    _pngs(tmp_path / "in2", 2, seed=5)
    for f in (tmp_path / "in2").iterdir():
        f.rename(tmp_path / "in" / ("z" + f.name))
    capsys.readouterr()
    assert cli.main(["detect", str(tmp_path / "in"), "--out", str(out), "--resume"]) == 0
    assert "5 files" in capsys.readouterr().err
    rows = json.loads(out.read_text())["rows"]
    assert rows[:3] == first and [r["path"].rsplit("/", 1)[1] for r in rows[3:]] == ["z00000.png", "z00001.png"]


# ----------------------------------------------------------------------------- fuzzing
def _seed_files():
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    out = []
    for fmt, kw in (("PNG", {}), ("JPEG", {"quality": 80}), ("TIFF", {}), ("WEBP", {}), ("BMP", {})):
        b = io.BytesIO()
        im.save(b, format=fmt, **kw)
        out.append(b.getvalue())
    return out


SEEDS = _seed_files()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, len(SEEDS) - 1), cuts=st.lists(st.tuples(st.integers(0, 4000), st.binary(max_size=8)),
                                                          max_size=4), trunc=st.integers(0, 5000))
def test_fuzz_decoder_never_raises(tmp_path, which, cuts, trunc):
    data = bytearray(SEEDS[which])
    for pos, junk in cuts:
        pos %= max(1, len(data))
        data[pos:pos + len(junk)] = junk
    data = bytes(data[: max(0, len(data) - trunc % max(1, len(data)))])
    f = tmp_path / "f.png"
    f.write_bytes(data)
    r = load_image(f, "none")
    if r.ok:
        assert r.image.dtype == np.uint8 and r.image.ndim == 3 and r.image.shape[2] == 3
    else:
        assert isinstance(r.error, str) and r.error and "\n" not in r.error


JSONV = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
                     lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=5), ch, max_size=3),
                     max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["format", "class", "params", "threshold", "state", "features", "estimator",
                            "preprocess", "seed", "mean", "scale", "est_coef", "est_b"]), value=JSONV)
def test_fuzz_model_loader_fails_in_one_line_or_scores(tmp_path, key, value):
    from forensics.detectors.store import default_model_dir, load_model

    src = default_model_dir()
    meta = json.loads((src / "model.json").read_text())
    with np.load(src / "model.npz") as z:
        arrays = {k: z[k] for k in z.files}
    if key in arrays:
        try:
            arrays[key] = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            arrays[key] = np.asarray([0.0])
    elif key in meta:
        meta[key] = value
    else:
        meta["params"][key] = value
    d = tmp_path / "m"
    d.mkdir(exist_ok=True)
    (d / "model.json").write_text(json.dumps(meta))
    np.savez(d / "model.npz", **arrays)
    try:
        det = load_model(d)
    except (ValueError, OSError) as e:
        assert str(e) and "\n" not in str(e).strip()
        return
    s = det.score(np.full((2, 64, 64, 3), 100, np.uint8))
    assert s.shape == (2,)


def test_spectrum_of_only_unusable_files_names_no_plot(tmp_path, capsys):
    """Nothing usable: one error line naming a file and its reason (exit 2), no plot named, nothing written."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"junk")
    assert cli.main(["spectrum", str(tmp_path / "in"), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("forensics: error: no usable image") and err.count("\n") == 1 and "a.png" in err
    assert "spectrum.png" not in err and not any((tmp_path / "s").iterdir())


def test_library_warnings_are_one_line(tmp_path, capsys, monkeypatch):
    import warnings

    import forensics.detection.detect as D

    def noisy(cfg, progress=True):
        warnings.warn("something\nover two lines", RuntimeWarning)
        return {"n": 0, "resumed": 0}

    monkeypatch.setattr(D, "run_detect", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert cli.main(["detect", str(tmp_path), "--out", str(tmp_path / "o.csv")]) == 0
    err = capsys.readouterr().err
    assert "forensics: warning: something\n" in err and "over two lines" not in err and ".py:" not in err


def _strict_loads(text):
    """``json.loads`` that fails on the non-standard NaN / Infinity tokens."""
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_write_json_is_strict_json_with_null_for_nan_and_infinities(tmp_path):
    from forensics.io.files import write_json
    from forensics.study.seeds import summarise_seeds

    def res(auc):
        return {"detectors": {"d": {"baseline": {m: {"mean": v, "std": 0.0} for m, v in
                                                 (("detection_rate", 0.5), ("real_accuracy", 0.9), ("auc", auc))}}}}

    seeds = summarise_seeds({0: res(0.75), 1: res(float("nan"))})  # a seed whose AUC was undefined
    obj = {"nan": float("nan"), "f32": np.float32("nan"), "inf": np.inf, "ninf": -np.inf, "ok": np.float32(0.25),
           "arr": np.array([1.0, np.nan, np.inf]), "tup": (1, float("nan")), "i": np.int64(3), "b": np.bool_(True),
           "path": tmp_path, "seeds": seeds}
    got = _strict_loads(write_json(tmp_path / "r.json", obj).read_text())
    assert got["nan"] is None and got["f32"] is None and got["inf"] is None and got["ninf"] is None
    assert got["ok"] == 0.25 and got["arr"] == [1.0, None, None] and got["tup"] == [1, None]
    assert got["i"] == 3 and got["b"] is True and got["path"] == str(tmp_path)
    auc = got["seeds"]["detectors"]["d"]["baseline"]["auc"]
    assert auc["per_seed"] == [0.75, None] and auc["mean"] is None
    assert got["seeds"]["detectors"]["d"]["baseline"]["detection_rate"]["mean"] == 0.5


def test_evaluate_and_detect_outputs_are_strict_json(tmp_path):
    """No real image can be scored: AUC, AP and real accuracy are undefined (NaN in memory);
    evaluation.json writes them as null, and detect's JSON rows as well."""
    from forensics import cli
    from forensics.detectors.store import default_model_dir

    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir(), fake.mkdir()
    (real / "bad.png").write_bytes(b"not an image")
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(fake / f"{i}.png")
    assert cli.main(["evaluate", str(default_model_dir()), "--real", str(real), "--fake", str(fake),
                     "--out", str(tmp_path / "ev")]) == 0
    ev = _strict_loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert ev["overall"]["n_real"] == 0 and ev["overall"]["auc"] is None and ev["overall"]["real_accuracy"] is None
    assert ev["overall"]["generated_accuracy"] is not None and ev["n_errors"] == 1
    assert cli.main(["detect", str(real), str(fake), "--out", str(tmp_path / "d.json")]) == 0
    rows = _strict_loads((tmp_path / "d.json").read_text())["rows"]
    assert [r["score"] is None for r in rows] == [True, False, False, False]


def test_envelope_warnings_are_one_line_per_kind_with_count_and_first_names(tmp_path, capsys):
    """Files outside the default model's envelope (32x32 colour): one summary line per kind, with
    the count and the first names in file order, however many files and chunks; the rows keep each
    file's size; a resumed scan warns about sizes as the uninterrupted one does."""
    import csv

    from forensics.detection.detect import DetectConfig, run_detect

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(3)
    sides = [40, 40, 32, 40, 40, 32, 40, 56, 32, 40]  # 7 outside the envelope
    for i, side in enumerate(sides):
        im = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        if i in (2, 5, 6):
            im[..., 1] = im[..., 2] = im[..., 0]  # greyscale stored as RGB
        Image.fromarray(im).save(folder / f"{i:02d}.png")
    (folder / "10.png").write_bytes(b"not an image")  # an error row: not counted as an odd size
    size_line = ("forensics: warning: 7 of 11 images (40x40, 56x56) differ in size from the model's training images "
                 "(32x32): 00.png, 01.png, 03.png and 4 more; its rates were measured on those sizes only")
    grey_line = ("forensics: warning: 3 of 11 images are greyscale: 02.png, 05.png, 06.png; the model was trained on "
                 "colour photographs only and its rates were not measured on greyscale images")

    def warnings_of(err):
        return [ln for ln in err.splitlines() if ln.startswith("forensics: warning:")]

    full = tmp_path / "full.csv"
    capsys.readouterr()
    assert cli.main(["detect", str(folder), "--out", str(full)]) == 0
    assert warnings_of(capsys.readouterr().err) == [size_line, grey_line]
    with open(full, newline="") as fh:
        rows = list(csv.DictReader(fh))
        fh.seek(0)
        header = fh.readline().strip()
    assert header == "path,score,label,threshold,detector,width,height,error"  # the output columns as before
    assert [(r["width"], r["height"]) for r in rows] == [(str(s), str(s)) for s in sides] + [("", "")]
    # an interrupted scan (two rows of 02.png's chunk on disk), resumed: the same size line, over all rows
    cut = tmp_path / "cut.csv"

    def stop(rows):
        raise KeyboardInterrupt

    try:
        run_detect(DetectConfig((str(folder),), out=str(cut), chunk=4), progress=False, sink=stop)
    except KeyboardInterrupt:
        pass
    assert (tmp_path / "cut.csv.partial").read_text().count("\n") == 5  # header and 4 rows
    capsys.readouterr()
    assert cli.main(["detect", str(folder), "--out", str(cut), "--resume"]) == 0
    lines = warnings_of(capsys.readouterr().err)
    assert lines == [size_line, ("forensics: warning: 2 of the 7 images scored in this run are greyscale: 05.png, "
                                 "06.png; the model was trained on colour photographs only and its rates were not "
                                 "measured on greyscale images (the 4 rows kept from the earlier output are not "
                                 "rechecked)")]
    assert cut.read_bytes() == full.read_bytes()

"""DCSH hashing: the binary step's pieces against hand oracles, balanced and stable codes,
retrieval against LSH on patches with known groups, index/query/leakage files and verbs, and
the hash-kNN detector under scikit-learn's clone and cross-validation."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from forensics.detectors.hashing import (
    HashConfig,
    HashModel,
    balanced_sign,
    codes_of,
    hamming,
    hamming_map,
    joint_codes,
    lsh_codes,
    nearest,
    pixel_input,
    procrustes,
    spectral_input,
)

SIZE = 16
CFG = HashConfig.fast(bits=16, size=SIZE, epochs=10, iters=5)


@pytest.fixture(scope="module")
def grouped():
    """Built-in 16x16 patches with their photograph as group: 300 to train on, 120 held out."""
    from forensics.io.sources import builtin_patches

    s = builtin_patches(SIZE)
    groups = np.array([n.split("@")[0] for n in s.names])
    perm = np.random.default_rng(0).permutation(len(s))
    tr, te = perm[:300], perm[300:420]
    return s.images[tr], groups[tr], s.images[te], groups[te]


@pytest.fixture(scope="module")
def model(grouped):
    return HashModel.train(grouped[0], CFG)


def _png_folder(folder, images, prefix="im"):
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{prefix}{i:03d}.png")
    return folder


def _jpeg(im, quality=95):
    buf = io.BytesIO()
    Image.fromarray(im).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


# ----------------------------------------------------------------- binary step, hand oracles
def test_balanced_sign_takes_the_upper_half_of_each_column():
    Z = np.array([[0.3, -1.0], [0.1, 2.0], [0.9, 0.0], [-0.5, 0.0]])
    # column 0: the two largest are rows 2 and 0; column 1: row 1, then rows 2/3 tie -> row 2 first
    assert balanced_sign(Z).tolist() == [[1, -1], [-1, 1], [1, 1], [-1, -1]]
    assert (balanced_sign(np.random.default_rng(0).standard_normal((7, 3))) > 0).sum(0).tolist() == [4, 4, 4]


def test_procrustes_recovers_a_known_rotation():
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((50, 4))
    R0, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    np.testing.assert_allclose(procrustes(Y, Y @ R0), R0, atol=1e-10)


def test_joint_codes_are_balanced_and_separate_two_clusters():
    """Two well separated clusters in both modalities: every step-1 bit is on for exactly half
    the points, the objective does not grow, and some bit splits the clusters exactly."""
    rng = np.random.default_rng(2)
    lab = np.repeat([0, 1], 40)
    a = rng.standard_normal((80, 5)) + 6.0 * lab[:, None]
    b = rng.standard_normal((80, 3)) - 6.0 * lab[:, None]
    B, hist = joint_codes({"pixels": a, "spectrum": b}, bits=4, knn=5, iters=10)
    assert set(np.unique(B)) == {-1.0, 1.0}
    assert ((B > 0).sum(0) == 40).all()
    assert hist[-1] <= hist[0] + 1e-9
    split = [(B[:, j] > 0) == (lab == 1) for j in range(4)]
    assert any(s.all() or (~s).all() for s in split)


def test_hamming_and_nearest_match_brute_force():
    rng = np.random.default_rng(3)
    a, b = rng.random((9, 16)) > 0.5, rng.random((11, 16)) > 0.5
    brute = np.array([[np.count_nonzero(x != y) for y in b] for x in a])
    assert (hamming(a, b) == brute).all()
    idx, d = nearest(a, b, 3)
    assert (d == np.sort(brute, axis=1)[:, :3]).all()
    assert (np.take_along_axis(brute, idx, 1) == d).all()


def test_hamming_map_hand_example():
    # query 0000; database distances 0, 1, 2, 3 with labels 1, 0, 1, 0 (query label 1)
    q = np.zeros((1, 4), bool)
    db = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]], bool)
    # relevant at ranks 1 and 3: AP = (1/1 + 2/3) / 2
    assert hamming_map(q, db, [1], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)


# --------------------------------------------------------------------- trained model checks
def test_codes_are_balanced_on_the_training_set(model, grouped):
    assert (model.train_codes.sum(0) == 150).all()  # step 1: exactly half of the 300
    out = model.outputs(grouped[0])
    for m in ("pixels", "spectrum"):
        frac = codes_of(out, m).mean(0)
        assert np.abs(frac - 0.5).mean() < 0.15, (m, frac)
        assert frac.min() > 0.1 and frac.max() < 0.9, (m, frac)


def test_codes_are_stable_under_reencoding(model, grouped, tmp_path):
    """A PNG round trip through the toolkit's loader gives identical codes; JPEG quality 95
    flips few bits, far fewer than separate two different images."""
    from forensics.io.images import load_image

    imgs = grouped[2][:40]
    folder = _png_folder(tmp_path / "png", imgs)
    back = np.stack([load_image(folder / f"im{i:03d}.png").image for i in range(len(imgs))])
    assert (model.encode(back) == model.encode(imgs)).all()
    jp = np.stack([_jpeg(im) for im in imgs])
    c, cj = model.encode(imgs), model.encode(jp)
    same = np.count_nonzero(c != cj, axis=1).mean()
    other = hamming(c, c)[~np.eye(len(c), dtype=bool)].mean()
    assert same < 0.25 * other, (same, other)


def test_retrieval_map_beats_lsh_on_patches_with_known_groups(model, grouped):
    """Held-out patches query the training patches (relevant = same photograph)."""
    xtr, gtr, xte, gte = grouped
    oq, od = model.outputs(xte), model.outputs(xtr)
    dcsh_p2p = hamming_map(codes_of(oq, "pixels"), codes_of(od, "pixels"), gte, gtr)
    dcsh_p2s = hamming_map(codes_of(oq, "pixels"), codes_of(od, "spectrum"), gte, gtr)
    dcsh_s2p = hamming_map(codes_of(oq, "spectrum"), codes_of(od, "pixels"), gte, gtr)
    P = pixel_input(np.concatenate([xtr, xte])).reshape(len(xtr) + len(xte), -1)
    S = spectral_input(np.concatenate([xtr, xte]))
    n = len(xtr)
    lsh_p2p = hamming_map(lsh_codes(P[:n], P[n:], 16, 1), lsh_codes(P[:n], P[:n], 16, 1), gte, gtr)
    lsh_p2s = hamming_map(lsh_codes(P[:n], P[n:], 16, 1), lsh_codes(S[:n], S[:n], 16, 2), gte, gtr)
    assert dcsh_p2p > lsh_p2p
    assert dcsh_p2s > lsh_p2s + 0.03 and dcsh_s2p > lsh_p2s + 0.03


def test_model_save_load_gives_identical_codes(model, grouped, tmp_path):
    model.save(tmp_path / "m")
    back = HashModel.load(tmp_path / "m")
    assert back.config == model.config
    assert (back.train_codes == model.train_codes).all()
    for m in ("pixels", "spectrum", "both"):
        assert (back.encode(grouped[2], m) == model.encode(grouped[2], m)).all()



def test_a_hash_model_with_non_finite_arrays_is_refused(model, tmp_path):
    model.save(tmp_path / "m")
    z = dict(np.load(tmp_path / "m" / "hash_model.npz"))
    name = next(k for k, a in z.items() if np.issubdtype(a.dtype, np.floating))
    z[name] = z[name].copy()
    z[name].flat[0] = np.nan
    np.savez(tmp_path / "m" / "hash_model.npz", **z)
    with pytest.raises(ValueError, match=f"damaged.*{name}.*non-finite"):
        HashModel.load(tmp_path / "m")


def test_config_validation():
    with pytest.raises(ValueError, match="bits"):
        HashConfig(bits=24)
    with pytest.raises(ValueError, match="spectral"):
        HashConfig(spectrum="dct")
    with pytest.raises(ValueError, match="modalities"):
        HashConfig(modalities=("pixels", "text"))
    assert HashConfig.from_dict(CFG.to_dict()) == CFG


# ---------------------------------------------------------------------- index, query, leakage
def test_index_query_roundtrip_and_bad_files(grouped, tmp_path):
    from conftest import write_bad_files

    from forensics.cli.main import main
    from forensics.evaluation.hash_index import HashIndex, build_index

    src = _png_folder(tmp_path / "src", grouped[0][:80])
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    cfg = CFG.replace(epochs=4, iters=3)
    ix = build_index([src], tmp_path / "idx", cfg)
    assert len(ix.files) == 80 and [s["path"].endswith("broken.png") for s in ix.skipped] == [True]
    back = HashIndex.load(tmp_path / "idx")
    assert back.files == ix.files
    for m in ("pixels", "spectrum", "both"):
        assert (back.codes_for(m) == ix.codes_for(m)).all()
    assert (back.model.encode(grouped[0][:80], "both") == ix.codes_for("both")).all()

    q = tmp_path / "q"
    _png_folder(q, grouped[0][:2])
    write_bad_files(q / "bad")
    assert main(["hash", "query", str(tmp_path / "idx"), str(q), "--k", "3", "--out", str(tmp_path / "n.json")]) == 0
    rows = json.loads((tmp_path / "n.json").read_text())["rows"]
    good = [r for r in rows if r["error"] is None]
    assert len(good) == 6 and {r["query"].split("/")[-1] for r in good} == {"im000.png", "im001.png"}
    # an indexed image finds itself first, at distance 0
    first = [r for r in good if r["rank"] == 1]
    assert all(r["hamming"] == 0 and r["neighbour"].endswith(r["query"].split("/")[-1]) for r in first)
    assert any(r["error"] for r in rows) and all(r["rank"] is None for r in rows if r["error"])


def test_leakage_finds_the_reencoded_copies(grouped, tmp_path, capsys):
    from forensics.cli.main import main

    train = _png_folder(tmp_path / "train", grouped[0][:60])
    test = tmp_path / "test"
    _png_folder(test, grouped[2][:20], "new")
    for i in (3, 17, 42):  # JPEG copies of three training images
        Image.fromarray(_jpeg(grouped[0][i], 90)).save(test / f"copy{i}.jpg", quality=95)
    rc = main(["hash", "leakage", str(train), str(test), "--bits", "16", "--size", str(SIZE), "--epochs", "6",
               "--k", "5", "--max-distance", "6", "--out", str(tmp_path / "leak.json")])
    assert rc == 0
    out = json.loads((tmp_path / "leak.json").read_text())
    dups = {(r["test"].split("/")[-1], r["train"].split("/")[-1]) for r in out["rows"] if r.get("duplicate")}
    assert dups == {("copy3.jpg", "im003.png"), ("copy17.jpg", "im017.png"), ("copy42.jpg", "im042.png")}
    assert "3 of 23 test images have a near-duplicate" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path, capsys):
    from forensics.cli.main import main

    assert main(["hash", "query", str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 2
    assert main(["hash", "query", str(tmp_path / "nope"), str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("forensics: error:") for e in err)


# ---------------------------------------------------------------------------- hash-kNN detector
@pytest.fixture(scope="module")
def real_fake():
    from forensics.generators.simulate import simulate_upsampling
    from forensics.io.sources import builtin_patches

    p = builtin_patches(SIZE, n=240, seed=1).images
    X = np.concatenate([p[:120], simulate_upsampling(p[120:], seed=0, strength=(0.15, 0.25))])
    y = np.r_[np.zeros(120, int), np.ones(120, int)]
    perm = np.random.default_rng(0).permutation(240)
    return X[perm], y[perm]


def test_hash_knn_detector_in_clone_and_cross_val_score(real_fake):
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    from forensics.detectors.hash_knn import HashKNNDetector

    X, y = real_fake
    det = HashKNNDetector(bits=16, size=SIZE, epochs=6, iters=3, modality="spectrum", k=5)
    c = clone(det)
    assert c.get_params() == det.get_params() and not hasattr(c, "codes_")
    scores = cross_val_score(det, X, y, cv=3)
    assert scores.mean() > 0.7, scores


def test_hash_knn_detector_save_load(real_fake, tmp_path):
    from forensics.detectors.hash_knn import HashKNNDetector

    X, y = real_fake
    det = HashKNNDetector(bits=16, size=SIZE, epochs=3, iters=3, k=3).fit(X[:150], y[:150])
    p = det.predict_proba(X[150:])
    assert p.shape == (90, 2) and np.allclose(p.sum(1), 1)
    det.save(tmp_path / "d")
    back = HashKNNDetector.load(tmp_path / "d")
    assert back.get_params() == det.get_params()
    np.testing.assert_array_equal(back.predict_proba(X[150:]), p)
    np.testing.assert_array_equal(back.predict(X[150:]), det.predict(X[150:]))


def test_hash_knn_model_folder_is_read_by_detect_through_the_format_registry(real_fake, tmp_path):
    """A saved hash-kNN folder has a model.json naming its format: load_detector dispatches on it,
    and ``forensics detect --model`` centre-crops each image to the hash size, scores it as the
    detector does in Python, and gives smaller images an error row."""
    from PIL import Image

    from forensics import cli
    from forensics.detectors.hash_knn import HashKNNDetector
    from forensics.detectors.store import load_detector
    from forensics.io.images import center_crop

    X, y = real_fake
    det = HashKNNDetector(bits=16, size=SIZE, epochs=3, iters=3, k=3).fit(X[:150], y[:150])
    det.save(tmp_path / "m")
    assert type(load_detector(tmp_path / "m")) is HashKNNDetector
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(5)
    big = [np.pad(X[150 + i], ((2, 4), (3, 5), (0, 0)), mode="reflect") for i in range(6)]  # 22x24: cropped to 16
    for i, im in enumerate(big):
        Image.fromarray(im).save(imgs / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (10, 30, 3), dtype=np.uint8)).save(imgs / "small.png")
    assert cli.main(["detect", str(imgs), "--model", str(tmp_path / "m"), "--out", str(tmp_path / "d.json")]) == 0
    rows = json.loads((tmp_path / "d.json").read_text())["rows"]
    want = det.p_generated(np.stack([center_crop(im, SIZE, SIZE) for im in big]))
    assert [r["path"].rsplit("/", 1)[1] for r in rows] == [f"{i}.png" for i in range(6)] + ["small.png"]
    np.testing.assert_allclose([r["score"] for r in rows[:6]], want, atol=1e-6)
    assert rows[6]["label"] == "error" and "16x16" in rows[6]["error"]


# ------------------------------------------------------------ packed codes, exact and multi-index search
def _brute_knn(q, db, k):
    """Hand oracle: distances by comparing bits, order by (distance, position)."""
    D = (q[:, None, :] != db[None, :, :]).sum(2)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(D, order, 1)


@pytest.mark.parametrize("bits,n_words", [(16, 1), (32, 1), (64, 1), (128, 2)])
def test_multi_index_answers_the_exact_neighbours_ties_by_position(bits, n_words):
    """Clustered codes with many exact duplicates and tied distances: the packed popcount scan and
    the multi-index give the brute-force neighbours, in the same order (ties by position)."""
    from forensics.detectors.hash_search import MultiIndex, knn_scan, pack, unpack

    rng = np.random.default_rng(bits)
    centres = rng.random((12, bits)) > 0.5
    db = centres[rng.integers(0, 12, 700)] ^ (rng.random((700, bits)) < 0.05)
    db[100:140] = db[0]  # exact duplicates: ties at every distance
    q = np.concatenate([db[:5], centres[rng.integers(0, 12, 40)] ^ (rng.random((40, bits)) < 0.1)])
    w, qw = pack(db), pack(q)
    assert w.dtype == np.uint64 and w.shape == (700, n_words) and (unpack(w, bits) == db).all()
    want = _brute_knn(q, db, 10)
    scan = knn_scan(qw, w, 10)
    mih = MultiIndex(w, [min(bits, 64)] * n_words)
    got = mih.knn(qw, 10)
    for a in (scan, got):
        assert (a[0] == want[0]).all() and (a[1] == want[1]).all()
    # k above the database size: every item, in order
    idx, d = MultiIndex(w[:7], [min(bits, 64)] * n_words).knn(qw[:3], 20)
    want = _brute_knn(q[:3], db[:7], 7)
    assert idx.shape == (3, 7) and (idx == want[0]).all() and (d == want[1]).all()


def test_hamming_of_packed_codes_never_unpacks(monkeypatch):
    from forensics.detectors import hash_search

    rng = np.random.default_rng(9)
    a, b = rng.random((6, 64)) > 0.5, rng.random((8, 64)) > 0.5
    wa, wb = hash_search.pack(a), hash_search.pack(b)

    def boom(*a, **k):
        raise AssertionError("unpackbits used for a distance")

    monkeypatch.setattr(np, "unpackbits", boom)
    assert (hash_search.distances(wa, wb) == (a[:, None] != b[None]).sum(2)).all()
    assert (hamming(a, b) == (a[:, None] != b[None]).sum(2)).all()


# ------------------------------------------------------------------ index: add, kill, Dask, bad inputs
@pytest.fixture(scope="module")
def tiny_model(grouped):
    return HashModel.train(grouped[0][:120], CFG.replace(epochs=3, iters=3))


def _folders(root, images, n_folders, per):
    """``n_folders`` folders of ``per`` PNG images each (f00/, f01/, ...); their files in order."""
    files = []
    for f in range(n_folders):
        d = root / f"f{f:02d}"
        d.mkdir(parents=True)
        for i in range(per):
            p = d / f"im{i:03d}.png"
            Image.fromarray(images[(f * per + i) % len(images)]).save(p)
            files.append(str(p))
    return files


def _same(a, b):
    assert a.files == b.files
    for m in ("pixels", "spectrum"):
        assert (a.words[m] == b.words[m]).all()
    assert (np.asarray(a.thumbs) == np.asarray(b.thumbs)).all()


def test_index_search_equals_exact_search_and_codes_are_the_models(grouped, tiny_model, tmp_path):
    from forensics.evaluation.hash_index import IndexConfig, build_index

    files = _folders(tmp_path / "src", grouped[0], 3, 30)
    ix = build_index([tmp_path / "src"], tmp_path / "idx", IndexConfig(hash=CFG, chunk=16, segment=20),
                     model=tiny_model)
    assert ix.files == files and len(ix.segments) == 3  # a segment once 20 are encoded: 32 + 32 + 26
    thumbs = np.asarray(ix.thumbs)
    assert (ix.codes_for("both") == tiny_model.encode(thumbs, "both")).all()
    q = tiny_model.codes(grouped[2][:25])
    for m in ("pixels", "spectrum", "both"):
        want = _brute_knn(tiny_model.encode(grouped[2][:25], m), ix.codes_for(m), 7)
        for exact in (False, True):
            idx, d = ix.search(q, 7, m, exact=exact)
            assert (idx == want[0]).all() and (d == want[1]).all()


def test_incremental_add_equals_building_at_once(grouped, tiny_model, tmp_path):
    from forensics.evaluation.hash_index import HashIndex, IndexConfig, build_index

    _folders(tmp_path, grouped[0], 4, 9)
    dirs = [tmp_path / f"f{i:02d}" for i in range(4)]
    cfg = IndexConfig(hash=CFG, chunk=4, segment=8)
    once = build_index(dirs, tmp_path / "once", cfg, model=tiny_model)
    step = build_index(dirs[:1], tmp_path / "step", cfg, model=tiny_model)
    for d in dirs[1:3]:
        step = build_index([d], tmp_path / "step", cfg.replace(add=True))
        assert step.added == 9
    step = build_index(dirs, tmp_path / "step", cfg.replace(add=True))  # only f03 is new
    assert step.added == 9 and len(step) == 36
    _same(step, once)
    _same(HashIndex.load(tmp_path / "step"), once)
    assert build_index(dirs, tmp_path / "step", cfg.replace(add=True)).added == 0


KILL_LOOP = """
import sys
from forensics.evaluation.hash_index import IndexConfig, build_index
idx, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    build_index([f"{root}/f{i:02d}"], idx, IndexConfig(add=True, chunk=2, segment=2))
"""


def test_index_survives_kill_9_during_add(grouped, tiny_model, tmp_path):
    """A process adding folder after folder is killed (SIGKILL) twice, at different moments: each
    time the index loads, holds a whole prefix of the additions with their exact codes, and a
    later add completes it to what one build gives."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from forensics.evaluation.hash_index import HashIndex, IndexConfig, build_index

    n_folders, per = 30, 3
    files = _folders(tmp_path / "src", grouped[0], n_folders, per)
    idx = tmp_path / "idx"
    build_index([tmp_path / "src" / "f00"], idx, IndexConfig(hash=CFG, chunk=2, segment=2), model=tiny_model)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for delay in (0.0, 0.37):
        before = len(HashIndex.load(idx))
        p = subprocess.Popen([sys.executable, "-c", KILL_LOOP, str(idx), str(tmp_path / "src"), str(n_folders)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t0 = time.time()
            while len(json.loads((idx / "index.json").read_text())["segments"]) < before // 2 + 3:
                assert p.poll() is None and time.time() - t0 < 60, "the adding process ended or stalled"
                time.sleep(0.01)
            time.sleep(delay)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        ix = HashIndex.load(idx)  # never damaged
        assert len(ix) > before and ix.files == files[:len(ix)]
        assert (ix.codes_for("both") == tiny_model.encode(np.asarray(ix.thumbs), "both")).all()
    done = build_index([tmp_path / "src"], idx, IndexConfig(add=True))
    assert done.files == files
    ref = build_index([tmp_path / "src"], tmp_path / "ref", IndexConfig(hash=CFG), model=tiny_model)
    for m in ("pixels", "spectrum"):
        assert (done.words[m] == ref.words[m]).all()
    named = {f"{s['name']}{ext}" for s in done.segments for ext in (".json", ".npz", ".thumbs.npy")}
    assert {p.name for p in (idx / "segments").iterdir()} == named  # the killed writer's leftovers are gone


def test_a_crash_before_the_manifest_leaves_the_previous_index(grouped, tiny_model, tmp_path, monkeypatch):
    from forensics.evaluation import hash_index as H

    _folders(tmp_path, grouped[0], 2, 5)
    cfg = H.IndexConfig(hash=CFG)
    old = H.build_index([tmp_path / "f00"], tmp_path / "idx", cfg, model=tiny_model)

    def crash(*a, **k):
        raise KeyboardInterrupt  # the segment's files are written, the manifest naming them is not

    monkeypatch.setattr(H._Writer, "manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        H.build_index([tmp_path / "f01"], tmp_path / "idx", cfg.replace(add=True))
    monkeypatch.undo()
    assert (tmp_path / "idx" / "segments" / "seg-000001.npz").is_file()
    _same(H.HashIndex.load(tmp_path / "idx"), old)
    new = H.build_index([tmp_path / "f01"], tmp_path / "idx", cfg.replace(add=True))
    assert new.added == 5 and new.files[:5] == old.files


def test_dask_build_gives_the_single_process_index(grouped, tiny_model, tmp_path):
    pytest.importorskip("distributed")
    from forensics.evaluation.hash_index import IndexConfig, build_index

    _folders(tmp_path / "src", grouped[0], 2, 20)
    write_bad = __import__("conftest").write_bad_files
    write_bad(tmp_path / "src" / "bad")
    cfg = IndexConfig(hash=CFG, chunk=8, segment=16)
    one = build_index([tmp_path / "src"], tmp_path / "one", cfg, model=tiny_model)
    many = build_index([tmp_path / "src"], tmp_path / "many", cfg.replace(scheduler="local:2"), model=tiny_model)
    _same(many, one)
    assert len(one) == 40 and one.skipped == many.skipped and len(one.skipped) == 4
    for f in ["index.json"] + [f"segments/{s['name']}.json" for s in one.segments]:
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "many" / f).read_bytes(), f


def test_index_bad_inputs_are_clear_errors(grouped, tiny_model, tmp_path, capsys):
    from forensics.cli.main import main
    from forensics.core.errors import UserError
    from forensics.evaluation.hash_index import HashIndex, IndexConfig, build_index

    _folders(tmp_path, grouped[0], 1, 6)
    src, idx = tmp_path / "f00", tmp_path / "idx"
    with pytest.raises(UserError, match="holds no hash index to add to"):
        build_index([src], idx, IndexConfig(add=True))
    build_index([src], idx, IndexConfig(hash=CFG), model=tiny_model)
    with pytest.raises(UserError, match="already holds a hash index"):
        build_index([src], idx, IndexConfig(hash=CFG), model=tiny_model)
    with pytest.raises(ValueError, match="chunk"):
        IndexConfig(chunk=0)
    with pytest.raises(ValueError, match="local:N"):
        IndexConfig(scheduler="local:0")
    with pytest.raises(ValueError, match="max_train"):
        HashConfig(max_train=3)
    # another writer holds the lock
    import fcntl

    with open(idx / ".lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        with pytest.raises(UserError, match="another process is writing"):
            build_index([src], idx, IndexConfig(add=True))
    # damaged segments and manifests are refused by name
    seg = idx / "segments" / "seg-000000.thumbs.npy"
    raw = seg.read_bytes()
    seg.write_bytes(raw[:-10])
    with pytest.raises(UserError, match="seg-000000: thumbnail file size"):
        HashIndex.load(idx)
    seg.write_bytes(raw)
    j = idx / "segments" / "seg-000000.json"
    j.write_text(j.read_text().replace("im000.png", "im009.png"))
    with pytest.raises(UserError, match="seg-000000: contents differ from their checksums"):
        HashIndex.load(idx)
    meta = json.loads((idx / "index.json").read_text())
    (idx / "index.json").write_text(json.dumps({**meta, "format_version": 3}))
    with pytest.raises(UserError, match="format version 3 is not supported"):
        HashIndex.load(idx)
    (idx / "index.json").write_text(json.dumps(meta))
    # the verb: one line each
    args = ["hash", "index", str(src), "--out", str(tmp_path / "new"), "--add", "--bits", "16"]
    assert main(args) == 2
    assert main(["hash", "index", str(src), "--out", str(idx), "--bits", "16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "forensics: error: --add encodes with the index's own model; drop --bits"
    assert err[1].startswith("forensics: error: ") and err[1].endswith("(--add)") and len(err) == 2


def test_index_of_format_version_1_loads_and_converts_on_add(grouped, tiny_model, tmp_path):
    """An index written by 0.3 (one index.npz of np.packbits rows) is read, and an add converts it."""
    from forensics.evaluation.hash_index import HashIndex, IndexConfig, build_index
    from forensics.io.files import write_json, write_npz

    files = _folders(tmp_path, grouped[0], 2, 5)
    old = tmp_path / "old"
    tiny_model.save(old)
    thumbs = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files[:5]])
    codes = {m: np.packbits(tiny_model.encode(thumbs, m), axis=1) for m in ("pixels", "spectrum")}
    write_npz(old / "index.npz", codes_pixels=codes["pixels"], codes_spectrum=codes["spectrum"], thumbs=thumbs)
    write_json(old / "index.json", {"format": "forensics-hash-index", "format_version": 1, "files": files[:5],
                                    "skipped": [], "bits": 16})
    v1 = HashIndex.load(old)
    assert v1.files == files[:5] and (v1.codes_for("both") == tiny_model.encode(thumbs, "both")).all()
    new = build_index([tmp_path / "f01"], old, IndexConfig(add=True))
    assert new.files == files and not (old / "index.npz").exists()
    assert (new.codes_for("both")[:5] == v1.codes_for("both")).all()

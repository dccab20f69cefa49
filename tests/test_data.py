import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from forensics.core.errors import UserError
from forensics.io.sources import builtin_patches, load_source, read_attributes, read_idx


def test_builtin_patches_are_deterministic_and_licensed():
    a, b = builtin_patches(32, n=50, seed=1), builtin_patches(32, n=50, seed=1)
    assert a.images.shape == (50, 32, 32, 3) and np.array_equal(a.images, b.images) and a.names == b.names
    assert not np.array_equal(a.images, builtin_patches(32, n=50, seed=2).images)
    full = builtin_patches(64)
    assert len(full) > 500 and full.manifest["licences"] == "data/real/SOURCES.md"
    grey = full.images.astype(float) @ [0.299, 0.587, 0.114]
    assert grey.reshape(len(full), -1).std(1).min() >= 4.0  # flat patches dropped
    assert all("@1/1" not in n for n in full.names if n.endswith(".jpg") or ".jpg@" in n)  # JPEGs only downscaled
    with pytest.raises(UserError, match="fewer than"):
        builtin_patches(128, n=10 ** 6)


def _write_idx(path, arr, gz=False):
    raw = bytes([0, 0, 8, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_source(tmp_path, gz):
    arr = np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8)
    p = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    _write_idx(p, arr, gz)
    assert np.array_equal(read_idx(p), arr)
    ds = load_source(str(p), 32, n=10, seed=0)
    assert ds.images.shape == (10, 32, 32, 3) and ds.manifest["kind"] == "idx"
    assert ds.manifest["policy"] == "resize:32:area"
    (tmp_path / "bad-ubyte").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(UserError, match="magic"):
        read_idx(tmp_path / "bad-ubyte")


def test_npz_source_float_and_uint8(tmp_path):
    x = np.random.default_rng(0).random((6, 16, 16, 3))
    np.savez(tmp_path / "a.npz", images=x * 2 - 1)  # [-1, 1]
    ds = load_source(str(tmp_path / "a.npz"), 16)
    assert np.array_equal(ds.images, np.clip(np.rint(x * 255), 0, 255).astype(np.uint8))
    np.savez(tmp_path / "b.npz", other=np.zeros((3, 16, 16), np.uint8), more=np.zeros(2))
    with pytest.raises(UserError, match="named 'images'"):
        load_source(str(tmp_path / "b.npz"), 16)


def test_celeba_layout_with_split_and_attributes(tmp_path):
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    for i, n in enumerate(names):
        Image.fromarray(np.full((218, 178, 3), 40 * i, np.uint8)).save(root / "img_align_celeba" / n)
    (root / "img_align_celeba" / "000099.jpg").write_text("broken")
    lines = [str(len(names) + 1), "Male Smiling Young"] + [f"{n} {'1' if i % 2 else '-1'}  -1 1" for i, n in enumerate(names)]
    lines.append("000099.jpg 1 1 1")
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text(
        "\n".join(f"{n} {0 if i < 4 else 2}" for i, n in enumerate(names)) + "\n000099.jpg 0\n")
    ds = load_source(str(root), 32, select_attrs=["Smiling", "Male"])
    assert ds.manifest["kind"] == "celeba" and ds.images.shape == (4, 32, 32, 3)  # train split, broken file skipped
    assert ds.attr_names == ["Smiling", "Male"] and ds.attrs.tolist() == [[0, 0], [0, 1], [0, 0], [0, 1]]
    assert ds.manifest["skipped"][0]["path"].endswith("000099.jpg")
    table, names2 = read_attributes(root / "list_attr_celeba.txt")
    assert names2 == ["Male", "Smiling", "Young"] and table["000002.jpg"].tolist() == [1, 0, 1]


def test_folder_source_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_source(str(tmp_path / "missing"), 32)
    (tmp_path / "e").mkdir()
    with pytest.raises(UserError, match="no images found"):
        load_source(str(tmp_path / "e"), 32)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.png").write_bytes(b"junk")
    with pytest.raises(UserError, match="none of the 1 images"):
        load_source(str(tmp_path / "b"), 32)


def test_one_source_resolver_for_images_at_their_own_size(tmp_path, monkeypatch, capsys):
    # builtin / builtin-wide / folders are told apart in one place (io.sources), for every verb that
    # takes images at their own sizes (attack references, estimator training, the hash index)
    from forensics.io.sources import builtin_photos, is_builtin, source_images

    whole = source_images("builtin")
    assert [im.shape for im in whole.images] == [p[1].shape for p in builtin_photos()] and len(whole.images) == 13
    assert len(source_images("builtin-wide").images) == 26
    cut = source_images("builtin", 32)
    ref = builtin_patches(32)
    assert np.array_equal(np.stack(cut.images), ref.images) and cut.names == ref.names
    assert set(cut.groups) == set(whole.names)  # each patch's group is its photograph
    (tmp_path / "builtin").mkdir()  # the name wins over a folder of that name; ./builtin is the folder
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(tmp_path / "builtin" / "a.png")
    (tmp_path / "builtin" / "bad.png").write_bytes(b"not a png")
    monkeypatch.chdir(tmp_path)
    assert is_builtin("builtin") and not is_builtin("./builtin") and not is_builtin(["builtin"])
    assert len(source_images("builtin").images) == 13
    folder = source_images("./builtin")
    assert [im.shape for im in folder.images] == [(40, 30, 3)] and folder.groups is None
    assert folder.names == ["builtin/a.png"] and folder.skipped[0]["path"] == "builtin/bad.png"
    assert "skipped builtin/bad.png" in capsys.readouterr().err


def test_comma_lists_are_parsed_one_way():
    from forensics.core.parsing import assignments, names, numbers

    assert names(" a, b,,c ") == ["a", "b", "c"] and names("") is None and names(None) is None
    assert numbers("0.5, 1,2", "blur strengths") == [0.5, 1.0, 2.0] and numbers("2,4", "k", int) == [2, 4]
    with pytest.raises(ValueError, match="blur strengths must be numbers separated by commas, got '1,x'"):
        numbers("1,x", "blur strengths")
    with pytest.raises(ValueError, match="cardinalities must be whole numbers"):
        numbers("2,2.5", "cardinalities", int)
    assert assignments("alpha=0.2,n=3,policy=cropping") == {"alpha": 0.2, "n": 3, "policy": "cropping"}
    assert assignments("spectrum=False,on=true,name=falsey") == {"spectrum": False, "on": True, "name": "falsey"}
    with pytest.raises(ValueError, match="--objective-params: 'alpha' is not NAME=VALUE"):
        assignments("alpha", "--objective-params")

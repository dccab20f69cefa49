"""The wild built-in photographs (data/build_real_wild.py): native-resolution crops behind ``builtin-all``,
leaving ``builtin`` and ``builtin-wide`` exactly as they were."""
import json
import shutil

import numpy as np
import pytest

from forensics.core.errors import UserError
from forensics.io.sources import builtin_patches, builtin_photos, data_dir, load_source, source_images


def _meta():
    return json.loads((data_dir() / "real" / "sources.json").read_text(encoding="utf-8"))


def test_builtin_all_adds_the_wild_crops_and_leaves_the_other_sources_alone():
    core, wide, every = builtin_photos(), builtin_photos(True), builtin_photos(True, True)
    assert (len(core), len(wide), len(every)) == (13, 26, 67)
    assert [p[0] for p in every[:26]] == [p[0] for p in wide]  # core and extra first, unchanged
    wild = every[26:]
    assert all(f.startswith("wild_") and enc == "png" for f, _, enc in wild)
    # native resolution: 512-px crops (448/480 where the photo's short side is smaller), not downscaled
    assert all(448 <= im.shape[0] == im.shape[1] <= 512 and im.shape[2] == 3 for _, im, _ in wild)
    assert sum(im.shape[0] == 512 for _, im, _ in wild) >= 35
    # builtin-wide patches are what they were; builtin-all's begin with them
    w, a = builtin_patches(32, extra=True), builtin_patches(32, extra=True, wild=True)
    assert a.manifest["source"] == "builtin-all" and w.manifest["source"] == "builtin-wide"
    np.testing.assert_array_equal(a.images[:len(w)], w.images)
    assert len(a) > len(w) + 5000
    assert len(load_source("builtin-all", 64, n=20, seed=3)) == 20


def test_every_wild_crop_names_its_original_and_licence():
    s = source_images("builtin-all")
    groups = dict(zip(s.names, s.groups, strict=True))
    assert groups["wild_tuxpaint_cliff.png"] == "tuxpaint-data/cliff.jpg"
    assert groups["wild_lxqt_valendas.png"] == "lxqt-themes/Valendas.png"
    assert groups["astronaut.png"] == "astronaut.png"
    assert len(set(s.groups)) == 67  # one group per photograph
    patches = source_images("builtin-all", 64)
    assert set(patches.groups) == set(s.groups)  # each patch's group is its source photograph
    md = (data_dir() / "real" / "SOURCES.md").read_text(encoding="utf-8")
    wild = [p for p in _meta()["photos"] if p.get("set") == "wild"]
    assert len(wild) == 41
    for p in wild:
        assert p["file"] in md and p["licence"] and p["author"] and len(p["original_sha256"]) == 64
        assert not any(r in p["source_package"] for r in ("plasma-workspace-wallpapers", "lomiri", "opencv-doc"))
    assert len({p["original_sha256"] for p in wild}) == 41  # no photo twice


def test_a_damaged_wild_crop_is_refused_only_by_builtin_all(tmp_path, monkeypatch):
    copy = tmp_path / "data"
    shutil.copytree(data_dir() / "real", copy / "real")
    (copy / "real" / "wild_scribus_br2_moon.png").write_bytes(b"not the photo")
    monkeypatch.setenv("FORENSICS_DATA", str(copy))
    builtin_photos.cache_clear()
    try:
        assert len(builtin_photos(True)) == 26  # builtin-wide does not read the wild files
        with pytest.raises(UserError, match="wild_scribus_br2_moon.png"):
            builtin_photos(True, True)
    finally:
        builtin_photos.cache_clear()

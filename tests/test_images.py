
from pathlib import Path

import numpy as np
import pytest
from conftest import write_bad_files
from PIL import Image

from forensics.core.errors import UserError
from forensics.io.images import Policy, decode, load_image, scan, scan_nonempty


def test_scan_is_recursive_sorted_and_filtered(tmp_path):
    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for p in ["z.png", "a.JPG", "b/c/d.webp", "b/e.tiff", "notes.txt", ".hidden/x.png", "b/f.bmp"]:
        (tmp_path / p).write_bytes(b"x")
    got = [str(p.relative_to(tmp_path)) for p in scan(tmp_path)]
    assert got == ["a.JPG", "b/c/d.webp", "b/e.tiff", "b/f.bmp", "z.png"]
    assert scan([tmp_path, tmp_path / "z.png"]) == scan(tmp_path)  # de-duplicated


def test_scan_errors_name_the_path(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        scan(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found"):
        scan_nonempty(tmp_path / "empty")


def _save(img: Image.Image, tmp_path, name, **kw):
    p = tmp_path / name
    img.save(p, **kw)
    return p


def test_modes_normalise_to_uint8_rgb(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    g = decode(_save(Image.fromarray(rgb[..., 0]), tmp_path, "g.png"))
    assert g.shape == (20, 30, 3) and g.dtype == np.uint8 and (g[..., 0] == rgb[..., 0]).all() and (g[..., 2] == g[..., 0]).all()
    rgba = np.dstack([rgb, np.full((20, 30), 255, np.uint8)])
    assert (decode(_save(Image.fromarray(rgba), tmp_path, "a.png")) == rgb).all()
    half = rgba.copy()
    half[..., 3] = 0  # fully transparent composites to black
    assert (decode(_save(Image.fromarray(half), tmp_path, "t.png")) == 0).all()
    pal = Image.fromarray(rgb).convert("P")
    assert (decode(_save(pal, tmp_path, "p.png")) == np.asarray(pal.convert("RGB"))).all()
    cmyk = decode(_save(Image.fromarray(rgb).convert("CMYK"), tmp_path, "c.jpg", quality=100))
    assert cmyk.shape == (20, 30, 3) and np.abs(cmyk.astype(int) - rgb).mean() < 12


def test_16_bit_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    out = decode(_save(Image.fromarray(a), tmp_path, "g16.png"))
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(np.zeros((10, 40, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    p = _save(img, tmp_path, "o.jpg", exif=exif.tobytes())
    assert decode(p).shape == (40, 10, 3)


def test_bad_files_give_reasons_not_exceptions(tmp_path):
    reasons = write_bad_files(tmp_path)
    for name, why in reasons.items():
        r = load_image(tmp_path / name)
        assert not r.ok and r.image is None
        assert why in r.error, (name, r.error)
    r = load_image(tmp_path / "bomb.png", max_pixels=10)
    assert "decompression bomb" in r.error


def test_own_pixel_limit(tmp_path):
    p = _save(Image.fromarray(np.zeros((50, 50, 3), np.uint8)), tmp_path, "big.png")
    assert "over the 1,000-pixel limit" in load_image(p, max_pixels=1000).error


def test_policy_parse_roundtrip_and_apply():
    for s in ["none", "crop:64", "resize:32:area", "resize:128:lanczos"]:
        assert str(Policy.parse(s)) == s
    assert str(Policy.parse("resize:32")) == "resize:32:area"
    for bad in ["crop", "resize:x", "resize:32:magic", "blur:3", "crop:32:area"]:
        with pytest.raises(UserError):
            Policy.parse(bad)
    img = np.arange(60 * 80 * 3, dtype=np.uint8).reshape(60, 80, 3)
    c = Policy.parse("crop:40").apply(img)
    assert c.shape == (40, 40, 3) and (c == img[10:50, 20:60]).all()
    r = Policy.parse("resize:30:area").apply(img)
    assert r.shape == (30, 30, 3)
    with pytest.raises(ValueError, match="smaller than"):
        Policy.parse("crop:100").apply(img)


def test_policy_error_is_per_file(tmp_path):
    p = _save(Image.fromarray(np.zeros((20, 20, 3), np.uint8)), tmp_path, "s.png")
    r = load_image(p, "crop:32")
    assert not r.ok and r.width == 20 and "smaller than the 32x32 crop" in r.error


def test_threaded_loading_leaves_warning_filters_alone(tmp_path):
    # Regression: each decoding thread used warnings.catch_warnings(), which races on the
    # process-wide filter list and left an "ignore every warning" filter installed.
    import warnings

    from forensics.io.images import iter_loaded

    for i in range(300):
        _save(Image.fromarray(np.full((8, 8, 3), i % 256, np.uint8)), tmp_path, f"{i:03d}.png")
    before = list(warnings.filters)
    for _ in range(3):
        assert sum(r.ok for r in iter_loaded(scan(tmp_path), workers=4)) == 300
    assert warnings.filters == before
    with pytest.warns(UserWarning, match="still shown"):
        warnings.warn("still shown", UserWarning)


@pytest.mark.parametrize("workers", [1, 3])
def test_prefetcher_submit_runs_after_queued_files_and_reports_errors(tmp_path, workers, monkeypatch):
    import forensics.io.images as images
    from forensics.io.images import Prefetcher

    for i in range(4):
        _save(Image.fromarray(np.full((8, 8, 3), i, np.uint8)), tmp_path, f"{i}.png")
    log = []
    real_load = images.load_image

    def logged_load(path, *a, **kw):
        log.append(Path(path).stem)
        return real_load(path, *a, **kw)

    monkeypatch.setattr(images, "load_image", logged_load)
    pf = Prefetcher(scan(tmp_path), workers=workers)
    it = iter(pf)
    first = [next(it) for _ in range(2)]

    def work(ims):
        log.append("work")
        return sum(int(im.image[0, 0, 0]) for im in ims)

    assert pf.submit(work, first).result() == 0 + 1
    # with a pool, the work waits behind every file queued before it; without one it runs at once
    assert log[:log.index("work")] == (["0", "1", "2", "3"] if workers > 1 else ["0", "1"])
    bad = pf.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        bad.result()
    assert [int(r.image[0, 0, 0]) for r in it] == [2, 3]

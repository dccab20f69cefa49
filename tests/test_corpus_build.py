"""The corpus builder (generators/corpus.py, `forensics build-corpus`): the tiny preset on three small photos."""
from __future__ import annotations

import io
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from forensics.core.errors import UserError
from forensics.generators.corpus import (
    CorpusConfig,
    build_corpus,
    draw_processing,
    load_photos,
    parse_processing,
    plan_corpus,
)
from forensics.io.corpus import read_manifest
from forensics.io.images import decode, scan
from forensics.io.processing import jpeg_bytes
from forensics.io.sources import builtin_patches, builtin_photos

PROCESSING = re.compile(r"^(none|jpeg\d+|resize0\.\d+(\+jpeg\d+)?)$")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    photos = root / "photos"
    photos.mkdir()
    ims = {f: im for f, im, _ in builtin_photos()}
    Image.fromarray(ims["astronaut.png"][:200, :150]).save(photos / "astro.png")
    Image.fromarray(ims["coffee.png"][100:280, 50:270]).save(photos / "coffee.png")
    Image.fromarray(ims["chelsea.png"][:160, :160]).save(photos / "cat.jpg", quality=92)
    train = root / "train.npz"
    np.savez(train, images=builtin_patches(32, n=64, seed=0).images)
    cfg = CorpusConfig.tiny(real=(str(photos),), train_data=str(train), crops_per_photo=3, full_photos=True,
                            kinds=("up", "ae", "gan", "ddpm", "ldm"), n_up=3, n_gan=5)
    out = root / "out"
    summary = build_corpus(cfg, out, progress=False)
    return cfg, out, summary


def test_the_manifest_lists_every_image_file_and_only_existing_ones(built):
    _, out, summary = built
    corpus = read_manifest(out)
    listed = {e.path for e in corpus.entries}
    on_disk = {str(p.relative_to(out)) for p in scan(out)}  # (the cached runs in .runs/ are hidden)
    assert listed == on_disk
    assert len(listed) == len(corpus) == summary["images"]
    assert all(corpus.file(e).stat().st_size > 0 for e in corpus.entries)
    assert (out / ".runs").is_dir() and any((out / ".runs").iterdir())


def test_families_groups_and_processing_follow_the_plan(built):
    cfg, out, _ = built
    corpus = read_manifest(out)
    photos, _ = load_photos(cfg)
    groups = {p.group for p in photos}
    full = {p.image.shape[:2] for p in photos}
    items = {it.entry.path: it for its in plan_corpus(cfg, photos).values() for it in its}
    assert groups == {"photos/astro.png", "photos/coffee.png", "photos/cat.jpg"}
    assert corpus.families() == cfg.families()
    assert set(cfg.families()) == {"up:N-x2", "up:baseline-x8", "up:bicubic-x2", "ae-kl:N.1.3", "ae-vq:baseline",
                                   "gan-dcgan:baseline", "ddpm:baseline", "ldm:Z.1.5"}
    by = Counter(e.family for e in corpus.entries)
    assert by["real"] == 3 * 3 + 3 and by["up:N-x2"] == 3 and by["ae-kl:N.1.3"] == 2 and by["gan-dcgan:baseline"] == 5
    lo, hi = cfg.jpeg_quality
    for e in corpus.entries:
        assert PROCESSING.match(e.processing), e
        for kind, v in parse_processing(e.processing):
            assert lo <= v <= hi if kind == "jpeg" else cfg.resize_factor[0] <= v <= cfg.resize_factor[1]
        kind = e.family.split(":")[0]
        if kind in ("real", "up", "ae-kl", "ae-vq"):
            assert e.group in groups, e
        else:
            assert e.group == "-", e
        it = items[e.path]
        h, w = (32, 32) if it.crop is None else (it.crop.h, it.crop.w)  # the size as made
        if it.crop is not None and (h, w) not in full:  # crops, and the fakes made from them, at the crop's size
            assert 64 <= h <= 96 and 64 <= w <= 96 and h % 8 == 0 and w % 8 == 0, e
        s = dict(parse_processing(e.processing)).get("resize", 1.0)
        assert decode(corpus.file(e)).shape == (round(h * s), round(w * s), 3), e


def test_content_aligned_fakes_share_their_photos_group_and_content(built):
    cfg, out, _ = built
    photos, _ = load_photos(cfg)
    plan = plan_corpus(cfg, photos)
    for fam in ("up:N-x2", "up:baseline-x8", "up:bicubic-x2", "ae-kl:N.1.3", "ae-vq:baseline"):
        for it in plan[fam]:
            assert it.entry.group == photos[it.crop.photo].group
    # a bicubic upscale of the area-downscaled crop stays close to the crop itself (PSNR > 20 dB)
    checked = 0
    for it in plan["up:bicubic-x2"] + plan["real"]:
        if it.entry.processing != "none":
            continue
        c = it.crop
        ref = photos[c.photo].image[c.y:c.y + c.h, c.x:c.x + c.w].astype(float)
        got = decode(out / it.entry.path).astype(float)
        assert got.shape == ref.shape
        mse = ((got - ref) ** 2).mean()
        if it.entry.family == "real":
            assert mse == 0  # a real crop unprocessed is the photograph's pixels
        else:
            assert 10 * np.log10(255 ** 2 / max(mse, 1e-9)) > 20
        checked += 1
    assert checked >= 2


def test_reals_and_fakes_share_the_processing_distribution():
    """The default build's plan (no pixels made): each processing kind's share is alike for both classes, and
    nothing is upscaled."""
    cfg = CorpusConfig.default()
    photos, _ = load_photos(cfg)
    plan = plan_corpus(cfg, photos)
    entries = [it.entry for items in plan.values() for it in items]
    kind = lambda p: "+".join(k for k, _ in parse_processing(p)) or "none"
    shares = {}
    for label in (0, 1):
        c = Counter(kind(e.processing) for e in entries if e.label == label)
        n = sum(c.values())
        shares[label] = {k: c[k] / n for k in ("none", "jpeg", "resize", "resize+jpeg")}
    assert len([e for e in entries if e.label == 0]) >= 200 and len(entries) > 900
    for k in shares[0]:
        assert abs(shares[0][k] - shares[1][k]) < 0.08, (k, shares)
    assert 0.4 < shares[0]["none"] < 0.6 and min(shares[0].values()) > 0.1
    assert all(v < 1 for e in entries for k, v in parse_processing(e.processing) if k == "resize")
    # the draw depends on the seed and the image's key only, not on its class
    assert draw_processing(cfg, "x/1", (256, 256)) == draw_processing(cfg, "x/1", (256, 256))
    assert {draw_processing(cfg.replace(seed=s), "x/1", (256, 256)) for s in range(40)} >= {"none"}
    # a downscale never brings an image under 32 px
    small = [draw_processing(cfg, f"gan/{i}", (32, 32)) for i in range(300)]
    assert not any("resize" in p for p in small) and any("jpeg" in p for p in small)


def test_jpeg_entries_are_jpeg_files_at_their_quality(built):
    _, out, _ = built
    corpus = read_manifest(out)
    jpegs = [e for e in corpus.entries if e.processing.endswith(tuple(f"jpeg{q}" for q in range(101)))]
    assert jpegs and len(jpegs) < len(corpus)
    for e in corpus.entries:
        head = corpus.file(e).read_bytes()[:8]
        if e in jpegs:
            q = int(e.processing.rsplit("jpeg", 1)[1])
            assert e.path.endswith(".jpg") and head[:3] == b"\xff\xd8\xff", e
            with Image.open(corpus.file(e)) as im:
                assert im.format == "JPEG"
                tables = im.quantization
            ref = jpeg_bytes(np.zeros((16, 16, 3), np.uint8), q)
            with Image.open(io.BytesIO(ref)) as r:
                assert tables == r.quantization, e  # encoded at exactly that quality
        else:
            assert e.path.endswith(".png") and head == b"\x89PNG\r\n\x1a\n", e


def test_a_rerun_resumes_without_rewriting_and_remakes_lost_images_identically(built):
    cfg, out, _ = built
    files = {p: p.stat().st_mtime_ns for p in scan(out)}
    again = build_corpus(cfg, out, progress=False)
    assert again["written"] == {} and again["resumed"]
    assert {p: p.stat().st_mtime_ns for p in scan(out)} == files
    corpus = read_manifest(out)
    lost = {}
    for fam in ("real", "up:baseline-x8", "ae-vq:baseline", "gan-dcgan:baseline", "ldm:Z.1.5"):
        e = next(e for e in corpus.entries if e.family == fam)
        lost[e.path] = corpus.file(e).read_bytes()
        corpus.file(e).unlink()
    third = build_corpus(cfg, out, progress=False)
    assert sum(third["written"].values()) == len(lost)
    for path, data in lost.items():
        assert (out / path).read_bytes() == data, path  # deterministic: the same bytes again
    assert {p: p.stat().st_mtime_ns for p in scan(out) if str(p.relative_to(out)) not in lost} == {
        p: t for p, t in files.items() if str(p.relative_to(out)) not in lost}


def test_other_settings_or_a_foreign_folder_are_refused(built, tmp_path):
    cfg, out, _ = built
    with pytest.raises(UserError, match="other settings.*seed"):
        build_corpus(cfg.replace(seed=1), out, progress=False)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        build_corpus(cfg, tmp_path, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine" and len(list(tmp_path.iterdir())) == 1


def test_unreadable_and_tiny_photos_are_skipped_with_a_reason(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(builtin_photos()[0][1][:100, :120]).save(folder / "good.png")
    Image.fromarray(builtin_photos()[0][1][:20, :200]).save(folder / "strip.png")  # too small for any detector
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning) as w:
        photos, skipped = load_photos(CorpusConfig.tiny(real=(str(folder),)))
    assert [p.group for p in photos] == ["photos/good.png"]
    reasons = {s["path"].rsplit("/", 1)[-1]: s["error"] for s in skipped}
    assert set(reasons) == {"broken.jpg", "strip.png"} and "smaller than 32 px" in reasons["strip.png"]
    assert len(w) == 1 and "strip.png" in str(w[0].message)
    with pytest.raises(UserError, match="none of the 1 images could be used"):
        load_photos(CorpusConfig.tiny(real=(str(tmp_path / "photos" / "broken.jpg"),)))


def test_config_checks():
    with pytest.raises(ValueError, match="unknown family kind"):
        CorpusConfig.tiny(kinds=("up", "vae"))
    with pytest.raises(ValueError, match="bad GAN family"):
        CorpusConfig.tiny(gans=("gan-nope:baseline",))
    with pytest.raises(ValueError, match="bad resampling family"):
        CorpusConfig.tiny(up=("up:N-x3",))
    with pytest.raises(ValueError, match="smallest first"):
        CorpusConfig.tiny(crop_size=(256, 128))
    c = CorpusConfig.tiny(gans=("gan-infomax@w4a4:n.1.5",), autoencoders=("ae-kl-f4:N.1.3",))
    assert c.gans == ("gan-infomax@w4a4:N.1.5",) and c.autoencoders == ("ae-kl:N.1.3",)
    assert CorpusConfig.from_dict(c.to_dict(), complete=True) == c


def test_cli_builds_a_corpus_and_refuses_bad_families(tmp_path, capsys):
    from forensics.cli.main import main

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(builtin_photos()[0][1][:128, :128]).save(photos / "a.png")
    out = tmp_path / "c"
    assert main(["build-corpus", "--out", str(out), "--preset", "tiny", "--real", str(photos), "--families", "up",
                 "--seed", "3"]) == 0
    corpus = read_manifest(out)
    assert {e.family.split(":")[0] for e in corpus.entries} == {"real", "up"} and len(corpus) == 1 + 3 * 2
    assert "7 images" in capsys.readouterr().err
    assert main(["build-corpus", "--out", str(tmp_path / "d"), "--preset", "tiny", "--families", "up,gans"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("forensics: error:") and "gans" in err and len(err.strip().splitlines()) == 1


def test_a_blur_share_leaves_the_other_draws_alone_and_reaches_both_classes():
    """``blur_sigma`` adds a fourth share (``blurS``, ``blurS+jpegQ``) drawn alike for reals and fakes; images
    it does not blur keep the processing they have without it (the streams stay aligned); a blurred image
    file is the blurred pixels."""
    from forensics.generators.corpus import processed_file
    from forensics.io.processing import perturb

    cfg = CorpusConfig.default()
    blurred = cfg.replace(blur_sigma=(0.3, 1.2))
    keys = [f"{fam}/{i}" for fam in ("real", "up:N-x2", "gan-dcgan:baseline") for i in range(400)]
    a = [draw_processing(cfg, k, (256, 256)) for k in keys]
    b = [draw_processing(blurred, k, (256, 256)) for k in keys]
    blur = [p for p in b if p.startswith("blur")]
    assert 0.08 < len(blur) / len(b) < 0.2  # a quarter of the processed half
    assert all(0.3 <= parse_processing(p)[0][1] <= 1.2 for p in blur)
    assert any("+jpeg" in p for p in blur) and any("+" not in p for p in blur)
    for label in ("real", "gan-dcgan:baseline"):
        share = np.mean([p.startswith("blur") for k, p in zip(keys, b) if k.startswith(label)])
        assert 0.05 < share < 0.25, (label, share)
    # what is not blurred keeps its draw only where the kind share maps the same way: the none share does
    assert all(x == "none" for x, y in zip(a, b) if y == "none")
    with pytest.raises(ValueError, match="blur_sigma"):
        cfg.replace(blur_sigma=(1.0, 0.5))
    im = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    got = np.asarray(Image.open(io.BytesIO(processed_file(im, "blur0.8"))).convert("RGB"))
    assert np.array_equal(got, perturb([im], "blur", 0.8)[0])

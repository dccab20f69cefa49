"""A corpus of hostile inputs for the ``forensics`` command, and its runner.

``cases(root)`` lists the cases (pure: no files written), ``materialise(root)`` writes their
inputs under ``root``; ``run_case(case)`` runs one through ``forensics.cli.main`` in-process
(or in a subprocess where it needs a resource limit) and classifies the outcome:

``ok``         the promise held: a correct row, or one ``forensics: error:`` line (exit 2);
``traceback``  an exception escaped (or a Python traceback was printed);
``wrong``      no traceback, but the wrong outcome (no row, wrong reason, exit 0 on an error, ...);
``lost``       a file that existed before the run (a previous output) was changed or removed.

``expect`` is ``row``, ``rows``, ``error`` or ``done`` (exit 0, nothing else checked); ``absent``,
``count`` and ``unsaid`` add checks of what the run wrote (or named) on top of any of them.

Run it as a script to build a corpus and print the counts per class (used for the before/after
figures: run it with ``PYTHONPATH`` pointing at another checkout to measure that code)::

    python tests/hostile/build_corpus.py /tmp/corpus [--json counts.json]
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import socket
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("FORENSICS_PROGRESS", "0")


@dataclass
class Case:
    name: str
    cls: str  # issue 12's class: images, names, filesystem, models, data, arguments, outputs
    argv: list  # forensics arguments (str, or bytes for non-UTF-8 paths)
    expect: str  # "row" (a row for `target` with label/reason), "error" (one line, exit 2), "rows" (exit 0)
    target: str | bytes | None = None  # the file whose row is checked (path relative to root)
    reason: str | None = None  # substring of the row's error, or of the error line; None: scored
    out: str | None = None  # output file (detect) or folder (spectrum) holding the rows
    protect: list = field(default_factory=list)  # files that must be unchanged after the run
    n_rows: int | None = None  # expected number of rows (None: not checked)
    subprocess: str | None = None  # "fsize": run in a subprocess under a 4 kB file-size limit
    needs: str | None = None  # "nonroot" / "chattr": skipped where unavailable
    absent: list = field(default_factory=list)  # paths that must not exist after the run (nothing written)
    count: tuple | None = None  # (folder, glob, n): the folder must then hold exactly n such files
    unsaid: str | None = None  # text stderr must not contain (e.g. a file that was never written)


# ------------------------------------------------------------------------- file makers
def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _raw_png(w, h, idat=b"\0" * 100):
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(idat)) + _png_chunk(b"IEND", b""))


def _noise(h=64, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, img, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(path, **kw)


def _bytes_of(img: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, format=fmt, **kw)
    return b.getvalue()


def _float_tiff(values: np.ndarray) -> bytes:
    return _bytes_of(Image.fromarray(values.astype(np.float32), mode="F"), "TIFF")


def _exif_jpeg(orientation=6, corrupt=False) -> bytes:
    im = Image.fromarray(_noise(48, 64, 3))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _bytes_of(im, "JPEG", exif=exif.tobytes())
    if corrupt:  # claim 50 IFD entries in a block holding one: pixels intact, EXIF broken (Pillow warns)
        i = data.index(b"Exif\0\0") + 6 + 8
        data = data[:i] + b"\x32\x00" + data[i + 2:]
    return data


def _image_files() -> dict[str, tuple[bytes | None, str | None]]:
    """name -> (content, expected reason substring or None for 'scored')."""
    png = _bytes_of(Image.fromarray(_noise()), "PNG")
    jpg = _bytes_of(Image.fromarray(_noise()), "JPEG", quality=90)
    tif = _bytes_of(Image.fromarray(_noise()), "TIFF")
    webp = _bytes_of(Image.fromarray(_noise()), "WEBP")
    f = np.random.default_rng(1).random((64, 64))
    nan = f.copy(); nan[3, 4] = np.nan  # noqa: E702
    inf = f.copy(); inf[10, 10] = np.inf  # noqa: E702
    ninf = f.copy(); ninf[0, 0] = -np.inf  # noqa: E702
    p_t = Image.fromarray(_noise()).convert("P")
    p_t.info["transparency"] = 0
    frames = [Image.fromarray(_noise(seed=i)) for i in range(3)]
    multi = io.BytesIO()
    frames[0].save(multi, format="TIFF", save_all=True, append_images=frames[1:])
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0xFF  # inside IHDR's CRC
    i16 = Image.fromarray((np.random.default_rng(2).random((64, 64)) * 65535).astype(np.uint16))
    i32 = Image.fromarray((np.random.default_rng(3).random((64, 64)) * 1e6).astype(np.int32), mode="I")
    return {
        "empty.png": (b"", "empty file"),
        "text.jpg": (b"not an image\n", "not a recognised image"),
        "random.jpg": (np.random.default_rng(4).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not a recognised"),
        "truncated.png": (png[: len(png) // 2], "truncated or corrupt"),
        "truncated.jpg": (jpg[: len(jpg) // 3], "truncated"),
        "truncated.tif": (tif[: len(tif) // 2], ""),
        "truncated.webp": (webp[: len(webp) // 2], ""),
        "soi_only.jpg": (b"\xff\xd8", ""),
        "signature_only.png": (b"\x89PNG\r\n\x1a\n", ""),
        "bad_crc.png": (bytes(bad_crc), ""),
        "bomb.png": (_raw_png(60000, 60000), "decompression bomb"),
        "zero_width.png": (_raw_png(0, 16), ""),
        "nan.tif": (_float_tiff(nan), "non-finite"),
        "inf.tif": (_float_tiff(inf), "non-finite"),
        "neg_inf.tif": (_float_tiff(ninf), "non-finite"),
        "all_nan.tif": (_float_tiff(np.full((64, 64), np.nan)), "non-finite"),
        "float_ok.tif": (_float_tiff(f), None),
        "float_hdr.tif": (_float_tiff(f * 1000), None),
        "float_negative.tif": (_float_tiff(f - 0.5), None),
        "one_pixel.png": (_bytes_of(Image.fromarray(_noise(1, 1)), "PNG"), "needs at least"),
        "eight.png": (_bytes_of(Image.fromarray(_noise(8, 8)), "PNG"), "needs at least"),
        "line_500x1.png": (_bytes_of(Image.fromarray(_noise(1, 500)), "PNG"), "needs at least"),
        "column_1x500.png": (_bytes_of(Image.fromarray(_noise(500, 1)), "PNG"), "needs at least"),
        "sixteen_bit.png": (_bytes_of(i16, "PNG"), None),
        "int32.tif": (_bytes_of(i32, "TIFF"), None),
        "grey.png": (_bytes_of(Image.fromarray(_noise()[..., 0]), "PNG"), None),
        "grey_alpha.png": (_bytes_of(Image.fromarray(_noise()[..., :2].copy(), mode="LA"), "PNG"), None),
        "rgba.png": (_bytes_of(Image.fromarray(np.dstack([_noise(), _noise(seed=5)[..., :1]])), "PNG"), None),
        "palette.png": (_bytes_of(Image.fromarray(_noise()).convert("P"), "PNG"), None),
        "palette_transparent.png": (_bytes_of(p_t, "PNG"), None),
        "cmyk.jpg": (_bytes_of(Image.fromarray(_noise()).convert("CMYK"), "JPEG"), None),
        "one_bit.png": (_bytes_of(Image.fromarray(_noise()[..., 0] > 127), "PNG"), None),
        "exif_rotated.jpg": (_exif_jpeg(6), None),
        "exif_corrupt.jpg": (_exif_jpeg(1, corrupt=True), None),
        "webp.webp": (webp, None),
        "bitmap.bmp": (_bytes_of(Image.fromarray(_noise()), "BMP"), None),
        "gif_named.png": (_bytes_of(Image.fromarray(_noise()).convert("P"), "GIF"), None),
        "multi_frame.tif": (multi.getvalue(), None),
        "upper_case.PNG": (png, None),
        "jpeg_named.png": (jpg, None),
    }


NAMES = {  # file name (bytes: exact) -> expected printable path ending
    "non_utf8": (b"caf\xe9_\xff.png", "caf\\xe9_\\xff.png"),
    "newline": (b"two\nlines.png", "two\nlines.png"),
    "comma_quote": (b'a,"b".png', 'a,"b".png'),
    "leading_dash": (b"-rf.png", "-rf.png"),
    "unicode": ("ü日本🙂.png".encode(), "ü日本🙂.png"),
    "spaces": (b"  spaced  name .png", "  spaced  name .png"),
    "long_255": (b"n" * 251 + b".png", "n" * 251 + ".png"),
    "backslash": (b"back\\slash.png", "back\\slash.png"),
    "tab": (b"tab\there.png", "tab\there.png"),
    "formula": (b"=cmd()+1.png", "=cmd()+1.png"),
}


def cases(root) -> list[Case]:
    from forensics.detectors.store import default_model_dir

    root = Path(root)
    r = lambda *p: str(root.joinpath(*p))  # noqa: E731
    out = []
    # --- images: one folder per file, one detect each
    for name, (_, reason) in _image_files().items():
        stem = name.replace(".", "_")
        out.append(Case(f"image/{name}", "images", ["detect", r("img", stem), "--out", r("out", f"img_{stem}.csv")],
                        "row", f"img/{stem}/{name}", reason, r("out", f"img_{stem}.csv"), n_rows=1))
    # --- names, to CSV and (for the non-UTF-8 one) to JSON and spectrum
    for key, (raw, shown) in NAMES.items():
        out.append(Case(f"name/{key}", "names", ["detect", r("names", key), "--out", r("out", f"name_{key}.csv")],
                        "row", f"names/{key}/" + shown, None, r("out", f"name_{key}.csv"), n_rows=1))
    out.append(Case("name/non_utf8_json", "names", ["detect", r("names", "non_utf8"), "--out", r("out", "nu.json")],
                    "row", "names/non_utf8/" + NAMES["non_utf8"][1], None, r("out", "nu.json"), n_rows=1))
    out.append(Case("name/non_utf8_spectrum", "names", ["spectrum", r("names", "non_utf8"), "--out", r("out", "nu_spec")],
                    "row", "names/non_utf8/" + NAMES["non_utf8"][1], None, r("out", "nu_spec"), n_rows=1))
    out.append(Case("name/non_utf8_folder", "names", ["detect", r("names", "dir_non_utf8"), "--out", r("out", "nud.csv")],
                    "row", "names/dir_non_utf8/d\\xff/x.png", None, r("out", "nud.csv"), n_rows=1))
    out.append(Case("name/hidden_skipped", "names", ["detect", r("names", "hidden"), "--out", r("out", "hidden.csv")],
                    "row", "names/hidden/seen.png", None, r("out", "hidden.csv"), n_rows=1))
    # --- file-system oddities
    fs = [("broken_link", "broken symbolic link"), ("link_loop", "symbolic link loop"),
          ("link_pair_loop", "symbolic link loop"), ("fifo", "named pipe"), ("device", "character device"),
          ("socket", "socket"), ("link_to_file", None), ("dangling_in_subdir", "broken symbolic link")]
    for key, reason in fs:
        out.append(Case(f"fs/{key}", "filesystem", ["detect", r("fs", key), "--out", r("out", f"fs_{key}.csv")],
                        "row", f"fs/{key}/x.png" if key != "dangling_in_subdir" else f"fs/{key}/sub/x.png",
                        reason, r("out", f"fs_{key}.csv"), n_rows=1))
    for key, reason in (("broken_link", "broken symbolic link"), ("fifo", "named pipe"), ("device", "character device")):
        out.append(Case(f"fs/direct_{key}", "filesystem", ["detect", r("fs", key, "x.png"), "--out",
                                                           r("out", f"fsd_{key}.csv")],
                        "row", f"fs/{key}/x.png", reason, r("out", f"fsd_{key}.csv"), n_rows=1))
    out += [
        Case("fs/dir_loop", "filesystem", ["detect", r("fs", "dir_loop"), "--out", r("out", "fs_dir_loop.csv")],
             "row", "fs/dir_loop/x.png", None, r("out", "fs_dir_loop.csv"), n_rows=1),
        Case("fs/folder_named_png", "filesystem", ["detect", r("fs", "folder_png"), "--out", r("out", "fs_fp.csv")],
             "row", "fs/folder_png/x.png/inner.png", None, r("out", "fs_fp.csv"), n_rows=1),
        Case("fs/deep_1200", "filesystem", ["detect", r("fs", "deep"), "--out", r("out", "fs_deep.csv")],
             "rows", n_rows=1, out=r("out", "fs_deep.csv")),
        Case("fs/missing_path", "filesystem", ["detect", r("fs", "nope"), "--out", r("out", "x.csv")],
             "error", reason="no such file"),
        Case("fs/no_images", "filesystem", ["detect", r("fs", "no_images"), "--out", r("out", "x.csv")],
             "error", reason="no images found"),
        Case("fs/unreadable_file", "filesystem", ["detect", r("fs", "unreadable"), "--out", r("out", "fs_u.csv")],
             "row", "fs/unreadable/x.png", "permission denied", r("out", "fs_u.csv"), needs="nonroot"),
        Case("fs/unsearchable_folder", "filesystem", ["detect", r("fs", "unsearchable"), "--out",
                                                      r("out", "fs_us.csv")],
             "row", "fs/unsearchable/locked", "cannot be searched", r("out", "fs_us.csv"), needs="nonroot"),
    ]
    # --- tampered model folders
    for key, reason in MODEL_CASES.items():
        out.append(Case(f"model/{key}", "models", ["detect", r("good"), "--model", r("models", key), "--out",
                                                   r("out", "prev.csv")], "error", reason=reason,
                        protect=[r("out", "prev.csv")]))
    # --- data sources (train-gan loads them before anything else)
    for key, (_, reason) in DATA_CASES.items():
        out.append(Case(f"data/{key}", "data", ["train-gan", "--gan", "dcgan", "--data", r("data", key), "--size", "32",
                                                "--steps", "1", "--preset", "tiny", "--out", r("out", f"gan_{key}")],
                        "error", reason=reason))
    # --- argument values
    g = r("good")
    args = [
        ("detect_resize_0", ["detect", g, "--preprocess", "resize:0", "--out", r("out", "a.csv")], "bad preprocessing"),
        ("detect_resize_huge", ["detect", g, "--preprocess", "resize:99999999", "--out", r("out", "a.csv")], "bad preprocessing"),
        ("detect_crop_text", ["detect", g, "--preprocess", "crop:abc", "--out", r("out", "a.csv")], "bad preprocessing"),
        ("detect_filter", ["detect", g, "--preprocess", "resize:64:foo", "--out", r("out", "a.csv")], "unknown resize filter"),
        ("detect_suffix", ["detect", g, "--out", r("out", "a.txt")], ".csv or .json"),
        ("detect_device", ["detect", g, "--device", "tpu", "--out", r("out", "a.csv")], "unknown device"),
        ("detect_cuda_missing", ["detect", g, "--device", "cuda", "--model", str(default_model_dir().parent / "durall-lr"),
                                 "--out", r("out", "a.csv")], "CUDA"),
        ("detect_scheduler_empty", ["detect", g, "--scheduler", "", "--out", r("out", "a.csv")], "scheduler"),
        ("detect_scheduler_zero", ["detect", g, "--scheduler", "local:0", "--out", r("out", "a.csv")], "local:N"),
        ("detect_scheduler_word", ["detect", g, "--scheduler", "bogus", "--out", r("out", "a.csv")], "scheduler"),
        ("spectrum_crop_4", ["spectrum", g, "--preprocess", "crop:4", "--out", r("out", "sp_a")], "bad preprocessing"),
        ("spectrum_device", ["spectrum", g, "--device", "gpu0", "--out", r("out", "sp_b")], "unknown device"),
        ("train_fraction_0", _td(r, "--test-fraction", "0"), "test fraction"),
        ("train_fraction_1", _td(r, "--test-fraction", "1"), "test fraction"),
        ("train_fraction_nan", _td(r, "--test-fraction", "nan"), "test fraction"),
        ("train_fraction_neg", _td(r, "--test-fraction", "-0.5"), "test fraction"),
        ("train_fpr_neg", _td(r, "--target-fpr", "-0.1"), "false-positive"),
        ("train_fpr_nan", _td(r, "--target-fpr", "nan"), "false-positive"),
        ("train_fpr_2", _td(r, "--target-fpr", "2"), "false-positive"),
        ("train_patch_0", _td(r, "--patch-size", "0"), "patch size"),
        ("train_patch_huge", _td(r, "--patch-size", "100000"), "patch size"),
        ("train_seed_neg", _td(r, "--seed", "-1"), "seed"),
        ("train_seed_huge", _td(r, "--seed", str(2 ** 70)), "seed"),
        ("train_detector_name", ["train-detector", "--real", r("good"), "--fake", r("good"), "--detector", "bogus",
                                 "--out", r("out", "m_bogus")], "unknown detector"),
        ("train_one_per_class", ["train-detector", "--real", r("one", "real"), "--fake", r("one", "fake"),
                                 "--detector", "dzanic-lr", "--out", r("out", "m_one")], "at least 2"),
        ("train_fake_missing", ["train-detector", "--real", r("good"), "--fake", r("nope"), "--detector", "dzanic-lr",
                                "--out", r("out", "m_nf")], "no such file"),
        ("resume_other_model", ["detect", g, "--resume", "--out", r("resume", "other.csv")], "other settings"),
        ("resume_garbled_partial", ["detect", g, "--resume", "--out", r("resume", "garbled.csv")], "partial scan"),
    ]
    for key, flags, reason in [("batch_0", ["--batch", "0"], "--batch must be at least 1"),
                               ("batch_negative", ["--batch", "-3"], "--batch must be at least 1"),
                               ("size_8", ["--size", "8"], "--size must be at least 16"),
                               ("steps_negative", ["--steps", "-1"], "--steps must be at least 0"),
                               ("sample_every_0", ["--sample-every", "0"], "--sample-every"),
                               ("n_images_0", ["--n-images", "0"], "--n-images"),
                               ("seed_negative", ["--seed", "-1"], "--seed"),
                               ("objective_weight_negative", ["--objective", "infomax", "--objective-params",
                                                              "alpha=-1"], "objective_params.alpha")]:
        args.append((f"gan_{key}", _gan_flags(r, 1) + flags + ["--out", r("out", f"gan_{key}")], reason))
    for key, argv, reason in args:
        out.append(Case(f"args/{key}", "arguments", argv, "error", reason=reason))
    out.append(Case("args/partial_without_resume", "arguments", ["detect", g, "--out", r("resume", "other.csv")],
                    "error", reason="interrupted scan", protect=[r("resume", "other.csv.partial")]))
    # --- output faults: a previous output must survive
    prev = r("out", "prev.csv")
    outs = [
        ("detect_out_is_folder", ["detect", g, "--out", r("faults", "folder.csv")], "is a folder"),
        ("detect_parent_is_file", ["detect", g, "--out", r("faults", "file", "x.csv")], "is a file"),
        ("detect_out_is_fifo", ["detect", g, "--out", r("faults", "pipe.csv")], "not a regular file"),
        ("detect_sys", ["detect", g, "--out", "/sys/forensics-hostile/x.csv"], "cannot write"),
        ("spectrum_out_is_file", ["spectrum", g, "--out", r("faults", "file")], "not a folder"),
        ("spectrum_parent_is_file", ["spectrum", g, "--out", r("faults", "file", "sub")], "is a file"),
        ("train_out_is_file", ["train-detector", "--real", g, "--fake", g, "--detector", "dzanic-lr",
                               "--out", r("faults", "file")], "not a folder"),
    ]
    for key, argv, reason in outs:
        out.append(Case(f"output/{key}", "outputs", argv, "error", reason=reason, protect=[prev, r("faults", "file")]))
    out += [
        Case("output/detect_readonly", "outputs", ["detect", g, "--out", r("faults", "ro", "x.csv")], "error",
             reason="cannot write", protect=[r("faults", "ro", "x.csv")], needs="chattr"),
        Case("output/spectrum_readonly", "outputs", ["spectrum", g, "--out", r("faults", "ro")], "error",
             reason="cannot write", protect=[r("faults", "ro", "x.csv")], needs="chattr"),
        Case("output/detect_disk_full", "outputs", ["detect", r("many"), "--out", r("faults", "full", "prev.csv")],
             "error", reason="cannot write", protect=[r("faults", "full", "prev.csv")], subprocess="fsize"),
        Case("output/spectrum_disk_full", "outputs", ["spectrum", r("many"), "--out", r("faults", "full_spec")],
             "error", reason="cannot write", protect=[r("faults", "full_spec", "features.csv")], subprocess="fsize"),
        Case("output/bad_model_keeps_previous", "outputs", ["detect", g, "--model", r("models", "json_list"),
                                                            "--out", prev], "error", reason="JSON object",
             protect=[prev]),
    ]
    out += _verb_cases(r)
    return out


#: a tiny GAN run (trained in ``materialise``): ``train-gan`` flags, ``--out`` and ``--resume`` added per case
def _gan_flags(r, steps: int) -> list:
    return ["train-gan", "--gan", "dcgan", "--data", r("runs", "tiny.npz"), "--size", "32", "--steps", str(steps),
            "--preset", "tiny", "--batch", "4", "--sample-every", "1", "--checkpoint-every", "1"]


RUN_CASES = {  # damaged copy of the good run -> (expected reason, also tried with generate)
    "cfg_invalid": ("not a readable JSON", True), "cfg_list": ("JSON object", True),
    "cfg_wrong_types": ("size", True), "cfg_other_size": ("", True),
    "cfg_z_dim_text": ("params.z_dim must be a whole number", True), "cfg_no_gan": ("missing setting(s) gan", True),
    "cfg_batch_zero": ("params.batch must be at least 1", True),
    "ckpt_garbage": ("not a readable forensics checkpoint", True),
    "ckpt_meta_not_json": ("not a readable forensics checkpoint", True),
    "ckpt_step_text": ("damaged checkpoint", True), "ckpt_step_list": ("damaged checkpoint", True),
    "ckpt_modules_list": ("damaged checkpoint", True), "ckpt_no_sampler": ("damaged checkpoint", False),
    "ckpt_fixed_number": ("damaged checkpoint", False), "ckpt_gen_text": ("damaged checkpoint", False),
    "log_binary": ("damaged training log", False), "log_no_step": ("damaged training log", False),
    "log_text_values": ("damaged training log", False),
}


def _verb_cases(r) -> list[Case]:
    """attack, spectrum, generate, counterexample and train-gan run folders."""
    out = []
    run_files = ["config.json", "checkpoint.safetensors", "log.csv"]
    for key, (reason, gen) in RUN_CASES.items():
        run = r("runs", key)
        out.append(Case(f"run/resume_{key}", "runs", _gan_flags(r, 2) + ["--out", run, "--resume"], "error",
                        reason=reason, protect=[os.path.join(run, f) for f in run_files]))
        if gen:
            out.append(Case(f"run/generate_{key}", "runs", ["generate", run, "--n", "2", "--out", r("out", f"gen_{key}")],
                            "error", reason=reason, absent=[r("out", f"gen_{key}")]))
    out += [
        Case("run/generate_n2_into_n5", "outputs", ["generate", r("runs", "good"), "--n", "2", "--out", r("gen5a")],
             "error", reason="not empty", protect=[r("gen5a", "000004.png"), r("gen5a", "config.json")],
             count=(r("gen5a"), "*.png", 5)),
        Case("run/generate_n2_into_n5_overwrite", "outputs", ["generate", r("runs", "good"), "--n", "2", "--out",
                                                               r("gen5b"), "--overwrite"], "done",
             count=(r("gen5b"), "*.png", 2)),
        Case("run/generate_overwrite_into_run", "outputs", ["generate", r("runs", "good"), "--n", "2", "--out",
                                                             r("runs", "good_copy"), "--overwrite"], "error",
             reason="not written by forensics generate", protect=[r("runs", "good_copy", "config.json")],
             count=(r("runs", "good_copy"), "*.png", 0)),
        Case("run/generate_seed_negative", "arguments", ["generate", r("runs", "good"), "--n", "2", "--seed", "-1",
                                                         "--out", r("out", "gen_seed")], "error",
             reason="--seed must be in [0, 4294967295], got -1", absent=[r("out", "gen_seed")]),
        Case("run/resume_good", "runs", _gan_flags(r, 2) + ["--out", r("runs", "good_resumed"), "--resume"], "done",
             count=(r("runs", "good_resumed", "samples"), "step_*.png", 2)),
        Case("spectrum/only_unusable", "outputs", ["spectrum", r("unusable"), "--out", r("out", "spec_unusable")],
             "error", reason="no usable image", absent=[r("out", "spec_unusable", f) for f in
                                                        ("spectrum.png", "features.csv", "profiles.csv")],
             unsaid="spectrum.png"),
    ]
    att = lambda key, fake, *more: ["attack", "--fake", r(fake), "--real", "builtin", "--method",  # noqa: E731
                                    "equalize", "--out", r("out", f"att_{key}"), *more]
    for key, argv, reason in [
        ("line_500x1", att("line_500x1", "lines"), "needs at least"),
        ("bad_model", att("bad_model", "good4", "--model", r("models", "json_list")), "JSON object"),
        ("missing_model", att("missing_model", "good4", "--model", r("models", "missing_folder")), "not found"),
        ("strength_nan", att("strength_nan", "good4", "--strength", "nan"), "strength"),
        ("strength_2", att("strength_2", "good4", "--strength", "2"), "strength"),
        ("from_freq_nan", att("from_freq_nan", "good4", "--from-freq", "nan"), "lowest equalised frequency"),
        ("max_gain_nan", att("max_gain_nan", "good4", "--method", "match2d", "--max-gain", "nan"), "maximum gain"),
        ("seed_negative", att("seed_negative", "good4", "--seed", "-3"), "seed"),
        ("real_missing", ["attack", "--fake", r("good4"), "--real", r("nope"), "--method", "equalize",
                          "--out", r("out", "att_real_missing")], "no such file"),
        ("detector_unknown", att("detector_unknown", "good4", "--detectors", "bogus"), "unknown detector"),
        ("too_few", att("too_few", "good"), "need 4"),
        ("reals_smaller", ["attack", "--fake", r("big6"), "--real", r("good4"), "--method", "equalize",
                           "--out", r("out", "att_reals_smaller")], "no real reference image"),
    ]:
        out.append(Case(f"attack/{key}", "arguments", argv, "error", reason=reason,
                        absent=[r("out", f"att_{key}")]))
    ce = lambda key, *more: ["counterexample", "--real", "builtin", "--steps", "1", "--out",  # noqa: E731
                             r("out", f"ce_{key}"), *more]
    for key, more, reason in [
        ("reps_0", ["--reps", "0"], "--reps"), ("n_fake_0", ["--n-fake", "0"], "--n-fake"),
        ("n_train_0", ["--n-train", "0"], "--n-train"), ("n_real_0", ["--n-real", "0"], "--n-real"),
        ("setup_unknown", ["--setups", "baseline,Q.9.9"], "last-layer spec"),
        ("setups_without_baseline", ["--setups", "N.1.5"], "baseline"),
        ("steps_negative", ["--steps", "-5"], "steps"), ("size_33", ["--size", "33"], "power of two"),
        ("gan_unknown", ["--gan", "bogus"], "unknown GAN"), ("detector_unknown", ["--detectors", "bogus"], "bogus"),
        ("objective_unknown", ["--objectives", "bogus"], "unknown objective"),
        ("quant_bad", ["--quant", "w99a1"], "quantization"), ("seed_negative", ["--seed", "-1"], "seed"),
        ("config_missing", ["--config", r("nope.json")], "nope.json"),
        ("real_missing", ["--real", r("nope")], "no such file"),
        ("real_too_few", ["--real", r("runs", "tiny.npz")], "need more than"),
    ]:
        out.append(Case(f"counterexample/{key}", "arguments", ce(key, *more), "error", reason=reason,
                        absent=[r("out", f"ce_{key}")]))
    return out


def _td(r, flag, value):
    return ["train-detector", "--real", r("good"), "--fake", r("good"), "--detector", "dzanic-lr",
            "--out", r("out", "m_args"), flag, value]


MODEL_CASES = {  # tamper name -> expected reason substring
    "missing_folder": "not found", "folder_is_file": "not found", "no_npz": "needs model.json and model.npz",
    "json_list": "JSON object", "json_null": "JSON object", "json_string": "JSON object", "json_number": "JSON object",
    "json_deep": "nested deeper", "json_invalid": "not valid JSON", "json_not_utf8": "not UTF-8",
    "no_params": "missing 'params'", "params_list": "'params' has the wrong type", "threshold_nan": "threshold",
    "threshold_string": "'threshold' has the wrong type", "threshold_inf": "threshold", "format_other": "not a forensics",
    "version_99": "version", "class_unknown": "unknown detector class", "params_unknown_key": "damaged model",
    "preprocess_bad": "bad preprocessing", "preprocess_int": "policy string", "state_list": "'state'",
    "mean_short": "incompatible or damaged", "coef_2d": "incompatible or damaged", "scale_zero": "zero",
    "scale_nan": "non-finite", "npz_garbage": "damaged model", "npz_empty": "damaged model",
    "npz_object": "damaged model", "coef_missing": "damaged model", "features_unknown": "damaged model",
    # the built-in robust detector with one NaN in its precision matrix; a format version no release reads
    "robust_precision_nan": "'precision' holds non-finite", "version_3": "version 3 is not supported",
    "version_text": "version '2' is not supported", "version_missing": "version None is not supported",
}

DATA_CASES = {  # name -> (array or raw bytes, expected reason)
    "empty.npz": ("npz:", "no arrays"), "zero_images.npz": ("npz:zero", "no images"),
    "all_nan.npz": ("npz:nan", "NaN or infinite"), "some_inf.npz": ("npz:inf", "NaN or infinite"),
    "flat.npz": ("npz:flat", "expected images of shape"), "object.npz": ("npz:object", "cannot read .npz"),
    "garbage.npz": (b"PK\x03\x04garbage", "cannot read .npz"), "npy_named.npz": ("npy", ".npz"),
    "truncated-ubyte": (b"\0\0\x08\x03\0\0", "truncated IDX header"),
    "badmagic-ubyte": (b"\x01\x02\x03\x04" + b"\0" * 12, "bad magic"),
    "short-ubyte": (b"\0\0\x08\x03" + struct.pack(">III", 10, 28, 28) + b"\0" * 5, "does not hold"),
    "strings.npz": ("npz:str", "must be numbers"),
}


def _write_model(folder: Path, src: Path, meta_edit=None, arrays_edit=None, raw_json: bytes | None = None,
                 raw_npz: bytes | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    meta = json.loads((src / "model.json").read_text())
    with np.load(src / "model.npz") as z:
        arrays = {k: z[k] for k in z.files}
    if meta_edit:
        meta = meta_edit(meta)
    if arrays_edit:
        arrays = arrays_edit(arrays)
    (folder / "model.json").write_bytes(raw_json if raw_json is not None else json.dumps(meta).encode())
    if raw_npz is not None:
        (folder / "model.npz").write_bytes(raw_npz)
    else:
        np.savez(folder / "model.npz", **arrays)


def _set(d, path, value):
    d = json.loads(json.dumps(d))
    cur = d
    for k in path[:-1]:
        cur = cur[k]
    if value is _DEL:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return d


_DEL = object()


def materialise(root) -> None:
    """Write every case's inputs under ``root`` (a fresh folder)."""
    from forensics.detectors.store import default_model_dir

    root = Path(root)
    rb = os.fsencode(str(root))
    (root / "out").mkdir(parents=True)
    for name, (content, _) in _image_files().items():
        d = root / "img" / name.replace(".", "_")
        d.mkdir(parents=True)
        (d / name).write_bytes(content)
    good_png = _bytes_of(Image.fromarray(_noise()), "PNG")
    for key, (raw, _) in NAMES.items():
        d = os.path.join(rb, b"names", key.encode())
        os.makedirs(d)
        with open(os.path.join(d, raw), "wb") as f:
            f.write(good_png)
    d = os.path.join(rb, b"names", b"dir_non_utf8", b"d\xff")
    os.makedirs(d)
    with open(os.path.join(d, b"x.png"), "wb") as f:
        f.write(good_png)
    (root / "names" / "hidden").mkdir(parents=True)
    (root / "names" / "hidden" / "seen.png").write_bytes(good_png)
    (root / "names" / "hidden" / ".secret.png").write_bytes(good_png)
    (root / "names" / "hidden" / ".dot").mkdir()
    (root / "names" / "hidden" / ".dot" / "x.png").write_bytes(good_png)
    # file-system oddities
    fs = root / "fs"
    for key in ("broken_link", "link_loop", "link_pair_loop", "fifo", "device", "socket", "link_to_file",
                "dangling_in_subdir", "dir_loop", "folder_png", "no_images", "unreadable", "unsearchable"):
        (fs / key).mkdir(parents=True)
    os.symlink(fs / "missing-target.png", fs / "broken_link" / "x.png")
    os.symlink("x.png", fs / "link_loop" / "x.png")
    os.symlink("y.lnk", fs / "link_pair_loop" / "x.png")
    os.symlink("x.png", fs / "link_pair_loop" / "y.lnk")  # not an image name: only x.png is listed
    os.mkfifo(fs / "fifo" / "x.png")
    os.symlink("/dev/null", fs / "device" / "x.png")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(fs / "socket" / "x.png"))
    finally:
        s.close()
    (fs / "target.png").write_bytes(good_png)
    os.symlink(fs / "target.png", fs / "link_to_file" / "x.png")
    (fs / "dangling_in_subdir" / "sub").mkdir()
    os.symlink("nowhere.png", fs / "dangling_in_subdir" / "sub" / "x.png")
    (fs / "dir_loop" / "x.png").write_bytes(good_png)
    os.symlink("..", fs / "dir_loop" / "up")
    (fs / "folder_png" / "x.png").mkdir()
    (fs / "folder_png" / "x.png" / "inner.png").write_bytes(good_png)
    (fs / "no_images" / "notes.txt").write_text("nothing\n")
    (fs / "unreadable" / "x.png").write_bytes(good_png)
    os.chmod(fs / "unreadable" / "x.png", 0)
    (fs / "unsearchable" / "locked").mkdir()
    (fs / "unsearchable" / "locked" / "x.png").write_bytes(good_png)
    os.chmod(fs / "unsearchable" / "locked", 0o600)
    deep = fs / "deep"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY)
    try:  # 1200 levels, built relative to open folders (the full path is longer than PATH_MAX)
        cur = fd
        for _ in range(1200):
            os.mkdir("d", dir_fd=cur)
            nxt = os.open("d", os.O_RDONLY, dir_fd=cur)
            if cur != fd:
                os.close(cur)
            cur = nxt
        with open(os.open("x.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=cur), "wb") as f:
            f.write(good_png)
        os.close(cur)
    finally:
        os.close(fd)
    # good images and tampered models
    (root / "good").mkdir()
    for i in range(3):
        (root / "good" / f"g{i}.png").write_bytes(_bytes_of(Image.fromarray(_noise(seed=10 + i)), "PNG"))
    (root / "many").mkdir()
    for i in range(200):
        (root / "many" / f"m{i:03d}.png").write_bytes(_bytes_of(Image.fromarray(_noise(32, 32, seed=i)), "PNG"))
    for sub in ("real", "fake"):
        (root / "one" / sub).mkdir(parents=True)
        (root / "one" / sub / "a.png").write_bytes(good_png)
    src = default_model_dir().parent / "durall-lr"  # the tampering cases edit a spectral detector's arrays
    models = root / "models"
    models.mkdir()
    (models / "folder_is_file").write_text("x")
    (models / "no_npz").mkdir()
    shutil.copy(src / "model.json", models / "no_npz" / "model.json")
    m = lambda key, **kw: _write_model(models / key, src, **kw)  # noqa: E731
    m("json_list", raw_json=b"[1, 2]")
    m("json_null", raw_json=b"null")
    m("json_string", raw_json=b'"model"')
    m("json_number", raw_json=b"3")
    m("json_deep", raw_json=b"[" * 1200 + b"]" * 1200)
    m("json_invalid", raw_json=b'{"format": ')
    m("json_not_utf8", raw_json=b'{"format": "\xff\xfe"}')
    m("no_params", meta_edit=lambda d: _set(d, ["params"], _DEL))
    m("params_list", meta_edit=lambda d: _set(d, ["params"], [1]))
    m("threshold_nan", raw_json=json.dumps(_set(json.loads((src / "model.json").read_text()), ["threshold"],
                                                math.nan)).encode())
    m("threshold_string", meta_edit=lambda d: _set(d, ["threshold"], "0.5"))
    m("threshold_inf", raw_json=(src / "model.json").read_text().replace('"threshold": 0.5', '"threshold": 1e400')
      .encode() if '"threshold": 0.5' in (src / "model.json").read_text() else
      json.dumps(_set(json.loads((src / "model.json").read_text()), ["threshold"], math.inf)).encode())
    m("format_other", meta_edit=lambda d: _set(d, ["format"], "something-else"))
    m("version_99", meta_edit=lambda d: _set(d, ["format_version"], 99))
    m("class_unknown", meta_edit=lambda d: _set(d, ["class"], "os.system"))
    m("params_unknown_key", meta_edit=lambda d: _set(d, ["params", "evil"], 1))
    m("preprocess_bad", meta_edit=lambda d: _set(d, ["params", "preprocess"], "resize:0"))
    m("preprocess_int", meta_edit=lambda d: _set(d, ["params", "preprocess"], 7))
    m("state_list", meta_edit=lambda d: _set(d, ["state"], []))
    m("features_unknown", meta_edit=lambda d: _set(d, ["params", "features"], "nope"))
    m("mean_short", arrays_edit=lambda a: {**a, "mean": a["mean"][:5]})
    m("coef_2d", arrays_edit=lambda a: {**a, **{k: np.stack([v, v]) for k, v in a.items() if k.startswith("est_")
                                                and v.ndim == 1 and len(v) > 1}})
    m("scale_zero", arrays_edit=lambda a: {**a, "scale": np.zeros_like(a["scale"])})
    m("scale_nan", arrays_edit=lambda a: {**a, "scale": np.full_like(a["scale"], np.nan)})
    m("version_3", meta_edit=lambda d: _set(d, ["format_version"], 3))
    m("version_text", meta_edit=lambda d: _set(d, ["format_version"], "2"))
    m("version_missing", meta_edit=lambda d: _set(d, ["format_version"], _DEL))
    _write_model(models / "robust_precision_nan", default_model_dir(),
                 arrays_edit=lambda a: {**a, "precision": np.where(np.eye(len(a["precision"]), dtype=bool), np.nan,
                                                                   a["precision"])})
    m("coef_missing", arrays_edit=lambda a: {k: v for k, v in a.items() if not k.startswith("est_")})
    m("npz_garbage", raw_npz=b"PK\x03\x04 not a zip")
    m("npz_empty", raw_npz=b"")
    obj = io.BytesIO()
    np.savez(obj, mean=np.array([{"x": 1}], dtype=object))
    m("npz_object", raw_npz=obj.getvalue())
    # data sources
    data = root / "data"
    data.mkdir()
    for name, (spec, _) in DATA_CASES.items():
        p = data / name
        if isinstance(spec, bytes):
            p.write_bytes(spec)
        elif spec == "npy":
            np.save(open(p, "wb"), np.zeros((2, 32, 32), np.uint8))
        else:
            kind = spec[4:]
            arrays = {"": {}, "zero": {"images": np.zeros((0, 32, 32), np.uint8)},
                      "nan": {"images": np.full((4, 32, 32), np.nan, np.float32)},
                      "inf": {"images": np.where(np.eye(32, dtype=bool), np.inf, 0.5)[None].repeat(4, 0)},
                      "flat": {"images": np.zeros(10, np.uint8)},
                      "str": {"images": np.array([["a"] * 32] * 32)[None].repeat(2, 0)}}.get(kind)
            if kind == "object":
                np.savez(p, images=np.array([None, 1], dtype=object))
            else:
                np.savez(p, **arrays)
    # output faults
    faults = root / "faults"
    (faults / "folder.csv").mkdir(parents=True)
    (faults / "file").write_text("a file, not a folder\n")
    os.mkfifo(faults / "pipe.csv")
    (faults / "ro").mkdir()
    (faults / "ro" / "x.csv").write_text("previous output\n")
    (faults / "full").mkdir()
    (faults / "full" / "prev.csv").write_text("previous output\n")
    (faults / "full_spec").mkdir()
    (faults / "full_spec" / "features.csv").write_text("previous output\n")
    (root / "out" / "prev.csv").write_text("path,score\nprevious,0.5\n")
    # resume faults: a partial scan made with another model / garbled
    (root / "resume").mkdir()
    (root / "resume" / "other.csv.partial").write_text(json.dumps(
        {"format": "forensics-scan-rows", "detector": "durall-svm", "threshold": 0.5, "preprocess": "none",
         "model": "/elsewhere"}) + "\n")
    (root / "resume" / "garbled.csv.partial").write_text("\x00garbage\n")
    _materialise_verbs(root, good_png)


def _edit_checkpoint(src: Path, dst: Path, edit) -> None:
    """Copy a checkpoint, ``edit`` applied to its top-level skeleton ``{key: node}`` (see
    ``forensics.generators.checkpoint``), or to the raw metadata text if ``edit`` is a str."""
    from safetensors import safe_open
    from safetensors.torch import save

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if isinstance(edit, str):
        text = edit
    else:
        sk = json.loads(meta["forensics"])
        top = edit({e[1]: e[2] for e in sk["__d"]})
        text = json.dumps({"__d": [["str", k, v] for k, v in top.items()]})
    dst.write_bytes(save(tensors, metadata={"forensics": text}))


def _materialise_verbs(root: Path, good_png: bytes) -> None:
    """Inputs of :func:`_verb_cases`: a tiny trained GAN run and damaged copies, sample folders,
    thin and unusable images."""
    from forensics.cli.main import main
    from forensics.generators.sampling import generate

    r = lambda *p: str(root.joinpath(*p))  # noqa: E731
    runs = root / "runs"
    runs.mkdir()
    np.savez(runs / "tiny.npz", images=np.stack([_noise(32, 32, seed=40 + i) for i in range(8)]))
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(_gan_flags(r, 1) + ["--out", r("runs", "good")]) == 0
    good = runs / "good"
    shutil.copytree(good, runs / "good_resumed")
    shutil.copytree(good, runs / "good_copy")
    with contextlib.redirect_stderr(io.StringIO()):
        generate(good, 5, root / "gen5a", progress=False)
        generate(good, 5, root / "gen5b", progress=False)
    cfg = json.loads((good / "config.json").read_text())
    for key in RUN_CASES:
        shutil.copytree(good, runs / key)
    (runs / "cfg_invalid" / "config.json").write_text('{"config": ')
    (runs / "cfg_list" / "config.json").write_text("[1]")
    (runs / "cfg_wrong_types" / "config.json").write_text(json.dumps(_set(cfg, ["config", "size"], "big")))
    (runs / "cfg_other_size" / "config.json").write_text(json.dumps(_set(cfg, ["config", "size"], 64)))
    (runs / "cfg_z_dim_text" / "config.json").write_text(json.dumps(_set(cfg, ["config", "params", "z_dim"], "64")))
    (runs / "cfg_no_gan" / "config.json").write_text(json.dumps(_set(cfg, ["config", "gan"], _DEL)))
    (runs / "cfg_batch_zero" / "config.json").write_text(json.dumps(_set(cfg, ["config", "params", "batch"], 0)))
    ck = "checkpoint.safetensors"
    (runs / "ckpt_garbage" / ck).write_bytes(b"garbage, not safetensors")
    _edit_checkpoint(good / ck, runs / "ckpt_meta_not_json" / ck, "{{{")
    _edit_checkpoint(good / ck, runs / "ckpt_step_text" / ck, lambda t: {**t, "step": "abc"})
    _edit_checkpoint(good / ck, runs / "ckpt_step_list" / ck, lambda t: {**t, "step": {"__l": [1]}})
    _edit_checkpoint(good / ck, runs / "ckpt_modules_list" / ck, lambda t: {**t, "modules": {"__l": []}})
    _edit_checkpoint(good / ck, runs / "ckpt_no_sampler" / ck, lambda t: {k: v for k, v in t.items() if k != "sampler"})
    _edit_checkpoint(good / ck, runs / "ckpt_fixed_number" / ck, lambda t: {**t, "fixed": 3})
    _edit_checkpoint(good / ck, runs / "ckpt_gen_text" / ck, lambda t: {**t, "gen": "x"})
    (runs / "log_binary" / "log.csv").write_bytes(b"step,loss\n\x00\xff\xfe garbage\n")
    (runs / "log_no_step" / "log.csv").write_text("loss\n1.0\n")
    (runs / "log_text_values" / "log.csv").write_text("step,loss\nabc,1.0\n")
    # images for attack and spectrum
    (root / "lines").mkdir()
    for i in range(6):
        (root / "lines" / f"l{i}.png").write_bytes(_bytes_of(Image.fromarray(_noise(1, 500, seed=60 + i)), "PNG"))
    (root / "good4").mkdir()
    for i in range(6):
        (root / "good4" / f"g{i}.png").write_bytes(_bytes_of(Image.fromarray(_noise(32, 32, seed=70 + i)), "PNG"))
    (root / "big6").mkdir()
    for i in range(6):
        (root / "big6" / f"b{i}.png").write_bytes(_bytes_of(Image.fromarray(_noise(48, 48, seed=80 + i)), "PNG"))
    (root / "unusable").mkdir()
    (root / "unusable" / "junk.png").write_bytes(b"not an image")
    (root / "unusable" / "dot.png").write_bytes(_bytes_of(Image.fromarray(_noise(1, 1)), "PNG"))


def chattr(path, on: bool) -> bool:
    try:
        return subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True).returncode == 0
    except OSError:
        return False


def setup_special(root) -> set[str]:
    """Make the read-only folder immutable; returns the ``needs`` this machine can satisfy."""
    have = set()
    if os.geteuid() != 0:
        have.add("nonroot")
    if chattr(Path(root) / "faults" / "ro", True):
        have.add("chattr")
    return have


def remove_deep(top) -> None:
    """Remove the 1200-level tree below ``top`` one level at a time (``shutil.rmtree`` and
    pytest's clean-up recurse and would hit Python's recursion limit)."""
    top = Path(top)
    while (top / "d").is_dir():
        inner = top / "d"
        if (inner / "d").is_dir():
            os.rename(inner / "d", top / "next")
        shutil.rmtree(inner)
        if (top / "next").is_dir():
            os.rename(top / "next", top / "d")


def teardown_special(root) -> None:
    chattr(Path(root) / "faults" / "ro", False)
    remove_deep(Path(root) / "fs" / "deep")
    for p in (Path(root) / "fs" / "unsearchable" / "locked",):
        try:
            os.chmod(p, 0o755)
        except OSError:
            pass


# ------------------------------------------------------------------------------ runner
def _snapshot(paths):
    snap = {}
    for p in paths:
        try:
            snap[p] = Path(p).read_bytes() if Path(p).is_file() else None
        except OSError:
            snap[p] = None
    return snap


def _run_inprocess(argv) -> tuple[int | None, str, str | None]:
    from forensics.cli.main import main

    err = io.StringIO()
    exc = None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
        except BaseException as e:  # noqa: BLE001 - the point: anything that escapes is a traceback
            import traceback

            rc, exc = None, "".join(traceback.format_exception(e))
    return rc, err.getvalue(), exc


_FSIZE = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
          "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)); from forensics.cli.main import main; "
          "sys.exit(main(sys.argv[1:]))")


def _run_subprocess(argv) -> tuple[int | None, str, str | None]:
    p = subprocess.run([sys.executable, "-c", _FSIZE, *argv], capture_output=True, timeout=120,
                       env={**os.environ, "FORENSICS_PROGRESS": "0"})
    err = p.stderr.decode("utf-8", "replace")
    return p.returncode, err, err if "Traceback" in err else None


def _rows_of(case: Case) -> list[dict]:
    out = Path(case.out)
    if out.is_dir():
        out = out / "features.csv"
    if out.suffix == ".json":
        return json.loads(out.read_text(encoding="utf-8"))["rows"]
    with open(out, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def run_case(case: Case, root) -> tuple[str, str]:
    """``(outcome, detail)`` for one case (see the module docs)."""
    argv = [a for a in case.argv]
    protect = _snapshot(case.protect)
    rc, err, exc = (_run_subprocess if case.subprocess else _run_inprocess)(argv)
    if exc is not None or "Traceback (most recent call last)" in err:
        return "traceback", (exc or err).strip().splitlines()[-1]
    if _snapshot(case.protect) != protect:
        return "lost", f"a previous file changed: {', '.join(p for p in protect if _snapshot([p])[p] != protect[p])}"
    outcome, detail = _judge(case, rc, err, root)
    if outcome == "ok":
        made = [p for p in case.absent if os.path.lexists(p)]
        if made:
            return "wrong", f"written though the run failed or should not write it: {made[0]}"
        if case.count:
            folder, pattern, n = case.count
            have = len(list(Path(folder).glob(pattern)))
            if have != n:
                return "wrong", f"{folder} holds {have} {pattern} files, expected {n}"
        if case.unsaid and case.unsaid in err:
            return "wrong", f"stderr names {case.unsaid!r}: {err.strip()[-300:]!r}"
    return outcome, detail


def _judge(case: Case, rc, err: str, root) -> tuple[str, str]:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if case.expect == "error":
        errs = [ln for ln in lines if ln.startswith("forensics: error:")]
        if rc != 2 or len(errs) != 1:
            return "wrong", f"exit {rc}, expected one error line and exit 2; stderr: {err.strip()[:300]!r}"
        if case.reason and case.reason.lower() not in errs[0].lower():
            return "wrong", f"error line lacks {case.reason!r}: {errs[0][:300]!r}"
        return "ok", errs[0]
    if rc != 0:
        return "wrong", f"exit {rc}; stderr: {err.strip()[:300]!r}"
    if case.expect == "done":
        return "ok", "exit 0"
    try:
        rows = _rows_of(case)
    except (OSError, ValueError, KeyError) as e:
        return "wrong", f"no readable output ({e})"
    if case.n_rows is not None and len(rows) != case.n_rows:
        return "wrong", f"{len(rows)} rows, expected {case.n_rows}"
    if case.expect == "rows":
        return "ok", f"{len(rows)} rows"
    want = str(Path(root) / case.target)
    mine = [r for r in rows if r["path"] == want]
    if len(mine) != 1:
        return "wrong", f"no row for {want!r} (rows: {[r['path'] for r in rows][:3]})"
    row = mine[0]
    error = row.get("error") or ""
    label = row.get("label", "error" if error else "scored")
    if case.reason is None:
        if label == "error" or error:
            return "wrong", f"expected a score, got error {error!r}"
        if any("Warning" in ln for ln in lines):
            return "wrong", f"a raw warning leaked: {[ln for ln in lines if 'Warning' in ln][0][:200]!r}"
        return "ok", f"label {label}"
    if label != "error" or case.reason.lower() not in error.lower():
        return "wrong", f"expected an error row with {case.reason!r}, got label {label!r} error {error!r}"
    return "ok", error


def run_all(root, only: set[str] | None = None) -> tuple[list, dict]:
    root = Path(root)
    materialise(root)
    have = setup_special(root)
    results = []
    try:
        for c in cases(root):
            if only and c.cls not in only:
                continue
            if c.needs and c.needs not in have:
                results.append((c, "skipped", f"needs {c.needs}"))
                continue
            results.append((c, *run_case(c, root)))
    finally:
        teardown_special(root)
    counts: dict = {}
    for c, outcome, _ in results:
        counts.setdefault(c.cls, {}).setdefault(outcome, 0)
        counts[c.cls][outcome] += 1
    return results, counts


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="fresh folder for the corpus")
    ap.add_argument("--json", default=None, help="write the counts per class here")
    ap.add_argument("-v", action="store_true", help="list every case that is not ok")
    a = ap.parse_args()
    results, counts = run_all(a.root)
    for c, outcome, detail in results:
        if a.v and outcome != "ok":
            print(f"{outcome:9s} {c.name}: {detail}")
    tot: dict = {}
    for cls, d in counts.items():
        print(f"{cls:11s} " + ", ".join(f"{k} {v}" for k, v in sorted(d.items())))
        for k, v in d.items():
            tot[k] = tot.get(k, 0) + v
    print(f"{'total':11s} " + ", ".join(f"{k} {v}" for k, v in sorted(tot.items())) + f" of {len(results)} cases")
    if a.json:
        Path(a.json).write_text(json.dumps({"counts": counts, "total": tot}, indent=2))

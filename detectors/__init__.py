"""Detectors of CNN-generated images as scikit-learn estimators that share the toolkit's contract
(:class:`~forensics.detectors.base.RealFakeContract`: ``p_generated``, ``fit_real_fake``,
``calibrate``). One registry of names: the spectral detectors ``<features>-<classifier>``
(:mod:`forensics.detectors.spectral`) and the detectors that learn from images (:data:`IMAGE_DETECTORS`).
"""
from forensics.detectors import spectral
from forensics.detectors.base import Detector, RealFakeContract
from forensics.detectors.spectral import PAPER_DETECTORS, TOOLKIT_DETECTORS, SpectralDetector, SpectralFeatures


def _cnn(input_kind):
    def make(seed=0, size=32, **kw):
        from forensics.detectors.cnn import CNNConfig, CNNDetector

        return CNNDetector(CNNConfig(size=size, seed=seed, input=input_kind, **kw))
    return make


def _hash_knn(seed=0, size=32, **kw):
    from forensics.detectors.hash_knn import HashKNNDetector

    return HashKNNDetector(size=size, seed=seed, **kw)


def _image_estimator(module, cls):
    def make(seed=0, size=32, **kw):
        import importlib

        return getattr(importlib.import_module(module), cls)(size=size, seed=seed, **kw)
    return make


#: detectors that learn from the images themselves, name -> factory(seed, size, **params); the image
#: size is the one the study or training set uses (the CNN and the hash networks are built for it)
IMAGE_DETECTORS = {
    "cnn": _cnn("pixels"),
    "cnn-spectrum": _cnn("spectrum"),
    "hash-knn": _hash_knn,
    # models real images only (plus simulated upsampling): departures above or below are flagged
    "robust": _image_estimator("forensics.detectors.robust", "RobustSpectralDetector"),
    "frank-lr": _image_estimator("forensics.detectors.frank", "FrankDCTDetector"),
    "periodic-lr": _image_estimator("forensics.detectors.periodic", "PeriodicSpectrumDetector"),
}


def make_detector(name: str, seed: int = 0, size: int | None = None, **kw):
    """A detector from its registered name, e.g. ``make_detector("dzanic+-knn", seed=1)`` or
    ``make_detector("cnn", size=32)``."""
    if name in IMAGE_DETECTORS:
        return IMAGE_DETECTORS[name](seed=seed, size=size or 32, **kw)
    return spectral.make_detector(name, seed=seed, **kw)


def detector_names() -> list[str]:
    return spectral.detector_names() + list(IMAGE_DETECTORS)


def expand_names(names) -> list[str]:
    """``all`` in a list of detector names: every toolkit spectral detector, the published Durall
    detectors (defined from 16 px), and every image detector."""
    out = []
    for n in names:
        extra = ([*TOOLKIT_DETECTORS, "durall-lr", "durall-svm", *IMAGE_DETECTORS] if n == "all" else [n])
        out += [e for e in extra if e not in out]
    return out


__all__ = ["Detector", "RealFakeContract", "SpectralDetector", "SpectralFeatures", "make_detector",
           "detector_names", "expand_names", "IMAGE_DETECTORS", "PAPER_DETECTORS", "TOOLKIT_DETECTORS"]

"""The one registry of detector names: the spectral detectors ``<features>-<classifier>``
(:mod:`forensics.detectors.spectral`) and the detectors that learn from images (:data:`IMAGE_DETECTORS`),
each made by :func:`make_detector`."""
from __future__ import annotations

from forensics.detectors import spectral
from forensics.detectors.spectral import TOOLKIT_DETECTORS


def _cnn(input_kind):
    def make(seed=0, size=32, **kw):
        from forensics.detectors.cnn import CNNConfig, CNNDetector

        return CNNDetector(CNNConfig(size=size, seed=seed, input=input_kind, **kw))
    return make


def _hash_knn(seed=0, size=32, **kw):
    from forensics.detectors.hash_knn import HashKNNDetector

    return HashKNNDetector(size=size, seed=seed, **kw)


def _robust(seed=0, size=32, **kw):
    from forensics.detectors.robust import RobustSpectralDetector

    return RobustSpectralDetector(size=size, seed=seed, **kw)


def _frank(seed=0, size=32, **kw):
    from forensics.detectors.frank import FrankDCTDetector

    return FrankDCTDetector(size=size, seed=seed, **kw)


def _native(seed=0, size=32, **kw):
    from forensics.detectors.native import NativeResolutionDetector

    return NativeResolutionDetector(seed=seed, **kw)  # scores at native resolution: no fixed image size


def _periodic(seed=0, size=32, **kw):
    from forensics.detectors.periodic import PeriodicSpectrumDetector

    return PeriodicSpectrumDetector(size=size, seed=seed, **kw)


#: detectors that learn from the images themselves, name -> factory(seed, size, **params); the image
#: size is the one the study or training set uses (the CNN and the hash networks are built for it)
IMAGE_DETECTORS = {
    "cnn": _cnn("pixels"),
    "cnn-spectrum": _cnn("spectrum"),
    "hash-knn": _hash_knn,
    # models real images only (plus simulated upsampling): departures above or below are flagged
    "robust": _robust,
    "frank-lr": _frank,
    "periodic-lr": _periodic,
    # native resolution: grid-phase (cyclostationarity) features of residuals and tile spectra on every 64-px tile
    "native": _native,
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

"""Spectrum-based detectors of CNN-generated images as scikit-learn estimators (see
:mod:`forensics.detectors.base` for the contract, :mod:`forensics.detectors.spectral` for the names)."""
from forensics.detectors.base import Detector
from forensics.detectors.spectral import (PAPER_DETECTORS, TOOLKIT_DETECTORS, SpectralDetector, SpectralFeatures,
                                          detector_names, make_detector)

__all__ = ["Detector", "SpectralDetector", "SpectralFeatures", "make_detector", "detector_names",
           "PAPER_DETECTORS", "TOOLKIT_DETECTORS"]

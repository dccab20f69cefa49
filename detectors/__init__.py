"""Spectrum-based detectors of CNN-generated images (see :mod:`detectors.base` for the contract)."""
from detectors.base import Detector
from detectors.spectral import PAPER_DETECTORS, SpectralDetector, detector_names, make_detector

__all__ = ["Detector", "SpectralDetector", "make_detector", "detector_names", "PAPER_DETECTORS"]

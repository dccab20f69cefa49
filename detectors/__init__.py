"""Spectrum-based detectors of CNN-generated images (see :mod:`detectors.base` for the contract)."""
from forensics.detectors.base import Detector
from forensics.detectors.spectral import PAPER_DETECTORS, SpectralDetector, detector_names, make_detector

__all__ = ["Detector", "SpectralDetector", "make_detector", "detector_names", "PAPER_DETECTORS"]

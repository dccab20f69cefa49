"""forensics: spectral analysis and detection of CNN-generated images."""
__version__ = "0.1.0"

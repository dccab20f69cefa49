"""Layer 2: the only FFT code. Batched spectra, azimuthal profiles and the Dzanic and Durall
features on NumPy (:mod:`~forensics.spectral.spectrum`) and torch
(:mod:`~forensics.spectral.spectrum_torch`), and one-image-at-a-time reference implementations
(:mod:`~forensics.spectral.reference`)."""

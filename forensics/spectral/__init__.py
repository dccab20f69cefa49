"""Layer 2: spectra. Batched spectra, azimuthal profiles and the Dzanic and Durall features on NumPy
(:mod:`~forensics.spectral.spectrum`) and torch (:mod:`~forensics.spectral.spectrum_torch`), and
one-image-at-a-time reference implementations (:mod:`~forensics.spectral.reference`). (The robust,
periodic and hashing detectors take their own transforms of image tiles in :mod:`forensics.detectors`.)"""

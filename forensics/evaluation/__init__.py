"""Layer 7: measuring saved detectors and image sets: evaluate, calibrate, robustness, attack,
attribute classifiers and fairness, the hash index, FID between folders and runs, and the
``forensics spectrum`` report."""

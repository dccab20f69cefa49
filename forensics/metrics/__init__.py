"""Layer 3: the numbers. Detection rates, thresholds at a false-positive rate and binary metrics
(:mod:`~forensics.metrics.rates`), PSNR/SSIM (:mod:`~forensics.metrics.similarity`), FID/KID maths
(:mod:`~forensics.metrics.fid`), the Inception features and their cache
(:mod:`~forensics.metrics.inception`) and attribute fairness (:mod:`~forensics.metrics.fairness`)."""

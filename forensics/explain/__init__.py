"""Layer 7 (beside evaluation): LRP explanations of the verdicts of detectors, per image and per
frequency (:mod:`~forensics.explain.explainers`), and their block of the study report
(:mod:`~forensics.explain.report`)."""

"""Layer 2 (beside spectral): figures (:mod:`~forensics.report.figures`) and Markdown/HTML reports
(:mod:`~forensics.report.markdown`). Knows nothing of detectors or studies: callers hand it arrays
and tables."""

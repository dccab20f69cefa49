"""Layer 8: the counterexample study. Its typed config and presets (:mod:`~forensics.study.config`),
its cached stages (:mod:`~forensics.study.stages`), the spread over GAN seeds
(:mod:`~forensics.study.seeds`) and its report (:mod:`~forensics.study.report`)."""

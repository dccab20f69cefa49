"""Layer 6: detection. The one scoring path (:mod:`~forensics.detection.scoring`),
``forensics detect`` (:mod:`~forensics.detection.detect`) and the training of detectors
(:mod:`~forensics.detection.training`)."""

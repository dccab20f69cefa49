"""Layer 1: everything that touches files. Atomic outputs and the ``config.json`` beside every
result (:mod:`~forensics.io.files`), image discovery, decoding and encoding and the preprocessing
policy (:mod:`~forensics.io.images`), real-image sources (:mod:`~forensics.io.sources`) and the
Dask engine that decodes chunks of files on workers (:mod:`~forensics.io.engine`)."""

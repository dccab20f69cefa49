"""The model-folder format's names: what ``model.json`` says a folder holds. A leaf that the model store
(which reads folders) and the detectors (which write them) both import."""

#: ``model.json`` "format" of the detectors saved as ``model.json`` + ``model.npz``, and its version
FORMAT = "forensics-detector"
FORMAT_VERSION = 2
#: files a model folder may hold (anything else: the folder is not replaced)
MODEL_FILES = {"model.json", "model.npz", "metrics.json", "config.json", "MODEL_CARD.md", ".complete"}
#: the formats of the detectors with files of their own
CNN_FORMAT = "forensics-cnn"
HASH_KNN_FORMAT = "forensics-hash-knn"
#: the versions of each format this toolkit reads (a later release may write others: refused, never guessed)
VERSIONS = {FORMAT: (1, FORMAT_VERSION), CNN_FORMAT: (1,), HASH_KNN_FORMAT: (1,)}

"""forensics: spectral analysis and detection of CNN-generated images.

The notebook API (each name is imported on first use, so ``import forensics`` stays light)::

    import forensics, pandas as pd
    imgs, names, errors = forensics.load_images("photos/", policy="resize:64")  # (N, 64, 64, 3) uint8
    prof = forensics.azimuthal_profile(imgs)                 # (N, bins) log-magnitude profiles
    X = forensics.features(imgs, "durall")                   # a detector's feature set
    rows = forensics.detect_images("photos/")                # default model; pd.DataFrame(rows)
    forensics.train_detector("real/", "fakes/", "durall-lr", "model/")
    cfg = forensics.StudyConfig.demo(steps=300)              # the counterexample study as a typed config
    res = forensics.run_study(cfg, "study/")["results"]

See the README's "Python API" section.
"""
__version__ = "0.3.0"

from forensics import _compat  # noqa: E402  (the 0.2 module paths, for one release)

_compat.install()

#: public name -> (module, attribute)
_API = {
    # images and spectra
    "load_images": ("forensics.io.images", "load_images"),
    "scan": ("forensics.io.images", "scan"),
    "Policy": ("forensics.io.images", "Policy"),
    "load_source": ("forensics.io.sources", "load_source"),
    "builtin_patches": ("forensics.io.sources", "builtin_patches"),
    "fourier_spectrum": ("forensics.spectral.spectrum", "spectrum"),
    "azimuthal_profile": ("forensics.spectral.spectrum", "azimuthal_profile"),
    "profile_frequencies": ("forensics.spectral.spectrum", "profile_frequencies"),
    "features": ("forensics.spectral.spectrum", "features"),
    "spectrum_report": ("forensics.evaluation.spectrum_report", "spectrum_report"),
    # detectors
    "detect_images": ("forensics.detection.detect", "detect"),
    "load_model": ("forensics.detectors.store", "load_model"),
    "train_detector": ("forensics.detection.training", "train_detector"),
    "make_detector": ("forensics.detectors", "make_detector"),
    "detector_names": ("forensics.detectors", "detector_names"),
    # generators
    "train_gan": ("forensics.generators.trainer", "train_gan"),
    "load_run": ("forensics.generators.runs", "load_run"),
    "generate": ("forensics.generators.sampling", "generate"),
    "sample_images": ("forensics.generators.runs", "sample_images"),
    # studies
    "StudyConfig": ("forensics.study.config", "StudyConfig"),
    "SourceFamily": ("forensics.study.config", "SourceFamily"),
    "run_study": ("forensics.study.stages", "run_study"),
    "plan_study": ("forensics.study.config", "plan_study"),
    "run_attack": ("forensics.evaluation.attack", "run_attack"),
}

__all__ = ["__version__", *_API]
# (API names never shadow a subpackage: forensics.core, forensics.io, ... forensics.cli stay packages)


def __getattr__(name):
    if name in _API:
        import importlib

        mod, attr = _API[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'forensics' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

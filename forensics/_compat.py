"""Old module paths, for one release (0.3): ``forensics.spectrum`` and the other modules of the flat
0.2 layout import as the module that now holds them (the same module object, so patching its
globals patches the real one), with a ``FutureWarning`` naming the new path. Modules that were split
(``forensics.fid``, parts of ``forensics.detect``, ``forensics.report``, ...) and the old names that
are now packages (``forensics.io``, ``forensics.metrics``, ``forensics.evaluation``,
``forensics.explain``, ``forensics.report``) are listed in CHANGELOG.md. Nothing in the toolkit
imports an old path."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module -> the module that holds it now
MOVED = {
    "forensics.errors": "forensics.core.errors", "forensics.progress": "forensics.core.progress",
    "forensics.config": "forensics.core.config", "forensics.checks": "forensics.core.checks",
    "forensics.images": "forensics.io.images", "forensics.data": "forensics.io.sources",
    "forensics.distributed": "forensics.io.engine", "forensics.spectrum": "forensics.spectral.spectrum",
    "forensics.spectrum_torch": "forensics.spectral.spectrum_torch",
    "forensics.reference": "forensics.spectral.reference", "forensics.fairness": "forensics.metrics.fairness",
    "forensics.schedule": "forensics.generators.schedule", "forensics.detect": "forensics.detection.detect",
    "forensics.training": "forensics.detection.training", "forensics.robustness": "forensics.evaluation.robustness",
    "forensics.attack": "forensics.evaluation.attack", "forensics.attributes": "forensics.evaluation.attributes",
    "forensics.hash_index": "forensics.evaluation.hash_index",
    "forensics.analyze": "forensics.evaluation.spectrum_report", "forensics.experiment": "forensics.study.stages",
    "forensics.cli_analyst": "forensics.cli.analyst", "forensics.cli_hash": "forensics.cli.hash",
    "forensics.cli_explain": "forensics.cli.explain", "forensics.cli_metrics": "forensics.cli.metrics",
}


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and hands back the new module itself (``sys.modules`` then holds it under both
    names); the new module keeps its own ``__spec__``."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new} (the old path works until 0.4; see CHANGELOG.md)",
                      FutureWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._spec = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self._spec  # (the import system set it to the old path's spec)


def install() -> None:
    if not any(isinstance(f, _Moved) for f in sys.meta_path):
        sys.meta_path.append(_Moved())

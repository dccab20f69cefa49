"""Progress bars on stderr (tqdm), on a terminal or in Jupyter; silent elsewhere unless forced."""
from __future__ import annotations

import os
import sys


class _Silent:
    """What :func:`bar` returns when no bar is shown: the same calls, doing nothing (so
    a run that shows no bar does not pay for importing tqdm)."""

    def __init__(self, iterable=None):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def set_postfix(self, *a, **kw):
        pass

    def close(self):
        pass


def bar(iterable=None, total=None, desc: str = "", enabled: bool = True, **kw):
    """A tqdm bar on stderr when it is a terminal; ``enabled=False`` or
    ``FORENSICS_PROGRESS=0`` turns it off, ``FORENSICS_PROGRESS=1`` forces it on."""
    env = os.environ.get("FORENSICS_PROGRESS")
    in_notebook = "ipykernel" in sys.modules  # Jupyter: tqdm.auto draws a widget there
    show = enabled and env != "0" and (env == "1" or sys.stderr.isatty() or in_notebook)
    if not show:
        return _Silent(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False, **kw)

"""Progress bars on stderr (tqdm), silent when stderr is not a terminal unless forced."""
from __future__ import annotations

import os
import sys


def bar(iterable=None, total=None, desc: str = "", enabled: bool = True, **kw):
    """A tqdm bar; ``enabled=False`` or ``FORENSICS_PROGRESS=0`` turns it off."""
    from tqdm.auto import tqdm

    env = os.environ.get("FORENSICS_PROGRESS")
    disable = (not enabled) or env == "0"
    if not disable and env != "1" and not sys.stderr.isatty():
        disable = None  # tqdm: off when not a terminal
    return tqdm(iterable, total=total, desc=desc, disable=disable, file=sys.stderr,
                dynamic_ncols=True, leave=False, **kw)

"""The verb registry: ``@verb`` names a function ``fn(args)`` as a verb of the ``forensics`` command,
``@arg`` gives it an argparse argument. Each verb module registers its verbs on import."""
from __future__ import annotations

import inspect

VERBS: dict[str, dict] = {}


def verb(name: str, help: str, example: str):
    """Register ``fn(args)`` as verb ``name`` with ``help`` and an example for ``--help``."""
    def deco(fn):
        VERBS[name] = {"fn": fn, "help": help, "example": inspect.cleandoc(example)}
        return fn
    return deco


VERBS_ARGS: dict[str, list] = {}


def arg(*a, **kw):
    """An ``argparse`` argument of the verb below (decorators apply bottom-up)."""
    def deco(fn):
        VERBS_ARGS.setdefault(fn.__name__, []).insert(0, (a, kw))
        return fn
    return deco

"""The verb registry: ``@verb`` names a function ``fn(args)`` as a verb of the ``forensics`` command
(or, with ``group``, an action of a verb group such as ``forensics hash index``), ``@arg`` gives it an
argparse argument. Each verb module registers its verbs on import; :mod:`forensics.cli.main` turns
the registry into the parser."""
from __future__ import annotations

import inspect

#: ``"name"`` (or ``"group name"``) -> {"fn", "help", "example", "group", "name", "flags"}
VERBS: dict[str, dict] = {}
#: verb groups: name -> {"help", "example"}; their actions are verbs with ``group=name``
GROUPS: dict[str, dict] = {}
#: function name -> the argparse arguments of its verb, in order
VERBS_ARGS: dict[str, list] = {}


def verb(name: str, help: str, example: str, group: str | None = None, flags: dict | None = None):
    """Register ``fn(args)`` as verb ``name`` (an action of ``group``) with ``help`` and an example for
    ``--help``. ``flags`` maps a setting a library error names (:class:`~forensics.core.errors.SettingError`)
    to the flag that sets it, so the error line names the flag."""
    def deco(fn):
        VERBS[f"{group} {name}" if group else name] = {"fn": fn, "help": help, "example": inspect.cleandoc(example),
                                                       "group": group, "name": name, "flags": flags or {}}
        return fn
    return deco


def verb_group(name: str, help: str, example: str) -> None:
    """Register verb group ``name``; its actions are registered with ``@verb(..., group=name)``."""
    GROUPS[name] = {"help": help, "example": inspect.cleandoc(example)}


def arg(*a, **kw):
    """An ``argparse`` argument of the verb below (decorators apply bottom-up)."""
    def deco(fn):
        VERBS_ARGS.setdefault(fn.__name__, []).insert(0, (a, kw))
        return fn
    return deco


def args(specs):
    """Several ``@arg`` at once: ``specs`` is a list of ``(names, options)`` shared by verbs."""
    def deco(fn):
        for a, kw in reversed(specs):
            fn = arg(*a, **kw)(fn)
        return fn
    return deco

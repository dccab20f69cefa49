"""The ``forensics`` command. Each verb parses its arguments and calls one library function."""
from __future__ import annotations

import argparse
import sys
import textwrap

from forensics.cli import analyst, attack, detection, explain, gans, hash, metrics, sources, study
from forensics.cli.registry import GROUPS, VERBS, VERBS_ARGS
from forensics.core.errors import USER_ERRORS, describe
from forensics.core.parsing import threads_setting

#: the modules whose verbs register themselves with @verb/@arg, in the order ``--help`` lists them
VERB_MODULES = (detection, gans, sources, study, attack, metrics, explain, hash, analyst)


def top_level() -> dict[str, dict]:
    """The verbs and verb groups of the command, module by module in :data:`VERB_MODULES` order."""
    out: dict[str, dict] = {}
    for m in VERB_MODULES:
        for key, v in VERBS.items():
            if v["fn"].__module__ == m.__name__:
                out.setdefault(v["group"] or key, GROUPS[v["group"]] if v["group"] else v)
    return out


def _add_verb(sub, name: str, v: dict):
    sp = sub.add_parser(name, help=v["help"], description=v["help"],
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog="example:\n" + textwrap.indent(v["example"], "  "))
    if "fn" in v:
        options = {}  # setting -> the option that gives it, for errors about a setting's value
        for a, kw in VERBS_ARGS.get(v["fn"].__name__, []):
            act = sp.add_argument(*a, **kw)
            if act.option_strings:
                options[act.dest] = max(act.option_strings, key=len)
        sp.set_defaults(_fn=v["fn"], _flags=v["flags"], _options=options)
    return sp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="forensics",
        description="Spectral forensics of CNN-generated images.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + "\n".join("  " + v["example"].splitlines()[0] for v in top_level().values())
               + "\n\n'forensics VERB --help' for more.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    for name, v in top_level().items():
        sp = _add_verb(sub, name, v)
        if name in GROUPS:  # a verb group: its actions are sub-commands
            actions = sp.add_subparsers(dest="action", metavar="ACTION", required=True)
            for w in VERBS.values():
                if w["group"] == name:
                    _add_verb(actions, w["name"], w)
    return p


def main(argv=None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    if a.version:
        from forensics import __version__

        print(f"forensics {__version__}")
        return 0
    if not getattr(a, "_fn", None):
        p.print_help()
        return 2
    import warnings

    def one_line(message, category, filename, lineno, file=None, line=None):  # no source lines, no paths
        text = str(message).strip()
        print(f"forensics: warning: {text.splitlines()[0] if text else category.__name__}", file=sys.stderr)

    shown, warnings.showwarning = warnings.showwarning, one_line
    try:
        threads_setting()  # a malformed FORENSICS_THREADS is refused by every verb, not only where it is read
        a._fn(a)
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except USER_ERRORS as e:
        options = {k: (flag, getattr(a, k, None)) for k, flag in a._options.items()}
        print(f"forensics: error: {describe(e, a._flags, options)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("forensics: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("forensics: error: out of memory (try fewer or smaller images)", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = shown
    return 0


if __name__ == "__main__":
    sys.exit(main())

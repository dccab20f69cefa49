"""Error policy: the library raises standard exceptions (``ValueError`` for bad values,
``FileNotFoundError``/``NotADirectoryError``/``PermissionError`` and other ``OSError`` for paths)
with messages about values, never about command-line flags. The CLI turns each into one line and
exit status 2. ``UserError`` remains as a ``ValueError`` for older call sites.
"""

#: exceptions the CLI reports as one line (exit status 2) instead of a traceback
USER_ERRORS = (ValueError, OSError)


class UserError(ValueError):
    """A problem with the user's input (path, model, option) rather than a bug."""


class SettingError(UserError):
    """A problem that settings avoid: the message ends with each setting (a config field) and the value
    that avoids it, ``(fid_schedule None)``; the CLI names the verb's flags instead (:func:`describe`)."""

    def __init__(self, message: str, avoid: dict[str, str]):
        super().__init__(f"{message} ({'; '.join(f'{k} {v}' for k, v in avoid.items())})")
        self.message, self.avoid = message, dict(avoid)


class OutOfRange(UserError):
    """A setting's value outside the values it may take: ``batch must be at least 1, got 0``.
    ``setting`` is the config field it sets and ``value`` the value refused (the CLI names the flag
    that gave that value instead: :func:`describe`)."""

    def __init__(self, name: str, requirement: str, setting: str | None = None, value=None):
        super().__init__(f"{name} {requirement}")
        self.name, self.requirement, self.setting, self.value = name, requirement, setting or name, value


def describe(e: BaseException, flags: dict | None = None, options: dict | None = None) -> str:
    """One line for an error the user can act on (``OSError`` with its file name); a
    :class:`SettingError` names the flag ``flags`` gives for its setting, an :class:`OutOfRange` the
    option that gave the refused value (``options``: setting -> ``(option, value given)``)."""
    if isinstance(e, OutOfRange) and options and e.setting in options:
        option, given = options[e.setting]
        same = given is e.value or (type(given) is type(e.value) and given == e.value)
        if given is not None and same:
            return f"{option} {e.requirement}"
    if isinstance(e, SettingError) and flags and set(e.avoid) <= set(flags):
        return f"{e.message} ({'; '.join(flags[k] for k in e.avoid)})"
    if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in str(e.args[-1] if e.args else ""):
        reason = e.strerror or str(e)
        return f"{e.filename}: {reason}"
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``), e.g. a
    tampered file's key quoted inside an error message."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))


class ForensicsWarning(UserWarning):
    """A result that may mislead (e.g. sizes unlike the model's training data). The CLI prints it as
    ``forensics: warning: ...``; in Python it is an ordinary warning."""


def warn(message: str) -> None:
    import warnings

    warnings.warn(message, ForensicsWarning, stacklevel=3)

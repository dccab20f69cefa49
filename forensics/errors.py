"""The one exception type that the CLI turns into a one-line message and exit status 2."""


class UserError(Exception):
    """A problem with the user's input (path, model, option) rather than a bug."""

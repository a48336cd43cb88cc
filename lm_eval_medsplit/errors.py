"""Exceptions shared across the package."""


class CLIError(Exception):
    """A user-facing error: ``medsplit`` prints it without a traceback and exits 2."""

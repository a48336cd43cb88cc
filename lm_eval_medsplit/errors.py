"""Exceptions shared across the package.

Accepts: a message. Guarantees: a :class:`CLIError` is what ``medsplit`` prints as is after
``medsplit: error:`` (exit 2, no traceback); messages name file, line and field themselves
(:func:`lm_eval_medsplit.cli.error_line` formats any other exception)."""


class CLIError(Exception):
    """A user-facing error: ``medsplit`` prints it without a traceback and exits 2."""

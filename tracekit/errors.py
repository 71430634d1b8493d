"""One exception family for everything the CLI turns into a one-line error."""


class TracekitError(Exception):
    """A failure a person can act on: ``str(exc)`` is the one-line message."""

    exit_code = 1
    hint = None

    def __init__(self, message, hint=None):
        super().__init__(message)
        if hint:
            self.hint = hint


class UsageError(TracekitError):
    """Bad input from the command line or a file it names."""

    exit_code = 2

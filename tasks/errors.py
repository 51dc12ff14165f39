class MlpipeError(Exception):
    """An error the user can fix; the CLI prints its message as one line, without a traceback."""


class ValidationFailed(MlpipeError):
    """The data set broke its expectation suite; nothing downstream may run."""

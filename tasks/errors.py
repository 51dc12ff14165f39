import re


class MlpipeError(Exception):
    """An error the user can fix; the CLI prints its message as one line, without a traceback."""


class ValidationFailed(MlpipeError):
    """The data set broke its expectation suite; nothing downstream may run."""


# scheme://user:password@host: the password part of a URI's user info.
_CREDENTIALS = re.compile(r"([A-Za-z][\w+.-]*://[^/\s:@]*):[^/\s@]*@")


def redact(text: str) -> str:
    """`text` with every password in a URI masked (postgresql://mlflow:***@db/mlflow): for
    whatever is printed, logged or stored."""
    return _CREDENTIALS.sub(r"\1:***@", text)

import re


class MlpipeError(Exception):
    """An error the user can fix; the CLI prints its message as one line, without a traceback."""


class ValidationFailed(MlpipeError):
    """The data set broke its expectation suite; nothing downstream may run."""


# scheme://user:password@host (the password may hold '/'; masking too much is the safe side),
# and password=... in a query string.
_CREDENTIALS = re.compile(r"([A-Za-z][\w+.-]*://[^/\s:@]*):[^\s@]*@")
_PASSWORD_PARAMETER = re.compile(r"(password=)[^&\s]+", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the passwords of URIs masked (postgresql://mlflow:***@db/mlflow,
    ?password=***): for whatever is printed, logged or stored."""
    return _PASSWORD_PARAMETER.sub(r"\1***", _CREDENTIALS.sub(r"\1:***@", text))

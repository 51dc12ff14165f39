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


def one_line(error, where: str = "", noun: str = "key") -> MlpipeError:
    """A pydantic ValidationError as one line naming what is wrong: `where: key 'train.max_epochs':
    Input should be greater than or equal to 1 (got 0)`; the first error is the one to fix first."""
    first = error.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    prefix = f"{where}: " if where else ""
    if not first["loc"]:  # a check of several fields says it all itself
        return MlpipeError(prefix + message)
    key = ".".join(str(part) for part in first["loc"])
    got = "" if first["type"] in ("missing", "extra_forbidden") else f" (got {first.get('input')!r})"
    return MlpipeError(f"{prefix}{noun} '{key}': {message}{got}")

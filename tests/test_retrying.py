"""Which failures are tried again (tasks/infra/retrying.py): the same rule in this process and for
the serving worker's replies, which carry only the error's class names and message."""

import sqlite3

import pytest
import requests
from mlflow.exceptions import MlflowException

from tasks.infra.errors import MlpipeError
from tasks.infra.retrying import TransientError, is_transient, transient_failure


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (TransientError("a lock held by another run"), True),
        (MlpipeError("bad data"), False),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (requests.ConnectionError("Max retries exceeded"), True),  # not a builtin ConnectionError
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("no such table: runs"), False),
        (MlflowException("API request failed: Max retries exceeded with url"), True),
        (MlflowException("(sqlite3.OperationalError) database is locked"), True),  # MLflow's SQL store
        (MlflowException("RESOURCE_DOES_NOT_EXIST: no model 'digits'"), False),
        (ValueError("could not convert string to float"), False),
    ],
)
def test_an_error_is_transient_here_as_in_the_serving_workers_reply(error, transient):
    assert is_transient(error) is transient
    if not isinstance(error, MlpipeError):  # what serving_worker.py sends for it
        assert transient_failure([kind.__name__ for kind in type(error).__mro__], str(error)) is transient

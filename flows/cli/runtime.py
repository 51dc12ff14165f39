"""The `mlpipe` process: environment defaults, start-up of a flow run, and how it ends (one line
and an exit code for every error; Ctrl-C and SIGTERM unwind through every cleanup)."""

import logging
import os
import signal
import sys
from collections.abc import Callable

import typer

_stopped_by: int | None = None  # the signal that stopped this process


def run_app(app: typer.Typer) -> None:
    """Run the command line: one line and a non-zero exit code for every error."""
    # No network here, and telemetry should never slow a run.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow's INFO lines ("Validating input example against model signature") repeat what the run's log says.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # Prefect's temporary API server needs ~15 s to start on a 2-core machine; its default wait is 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    debug = "--debug" in sys.argv[1:]
    _stop_like_ctrl_c()
    try:
        _send_the_project_password()
        code = app(standalone_mode=False)
    except Exception as error:
        if _stopped_by is not None:
            _exit_stopped()
        if _is_usage_error(error):
            ctx = getattr(error, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx else ""
            typer.echo(f"error: {error.format_message()}{hint}", err=True)
            _exit(2)
        if debug:
            raise
        typer.echo(f"error: {_one_line(error)}", err=True)
        _exit(1)
    except BaseException as error:
        # SIGTERM inside a flow run is Prefect's TerminationSignal; a stop may also come back as
        # Lightning's exit(1) after its own Ctrl-C handling.
        if _is_prefect_termination(error):
            _stopped(signal.SIGTERM)
        if _stopped_by is None:
            raise
        _exit_stopped()
    if _stopped_by is not None:  # typer turns a KeyboardInterrupt into the return value 130
        _exit_stopped()
    _exit(code or 0)


def _send_the_project_password() -> None:
    """Commands given the project's server's address (PREFECT_API_URL) authenticate with its password
    (tasks/infra/project_server.py)."""
    if os.environ.get("PREFECT_API_URL"):
        from tasks.infra.project_server import adopt_project_auth
        from tasks.infra.settings import get_settings

        adopt_project_auth(get_settings())


def prepare_flow_run(debug: bool) -> None:
    """Before a flow run in this process: the Prefect API it reports to. Where a server has to boot
    (~10 s here), this process imports what the stages need meanwhile; where one answers already,
    each stage imports what it needs (a rerun with nothing to do needs few)."""
    prefect_ready = _prefect_api()
    if prefect_ready is not None:
        _import_stage_libraries()
        prefect_ready()
    import flows.training  # noqa: F401 - Prefect's console handler exists once its flows are defined

    if not debug:
        _first_lines_of_tracebacks_on_console()


def _prefect_api() -> Callable[[], None] | None:
    """The server PREFECT_API_URL (or the Prefect profile) names; else the project's server, started
    in the background where it does not run; else, with MLPIPE_PREFECT_SERVER=temporary, an API of
    this process's own. Returns the wait until it answers; None where it answers already."""
    from prefect.settings import PREFECT_API_URL

    from tasks.infra.local_servers import start_temporary_prefect_api
    from tasks.infra.project_server import temporary_servers

    if PREFECT_API_URL.value():
        return None
    if temporary_servers():
        return start_temporary_prefect_api()
    return project_server_ready()


def project_server_ready() -> Callable[[], None] | None:
    """This process's Prefect client calls the project's server (tasks/infra/project_server.py): at
    once where it runs (None), else once it has started in the background (the wait for it)."""
    from tasks.infra.params import load_params
    from tasks.infra.project_server import attach, attach_running, ensure_in_background
    from tasks.infra.settings import get_settings

    settings = get_settings()
    idle_minutes = load_params(settings).server.idle_minutes
    if attach_running(settings, idle_minutes):
        return None
    started = ensure_in_background(settings, idle_minutes)
    return lambda: attach(started(), settings, idle_minutes)


def _import_stage_libraries() -> None:
    import importlib

    modules = (
        "flows.training",
        "dvc.repo",
        "great_expectations",
        "lightning",
        "mlflow.pyfunc",
        "sklearn.model_selection",
    )
    for module in modules:
        importlib.import_module(module)


class _FirstLineOfTracebacks(logging.Formatter):
    """A console formatter that shows a failed run's traceback as its first line; the record
    itself, which Prefect's API handler also sends, keeps all of it."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        if not (record.exc_info or "Traceback (most recent call last)" in record.getMessage()):
            return self.inner.format(record)
        saved = record.exc_info, record.exc_text
        record.exc_info = record.exc_text = None
        try:
            return self.inner.format(record).split("\n", 1)[0]
        finally:
            record.exc_info, record.exc_text = saved


def _first_lines_of_tracebacks_on_console() -> None:
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers + logging.getLogger("prefect").handlers:
        if isinstance(handler, PrefectConsoleHandler) and not isinstance(handler.formatter, _FirstLineOfTracebacks):
            handler.setFormatter(_FirstLineOfTracebacks(handler.formatter or logging.Formatter()))


def _stopped(signum: int) -> None:
    global _stopped_by
    _stopped_by = _stopped_by or signum


def _stop_like_ctrl_c() -> None:
    """Ctrl-C and SIGTERM (`kill`, a scheduler stopping a job) unwind the process through every
    cleanup on the way out: SIGTERM's default would end it at once, leaving the temporary Prefect
    API and any training worker running. (Inside a flow run, Prefect's own SIGTERM handler does
    the same with its TerminationSignal.)"""

    def stop(signum, frame):
        _stopped(signum)
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # a background job of a script keeps ignoring it
            signal.signal(signum, stop)


def _exit_stopped() -> None:
    typer.echo("error: interrupted" if _stopped_by == signal.SIGINT else "error: terminated", err=True)
    _exit(128 + _stopped_by)


def _exit(code: int) -> None:
    """Exit without tearing down every module: with torch, Lightning, GX and MLflow loaded, the
    interpreter's own teardown takes ~2.6 s here. Exit handlers still run (Prefect's log and event
    workers drain, the temporary server stops), and the output is flushed."""
    import atexit

    # Private, and unavoidable: no public API runs the exit handlers without the teardown after them.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _is_usage_error(error: Exception) -> bool:
    """A command-line mistake (unknown option, bad value): click's UsageError, exit code 2. Typer
    keeps its copy of click private and exports only the BadParameter subclass: the class is known
    by what it has."""
    return getattr(error, "exit_code", None) == 2 and hasattr(error, "format_message")


def _is_prefect_termination(error: BaseException) -> bool:
    """Prefect's TerminationSignal: SIGTERM inside a flow run (raised only where Prefect is loaded)."""
    exceptions = sys.modules.get("prefect.exceptions")
    return exceptions is not None and isinstance(error, exceptions.TerminationSignal)


def _one_line(error: Exception) -> str:
    from tasks.infra.errors import MlpipeError, redact

    message = redact(" ".join(str(error).split()))  # a library's message may quote a URI with its password
    if isinstance(error, MlpipeError):
        return message
    if type(error).__name__ == "PrefectHTTPStatusError" and error.response.status_code == 401:
        return (
            f"the Prefect API at {redact(str(error.request.url.copy_with(path='/api')))} refused the call: "
            "set PREFECT_API_AUTH_STRING to its password (`mlpipe up` keeps the project's in .prefect/api-auth)"
        )
    return f"{type(error).__name__}: {message} (run with --debug for the traceback)"

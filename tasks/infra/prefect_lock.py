"""A lock every machine that shares a Prefect server sees: a global concurrency limit of one slot.

Prefect leases the slot and renews it while it is held, so a holder that dies frees it within
the lease (five minutes, unless the caller sets it). mlpipe's temporary API (a command-line run
with no server configured) is this process's alone: nothing locks through it.
"""

import functools
import os
from contextlib import ExitStack, contextmanager

from tasks.infra.errors import MlpipeError
from tasks.infra.runs import run_logger


def shared_prefect_api() -> bool:
    """A Prefect server that other machines may use too: PREFECT_API_URL, and not the temporary API."""
    from prefect.settings import PREFECT_API_URL

    from tasks.infra.local_servers import TEMPORARY_API

    api = PREFECT_API_URL.value()  # the environment or the active Prefect profile, as Prefect reads it
    return bool(api) and api != os.environ.get(TEMPORARY_API)


@contextmanager
def prefect_lock(limit: str, timeout: float | None, what: str, lease_seconds: float = 300, strict: bool = True):
    """Hold the one slot of the global concurrency limit `limit` (made if missing); wait at most
    `timeout` seconds (None: as long as it takes), saying once that it waits for `what`. A dead
    holder's slot frees within `lease_seconds`. Strict: stop the work when a renewal of the lease
    fails (the lock may be lost); not strict: go on (at worst, the work is done twice)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            found = client.read_global_concurrency_limit_by_name(limit)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=limit, limit=1))
            except ObjectAlreadyExists:
                pass  # another run created it first
            found = client.read_global_concurrency_limit_by_name(limit)
    # An edited limit locks nothing: two slots let two holders in, an inactive one lets everyone.
    if found.limit != 1 or not found.active:
        state = f"limit {found.limit}, {'active' if found.active else 'inactive'}"
        raise MlpipeError(
            f"Prefect concurrency limit {limit} ({state}) is no lock: it needs one active slot "
            f"(`prefect gcl update {limit} --limit 1 --enable`)"
        )
    slot = functools.partial(
        concurrency, limit, lease_duration=lease_seconds, strict=True, raise_on_lease_renewal_failure=strict
    )
    with ExitStack() as stack:
        try:
            stack.enter_context(slot(timeout_seconds=1))
        except TimeoutError:
            run_logger("mlpipe.locks").warning("waiting for %s (Prefect concurrency limit %s)", what, limit)
            try:
                stack.enter_context(slot(timeout_seconds=timeout))
            except TimeoutError:
                raise MlpipeError(f"{what} ({limit}) was held for more than {timeout:.0f} s") from None
        yield

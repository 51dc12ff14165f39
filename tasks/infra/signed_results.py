"""Prefect's cached task results, signed: a cached result is a pickle, and Prefect unpickles
whatever a result file says (its metadata even names the serializer), so whoever can write one
file in cache/ would run code on the next machine that reads it. Every file this storage writes
starts with an HMAC-SHA256 of the rest, keyed by a secret only the team's machines hold; a file
without a valid one is never handed to Prefect: the read fails, which Prefect takes as a cache
miss, said once here, and the task runs again and writes a signed result over it. The storage
blocks that do it are tasks/infra/result_blocks.py; this module imports no Prefect.

The secret: MLPIPE_CACHE_SECRET where set (the same on every machine); else, for results in the
object storage, a Prefect Secret block that the first run creates; else, for the project's own
outputs/cache, a random file in the project's git-ignored Prefect home, mode 0600.
"""

import hashlib
import hmac
import logging
import os
import secrets
from functools import cache

from tasks.infra.errors import MlpipeError
from tasks.infra.files import secret_file

MAGIC = b"mlpipe-signed-v1\n"
SECRET_ENV = "MLPIPE_CACHE_SECRET"
SECRET_BLOCK = "mlpipe-cache-secret"
_said: set[str] = set()  # paths whose refusal this process has logged already


def signed(content: bytes) -> bytes:
    return MAGIC + _mac(content).encode() + b"\n" + content


def verified(data: bytes, where: str) -> bytes:
    """The content of a signed file; ValueError (a cache miss to Prefect) for any other."""
    head, _, rest = data.partition(b"\n")
    mac, _, content = rest.partition(b"\n")
    if head + b"\n" != MAGIC or not hmac.compare_digest(mac, _mac(content).encode()):
        if where not in _said:
            _said.add(where)
            logging.getLogger("mlpipe.cache").warning(
                "cached result %s is unsigned or its signature does not match: not read, the task runs again", where
            )
        raise ValueError(f"{where}: not a result signed with this project's cache secret")
    return content


def _mac(content: bytes) -> str:
    return hmac.new(cache_secret(), content, hashlib.sha256).hexdigest()


@cache
def cache_secret() -> bytes:
    """The key of the signatures (see the module's docstring); read once per process."""
    from tasks.infra.settings import get_settings

    if value := os.environ.get(SECRET_ENV):
        return value.encode()
    settings = get_settings()
    if settings.storage_url is not None:
        return _secret_block().encode()
    return secret_file(settings.prefect_home / "cache.secret")


def _secret_block() -> str:
    from prefect.blocks.system import Secret

    try:
        return Secret.load(SECRET_BLOCK).get()
    except ValueError:  # none yet: the first run makes it (two at once: the later save fails, then loads)
        try:
            Secret(value=secrets.token_hex(32)).save(SECRET_BLOCK)
        except Exception:  # noqa: BLE001 - another machine saved it first
            pass
        try:
            return Secret.load(SECRET_BLOCK).get()
        except ValueError as error:
            what = f"the cache secret (Prefect Secret block {SECRET_BLOCK})"
            raise MlpipeError(f"{what} cannot be read: {error}") from None

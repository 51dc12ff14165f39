"""Files the pipeline writes and reads back, written whole or not at all: a kill mid-write leaves
the previous file (or none), never half of one."""

import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_whole(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed over `path` (atomic on POSIX) when the
    block ends without an error, deleted otherwise. A link is followed (its target is replaced),
    an existing file keeps its mode, and two writers of one path never share a temporary file."""
    path = path.resolve() if path.is_symlink() else path
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        os.chmod(partial, mode)  # not mkstemp's 0600, which would hide a shared project's files from its team
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_atomic(path: Path, content: str | bytes) -> Path:
    """`content` in `path`, whole or not at all (`replaced_whole`), flushed to the disk."""
    with replaced_whole(path) as partial, partial.open("wb") as out:
        out.write(content.encode() if isinstance(content, str) else content)
        out.flush()
        os.fsync(out.fileno())
    return path


def read_json(path: Path) -> dict | list | None:
    """The JSON in `path`, or None when it is missing or unreadable (cut short by a kill, a full disk)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in blocks: what proves a checkpoint is the one a result names."""
    import hashlib

    with Path(path).open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def secret_file(path: Path) -> bytes:
    """A random secret of this project kept in `path` (mode 0600), made on first use. Made whole
    before it is linked in place: two processes starting at once read the same one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_hex(32).encode())
        try:
            os.link(partial, path)  # fails if another process linked its own first: that one is kept
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    return path.read_bytes()

"""Files the pipeline writes and reads back, written whole or not at all: a kill mid-write leaves
the previous file (or none), never half of one."""

import json
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, content: str | bytes) -> Path:
    """Write to a temporary file beside `path`, then rename it over `path` (atomic on POSIX). A
    link is followed (its target is replaced), and an existing file keeps its mode."""
    path = path.resolve() if path.is_symlink() else path
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content.encode() if isinstance(content, str) else content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, mode)  # not mkstemp's 0600, which would hide a shared project's files from its team
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path


def read_json(path: Path) -> dict | list | None:
    """The JSON in `path`, or None when it is missing or unreadable (cut short by a kill, a full disk)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

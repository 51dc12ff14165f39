"""Prefect result storage whose files are signed (tasks/infra/signed_results.py): the project's
folder or an fsspec URL. Prefect blocks, subclasses of its file systems, so this module imports
Prefect (tests/test_layout.py lets it)."""

import asyncio
from pathlib import Path

from prefect.filesystems import LocalFileSystem, RemoteFileSystem

from tasks.infra.signed_results import signed, verified


class _Signed:
    """Signs what write_path writes and checks what read_path reads (sync and async alike)."""

    def read_path(self, path: str, _sync: bool | None = None) -> bytes:
        where, data = self._read_bytes(path)
        return verified(data, where)

    async def aread_path(self, path: str) -> bytes:
        return await asyncio.to_thread(self.read_path, path)

    def write_path(self, path: str, content: bytes, _sync: bool | None = None) -> str:
        return self._write_bytes(path, signed(content))

    async def awrite_path(self, path: str, content: bytes) -> str:
        return await asyncio.to_thread(self.write_path, path, content)


class SignedRemoteResults(_Signed, RemoteFileSystem):
    """An fsspec folder (s3://, gs://, ...) of signed files."""

    _block_type_name = "mlpipe signed results"
    _block_type_slug = "mlpipe-signed-results"

    def _read_bytes(self, path: str) -> tuple[str, bytes]:
        resolved = self._resolve_path(path)
        with self.filesystem.open(resolved, "rb") as file:
            return resolved, file.read()

    def _write_bytes(self, path: str, data: bytes) -> str:
        resolved = self._resolve_path(path)
        self.filesystem.makedirs(resolved.rsplit("/", 1)[0], exist_ok=True)
        with self.filesystem.open(resolved, "wb") as file:
            file.write(data)
        return resolved


class SignedLocalResults(_Signed, LocalFileSystem):
    """The project's folder of signed files."""

    _block_type_name = "mlpipe signed local results"
    _block_type_slug = "mlpipe-signed-local-results"

    def _read_bytes(self, path: str) -> tuple[str, bytes]:
        resolved = Path(self._resolve_path(path))
        if not resolved.is_file():
            raise ValueError(f"{resolved} is no file")  # as LocalFileSystem says it: a miss
        return str(resolved), resolved.read_bytes()

    def _write_bytes(self, path: str, data: bytes) -> str:
        resolved = Path(self._resolve_path(path))
        resolved.parent.mkdir(parents=True, exist_ok=True)
        resolved.write_bytes(data)
        return str(resolved)

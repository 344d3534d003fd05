"""Where uploaded documents live: a content-addressed blob store behind a small interface.

The default keeps files in a local folder, named by their SHA-256; another backend (an object
store) implements the same protocol. A blob is written to a temporary file in the target
folder and renamed into place, so a reader never sees half a file and a crash leaves at most
a stray temporary file.
"""

import asyncio
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol


class BlobNotFound(LookupError):
    pass


class BlobStore(Protocol):
    async def put(self, data: bytes) -> str:
        """Store `data`; return its reference (the same bytes always give the same reference)."""
        ...

    async def get(self, ref: str) -> bytes: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalFolderBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, ref: str) -> Path:
        digest = ref.removeprefix("sha256/")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise BlobNotFound(ref)
        return self.root / digest[:2] / digest

    async def put(self, data: bytes) -> str:
        ref = f"sha256/{sha256_hex(data)}"
        await asyncio.to_thread(self._write, self._path(ref), data)
        return ref

    async def get(self, ref: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(ref).read_bytes)
        except FileNotFoundError as exc:
            raise BlobNotFound(ref) from exc

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        if target.exists():  # content-addressed: the same name holds the same bytes
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            Path(temporary).replace(target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                Path(temporary).unlink()
            raise

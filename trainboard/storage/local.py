"""The local-disk backend: a URI is a path.

Writes go through a temporary file and an atomic rename, so readers never see half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from trainboard.storage.errors import PreconditionFailed, SymlinkLoop

_TEMP_PREFIX, _TEMP_SUFFIX = ".trainboard-", ".tmp"
_CHUNK_BYTES = 1024 * 1024


def _is_temporary(name: str) -> bool:
    return name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX)


def read_bytes(uri: str, start: int = 0) -> bytes:
    with Path(uri).open("rb") as f:
        f.seek(start)
        return f.read()


def download_range(uri: str, out: BinaryIO, start: int, end: int, generation: int | None = None) -> None:
    """Copy bytes ``start`` to ``end`` (exclusive) of the file into ``out``, a chunk at a time."""
    del generation  # a local file has no generations to check
    with Path(uri).open("rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(left, _CHUNK_BYTES))
            if not chunk:
                raise OSError(f"{uri} ended at byte {end - left}, expected {end}")
            out.write(chunk)
            left -= len(chunk)


def write_bytes(uri: str, data: bytes) -> None:
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary file of this writer's own (two writers of one path must not rename each other's), named
    # so that TensorBoard never takes it for an event file; then an atomic rename: readers never see half
    # a file.
    tmp = path.with_name(f"{_TEMP_PREFIX}{os.getpid()}-{threading.get_ident()}{_TEMP_SUFFIX}")
    tmp.write_bytes(data)
    tmp.replace(path)


def append(uri: str, data: bytes, size: int, seq: int) -> None:
    """Append ``data`` to the file (``size`` and ``seq`` matter only to GCS's compose)."""
    with open(uri, "ab") as f:
        f.write(data)


def exists(uri: str) -> bool:
    return Path(uri).exists()


def delete(uri: str) -> None:
    Path(uri).unlink(missing_ok=True)


def delete_folder(uri: str) -> None:
    for file_uri in list_files(uri):
        delete(file_uri)
    # Then the folders left empty, deepest first, the folder itself last: gone, as on GCS.
    folders = sorted((p for p in Path(uri).rglob("*") if p.is_dir() and not p.is_symlink()), reverse=True)
    for folder in [*folders, Path(uri)]:
        with contextlib.suppress(OSError):  # not empty (another writer's file) or already gone
            folder.rmdir()


def bucket_exists(uri: str) -> bool:
    return True  # a local path has no bucket


def folder_exists(uri: str) -> bool:
    return Path(uri).is_dir()


def truncate(uri: str, length: int) -> None:
    with open(uri, "r+b") as f:
        f.truncate(length)


def _generation(data: bytes) -> int:
    """A local file's generation is a hash of its content: a compare-and-swap on the content itself, so it
    cannot be fooled by coarse timestamps or reused inode numbers (and equal content is an equal state)."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") or 1  # 0 means "absent"


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path`` (``path.lock``), held while a local compare-and-swap runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_versioned(uri: str) -> tuple[bytes | None, int]:
    path = Path(uri)
    if not path.exists():
        return None, 0
    data = path.read_bytes()
    return data, _generation(data)


def write_if_generation(uri: str, data: bytes, generation: int) -> None:
    """A lock file serialises the compare and the atomic replace."""
    path = Path(uri)
    with _lock(path):
        if read_versioned(uri)[1] != generation:
            raise PreconditionFailed(f"{uri} is no longer at generation {generation}")
        write_bytes(uri, data)


def list_files(uri: str, skip_hidden: bool = False) -> list[str]:
    return sorted(_files(uri, skip_hidden))


def _files(folder: str, skip_hidden: bool, above: frozenset[tuple[int, int]] = frozenset()) -> Iterator[str]:
    """The regular files below ``folder``, symlinks followed; like os.walk, a folder that cannot be read
    lists as empty. os.scandir: each entry's type comes with the listing, no stat per file (8x faster than
    os.walk + isfile on 2,000 images). Another writer's temporary file is not content: a sync_dir running
    beside that writer would delete it under its feet. Hidden entries are not even entered (a .git of
    thousands of objects costs nothing). ``above``: (device, inode) of the folders on the way down, so a
    link back to one of them is a SymlinkLoop instead of the same files listed until the path is too long
    for the kernel."""
    try:
        entries = list(os.scandir(folder))
        here = above | {_identity(os.stat(folder))}
    except OSError:
        return
    for entry in entries:
        if skip_hidden and entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError as e:  # ELOOP: a link to itself, or a chain too long to resolve
            raise SymlinkLoop(entry.path) from e
        if is_dir:
            if entry.is_symlink() and _identity(entry.stat()) in here:
                raise SymlinkLoop(entry.path)
            yield from _files(entry.path, skip_hidden, here)
        elif entry.is_file() and not _is_temporary(entry.name):
            yield entry.path


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


def _stats(uri: str, skip_hidden: bool) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, stat) of every file list_files finds, as of the listing: a file another process
    deletes between the walk and its stat is left out, as a bucket listing taken a moment earlier would
    not have it either (concurrent promotes replace models/champion/ files)."""
    for path in _files(uri, skip_hidden):
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            continue
        yield Path(path).relative_to(uri).as_posix(), stat


def list_versions(uri: str, skip_hidden: bool = False) -> dict[str, tuple[int, int]]:
    """Locally the version is the modification time. The files are those list_files finds (links
    followed, as prepare_data reads them)."""
    return {rel: (stat.st_size, stat.st_mtime_ns) for rel, stat in _stats(uri, skip_hidden)}


def list_modified(uri: str) -> dict[str, tuple[int, float]]:
    """Every file below ``uri`` as ``{relative path: (size, modification time, seconds since the epoch)}``."""
    return {rel: (stat.st_size, stat.st_mtime) for rel, stat in _stats(uri, False)}


def upload_file(local_path: str | Path, uri: str) -> None:
    write_bytes(uri, Path(local_path).read_bytes())


def download_file(uri: str, local_path: str | Path) -> None:
    Path(local_path).write_bytes(Path(uri).read_bytes())

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
from typing import TYPE_CHECKING, BinaryIO

from trainboard.storage.errors import PreconditionFailed, SymlinkLoop

if TYPE_CHECKING:
    from _typeshed import SupportsWrite  # any object with write(bytes): a file, or a wrapper of one

_TEMP_PREFIX, _TEMP_SUFFIX = ".trainboard-", ".tmp"
_CHUNK_BYTES = 1024 * 1024


def _is_temporary(name: str) -> bool:
    return name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX)


def read_bytes(uri: str, start: int = 0) -> bytes:
    with Path(uri).open("rb") as f:
        f.seek(start)
        return f.read()


def download_range(
    uri: str, out: SupportsWrite[bytes], start: int, end: int, *, generation: int | None = None
) -> None:
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


@contextlib.contextmanager
def _written(uri: str, exclusive: bool = False) -> Iterator[BinaryIO]:
    """A file to write ``uri``'s new content into, put at ``uri`` once written: renamed onto it (readers
    never see half a file), or with ``exclusive`` hard-linked to it, which the kernel refuses
    (FileExistsError) when the name exists: a create-only write with no lock file in the folder."""
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary file of this writer's own (two writers of one path must not rename each other's), named
    # so that TensorBoard never takes it for an event file.
    tmp = path.with_name(f"{_TEMP_PREFIX}{os.getpid()}-{threading.get_ident()}{_TEMP_SUFFIX}")
    try:
        with tmp.open("wb") as f:
            yield f
        if exclusive:
            os.link(tmp, path)
        else:
            tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(uri: str, data: bytes) -> None:
    with _written(uri) as f:
        f.write(data)


def append(uri: str, local_path: str | Path, start: int, end: int, *, seq: int) -> None:
    """Append bytes ``start`` to ``end`` of the local file, a chunk at a time (``seq`` matters only to
    GCS's compose)."""
    with open(uri, "ab") as f:
        download_range(str(local_path), f, start, end)


def exists(uri: str) -> bool:
    return Path(uri).exists()


def delete(uri: str) -> None:
    Path(uri).unlink(missing_ok=True)


def delete_folder(uri: str) -> None:
    """Symbolic links are deleted, never followed: a link under checkpoints/ to a model folder takes the
    link away, not the model. Another writer's temporary file stays (and so does its folder)."""
    if Path(uri).is_symlink():
        Path(uri).unlink()
        return
    for folder, folders, files in os.walk(uri, topdown=False):  # os.walk does not enter linked folders
        for name in files:
            if not _is_temporary(name):
                Path(folder, name).unlink(missing_ok=True)
        for name in folders:
            sub = Path(folder, name)
            with contextlib.suppress(OSError):  # not empty (another writer's file) or already gone
                if sub.is_symlink():
                    sub.unlink()
                else:
                    sub.rmdir()
    with contextlib.suppress(OSError):  # the folder itself last: gone, as on GCS
        Path(uri).rmdir()


def bucket_exists(uri: str) -> bool:
    return True  # a local path has no bucket


def folder_exists(uri: str) -> bool:
    """PermissionError when the folder cannot be read: TensorBoard would show it as an empty board."""
    if not Path(uri).is_dir():
        return False
    with os.scandir(uri):
        return True


def truncate(uri: str, length: int) -> None:
    with open(uri, "r+b") as f:
        f.truncate(length)


def _generation(data: bytes) -> int:
    """A local file's generation is a hash of its content: a compare-and-swap on the content itself, so it
    cannot be fooled by coarse timestamps or reused inode numbers (and equal content is an equal state)."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") or 1  # 0 means "absent"


# One lock file a folder, not one a file: a file's own would stay behind it forever (every lease, every
# history entry), and a lock file is never deleted (a process may be waiting on it). Hidden: listings that
# skip hidden names never see it.
_FOLDER_LOCK = ".trainboard.lock"


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``'s folder, held while a local compare-and-swap runs there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / _FOLDER_LOCK, "a") as lock:
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
    """The regular files below ``folder``, symlinks followed; like os.walk, a folder below it that cannot
    be read lists as empty (the folder itself raises PermissionError). os.scandir: each entry's type comes
    with the listing, no stat per file (8x faster than os.walk + isfile on 2,000 images). Another writer's
    temporary file is not content: a sync_dir running beside that writer would delete it under its feet.
    Hidden entries are not even entered (a .git of thousands of objects costs nothing). ``above``: (device,
    inode) of the folders on the way down, so a link back to one of them is a SymlinkLoop instead of the
    same files listed until the path is too long for the kernel."""
    try:
        entries = list(os.scandir(folder))
        here = above | {_identity(os.stat(folder))}
    except PermissionError:
        if not above:
            raise  # the folder asked for: listed as empty, a mirror of it would delete every copy
        return
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


def list_checksums(uri: str) -> dict[str, tuple[int, int, int | None]]:
    """No checksum: a local file has none without reading it."""
    return {rel: (size, version, None) for rel, (size, version) in list_versions(uri).items()}


def list_modified(uri: str) -> dict[str, tuple[int, float]]:
    """Every file below ``uri`` as ``{relative path: (size, modification time, seconds since the epoch)}``."""
    return {rel: (stat.st_size, stat.st_mtime) for rel, stat in _stats(uri, False)}


def upload_file(local_path: str | Path, uri: str, length: int | None = None) -> None:
    end = os.path.getsize(local_path) if length is None else length
    with _written(uri) as f:
        download_range(str(local_path), f, 0, end)


def upload_new(local_path: str | Path, uri: str) -> None:
    """Create-only, whole when it appears (_written's exclusive link)."""
    try:
        with _written(uri, exclusive=True) as f:
            download_range(str(local_path), f, 0, os.path.getsize(local_path))
    except FileExistsError as e:
        raise PreconditionFailed(f"{uri} exists; it is never replaced") from e


def download_file(uri: str, local_path: str | Path) -> None:
    Path(local_path).write_bytes(Path(uri).read_bytes())

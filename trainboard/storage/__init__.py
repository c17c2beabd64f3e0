"""The one package through which trainboard reads and writes the team's storage.

Two kinds of URI: a local directory path and ``gs://BUCKET/PREFIX``. gs:// goes through
google-cloud-storage, which honours ``STORAGE_EMULATOR_HOST``: the same code runs against
fake-gcs-server in the tests and against real GCS (Workload Identity or any default credentials)
on a cluster.

This module is the public API: each function hands its URI to the backend of its scheme (backends.py:
local.py, gcs.py); copies between schemes are done here. uris.py holds the URI rules, mirror.py the
incremental mirrors of TensorBoard logs.
"""

from __future__ import annotations

from pathlib import Path

from trainboard.storage import gcs
from trainboard.storage.backends import backend_for
from trainboard.storage.errors import MirrorConflict, NoCredentials, PreconditionFailed, SymlinkLoop
from trainboard.storage.gcs import RETRY_DEADLINE_SECONDS
from trainboard.storage.mirror import BucketMirror, DirectoryMirror
from trainboard.storage.uris import GCS_SCHEME, StorageURIError, check_uri, is_gcs, join, split_gcs

__all__ = [
    "GCS_SCHEME",
    "RETRY_DEADLINE_SECONDS",
    "BucketMirror",
    "DirectoryMirror",
    "MirrorConflict",
    "NoCredentials",
    "PreconditionFailed",
    "StorageURIError",
    "SymlinkLoop",
    "bucket_exists",
    "check_uri",
    "copy_file",
    "delete",
    "delete_folder",
    "download_dir",
    "exists",
    "folder_exists",
    "is_gcs",
    "join",
    "list_files",
    "list_modified",
    "list_versions",
    "read_bytes",
    "read_versioned",
    "split_gcs",
    "sync_dir",
    "truncate",
    "upload_dir",
    "upload_file",
    "write_bytes",
    "write_if_generation",
]


def read_bytes(uri: str, start: int = 0) -> bytes:
    """The file's bytes from offset ``start`` to its end (on GCS one ranged request)."""
    return backend_for(uri).read_bytes(uri, start)


def write_bytes(uri: str, data: bytes) -> None:
    """Write the whole file; readers never see half of it (locally a temporary file and an atomic rename,
    on GCS one object upload, retried on transient errors)."""
    backend_for(uri).write_bytes(uri, data)


def exists(uri: str) -> bool:
    return backend_for(uri).exists(uri)


def delete(uri: str) -> None:
    """Delete the file; one that does not exist counts as deleted."""
    backend_for(uri).delete(uri)


def delete_folder(uri: str) -> None:
    """Delete every file below ``uri``, one by one, and the folder: on a local root the folders left empty
    go too, as a prefix without objects is gone on GCS."""
    backend_for(uri).delete_folder(uri)


def bucket_exists(uri: str) -> bool:
    """Whether the bucket of a gs:// URI exists (True for a local path)."""
    return backend_for(uri).bucket_exists(uri)


def folder_exists(uri: str) -> bool:
    """Whether ``uri`` is a folder (locally) or a bucket with something under the prefix (gs://)."""
    return backend_for(uri).folder_exists(uri)


def truncate(uri: str, length: int) -> None:
    """Cut the file at ``uri`` to its first ``length`` bytes (no-op when it is not longer)."""
    backend_for(uri).truncate(uri, length)


def read_versioned(uri: str) -> tuple[bytes | None, int]:
    """The file's bytes and generation, read as one consistent pair; ``(None, 0)`` when it does not exist.

    Pass the generation to write_if_generation to write only if nobody wrote in between.
    """
    return backend_for(uri).read_versioned(uri)


def write_if_generation(uri: str, data: bytes, generation: int) -> None:
    """Write ``data`` only if the file is still at ``generation`` (0: only if it does not exist);
    PreconditionFailed otherwise. On GCS the server checks it (``if_generation_match``); locally a lock
    file serialises the compare and the atomic replace."""
    backend_for(uri).write_if_generation(uri, data, generation)


def list_files(uri: str, skip_hidden: bool = False) -> list[str]:
    """Every file below ``uri`` (recursively), as full URIs, sorted; with ``skip_hidden``, none whose path
    below ``uri`` has a name starting with '.'. Locally symbolic links are followed, and a link back to a
    folder above it raises SymlinkLoop."""
    return backend_for(uri).list_files(uri, skip_hidden)


def list_versions(uri: str, skip_hidden: bool = False) -> dict[str, tuple[int, int]]:
    """Every file below ``uri`` as ``{relative path: (size, version)}``; version changes on every write.
    The files are those of list_files.

    On GCS this is one listing request per 1000 objects (the version is the object's generation);
    locally the version is the modification time.
    """
    return backend_for(uri).list_versions(uri, skip_hidden)


def list_modified(uri: str) -> dict[str, tuple[int, float]]:
    """Every file below ``uri`` as ``{relative path: (size, last modified, seconds since the epoch)}``:
    the files' modification times locally, the objects' ``updated`` time on GCS. One listing."""
    return backend_for(uri).list_modified(uri)


def upload_file(local_path: str | Path, uri: str) -> None:
    backend_for(uri).upload_file(local_path, uri)


# --- between backends --------------------------------------------------------------------------------------


def download_dir(uri: str, local_dir: str | Path) -> Path:
    """Copy every file below ``uri`` into ``local_dir`` (keeping relative paths); return local_dir."""
    local_dir = Path(local_dir)
    source = backend_for(uri)
    for file_uri in source.list_files(uri):
        dest = local_dir / file_uri[len(uri.rstrip("/")) + 1 :]
        dest.parent.mkdir(parents=True, exist_ok=True)
        source.download_file(file_uri, dest)
    return local_dir


def upload_dir(local_dir: str | Path, uri: str) -> None:
    for path in sorted(Path(local_dir).rglob("*")):
        if path.is_file():
            upload_file(path, join(uri, path.relative_to(local_dir).as_posix()))


def copy_file(source: str, dest: str) -> None:
    """Copy one file; bucket to bucket on the server side, without the bytes passing through here."""
    if is_gcs(source) and is_gcs(dest):
        gcs.copy(source, dest)
    elif is_gcs(source):
        write_bytes(dest, read_bytes(source))
    else:
        upload_file(source, dest)


def sync_dir(source: str, dest: str) -> None:
    """Make ``dest`` hold exactly the files below ``source``: copy each, then delete the files that
    ``source`` does not have. Readers of ``dest`` may see a mix while it runs (no directory is atomic on
    an object store)."""
    prefix = source.rstrip("/") + "/"
    wanted = {file_uri[len(prefix) :] for file_uri in list_files(source)}
    for rel in sorted(wanted):
        copy_file(join(source, rel), join(dest, rel))
    dest_prefix = dest.rstrip("/") + "/"
    for file_uri in list_files(dest):
        if file_uri[len(dest_prefix) :] not in wanted:
            delete(file_uri)

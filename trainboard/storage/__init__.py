"""The one package through which trainboard reads and writes the team's storage.

Two kinds of URI: a local directory path and ``gs://BUCKET/PREFIX``. gs:// goes through
google-cloud-storage, which honours ``STORAGE_EMULATOR_HOST``: the same code runs against
fake-gcs-server in the tests and against real GCS (Workload Identity or any default credentials)
on a cluster.

The package reads top-down: uris.py and errors.py hold the rules, local.py and gcs.py are the backends
(backends.py: what each provides and which serves a URI), copies.py and mirror.py (a
local folder sent up while it grows) are built on them. Who uses a folder for what (leases, the board's
mirror, retention) lives above this package.
This module is the public API and only chooses and re-exports: each function hands its URI to the
backend of its scheme; nothing inside the package imports it.
"""

from __future__ import annotations

from pathlib import Path

from trainboard.storage.backends import backend_for
from trainboard.storage.copies import copy_file, download_dir, sync_dir, upload_dir
from trainboard.storage.errors import MirrorConflict, NoCredentials, PreconditionFailed, SymlinkLoop
from trainboard.storage.gcs import RETRY_DEADLINE_SECONDS
from trainboard.storage.mirror import DirectoryMirror
from trainboard.storage.uris import GCS_SCHEME, StorageURIError, check_uri, is_gcs, join, split_gcs

__all__ = [
    "GCS_SCHEME",
    "RETRY_DEADLINE_SECONDS",
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
    "upload_new",
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


def upload_new(local_path: str | Path, uri: str) -> None:
    """Upload a file that must not exist yet (a write-once object); PreconditionFailed when it does."""
    backend_for(uri).upload_new(local_path, uri)

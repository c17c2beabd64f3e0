"""The GCS backend: ``gs://BUCKET/NAME`` through google-cloud-storage.

google-cloud-storage honours ``STORAGE_EMULATOR_HOST``: the same code runs against fake-gcs-server in the
tests and against real GCS (Workload Identity or any default credentials) on a cluster. How it is reached,
and the retry policy of writes: gcs_client.py (``set_client`` injects a client).

Idempotency: every write that goes through ``retrying`` is safe to run again after a failure whose answer
was lost: whole-object writes, a delete that counts "already gone" as done, and an append that checks
the object's size before composing.
"""

from __future__ import annotations

import base64
import contextlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from trainboard import faults
from trainboard.storage.errors import MirrorConflict, PreconditionFailed
from trainboard.storage.gcs_client import RETRY_DEADLINE_SECONDS as RETRY_DEADLINE_SECONDS
from trainboard.storage.gcs_client import client, retrying
from trainboard.storage.gcs_client import set_client as set_client
from trainboard.storage.uris import GCS_SCHEME, is_hidden, split_gcs

if TYPE_CHECKING:
    from _typeshed import SupportsWrite
    from google.cloud.storage import Blob

# Each ranged request of download_range fetches at most this many bytes (a multiple of 256 KiB, as GCS
# requires of a chunk size): the mirror's memory is bounded by this, not by the size of an event file.
DOWNLOAD_CHUNK_BYTES = 4 * 1024 * 1024
# Uploads go up in resumable chunks of this many bytes (a multiple of 256 KiB), not in the client's default
# 100 MiB ones nor as one bytes object: the trainer's memory does not grow with an event file's size. 8 MiB
# (GCS's advised least) took twice as long as 16 MiB with 300 + 100 MiB against fake-gcs-server.
UPLOAD_CHUNK_BYTES = 16 * 1024 * 1024


def _blob(uri: str) -> Blob:
    bucket, name = split_gcs(uri)
    return client().bucket(bucket).blob(name)


def _delete_blob(blob: Blob) -> None:
    """Delete; already gone counts as done (an earlier attempt may have deleted it without an answer)."""
    from google.api_core.exceptions import NotFound

    with contextlib.suppress(NotFound):
        blob.delete(retry=None)


# --- the backend's operations (see backends.Backend) -------------------------------------------------------


def read_bytes(uri: str, start: int = 0) -> bytes:
    return _blob(uri).download_as_bytes(start=start or None)  # one ranged request


def download_range(
    uri: str, out: SupportsWrite[bytes], start: int, end: int, *, generation: int | None = None
) -> None:
    """Write bytes ``start`` to ``end`` (exclusive) of the object into ``out``, streamed in chunks of
    ``DOWNLOAD_CHUNK_BYTES`` (one ranged request each): memory stays bounded whatever the object's size. With
    ``generation``, only that version of the object. Raises PreconditionFailed when the object was replaced
    meanwhile, FileNotFoundError when it is gone."""
    if end <= start:
        return
    bucket, name = split_gcs(uri)
    # That generation (?generation=N on every ranged request): 404 once it is no longer the live object.
    blob = client().bucket(bucket).blob(name, chunk_size=DOWNLOAD_CHUNK_BYTES, generation=generation)
    # raw_download: the bytes as stored (event files are not gzip-encoded; a range of a decoded stream
    # would not be one anyway).
    from google.api_core import exceptions

    try:
        blob.download_to_file(
            out, start=start, end=end - 1, if_generation_match=generation, raw_download=True
        )
    except exceptions.PreconditionFailed as e:
        raise PreconditionFailed(f"{uri} is no longer at generation {generation}") from e
    except exceptions.NotFound as e:
        raise FileNotFoundError(f"{uri}: no such object") from e


def write_bytes(uri: str, data: bytes) -> None:
    # A whole-object write: running it again is harmless.
    retrying(f"write {uri}", lambda: _blob(uri).upload_from_string(data, retry=None))


class _FileRange:
    """Bytes ``start`` to ``end`` of an open file as a stream of their own (its position 0 is ``start``):
    a resumable upload reads it a chunk at a time, and seeks back in it to send a chunk again."""

    def __init__(self, f: BinaryIO, start: int, end: int) -> None:
        self._f, self._start, self._end = f, start, end
        f.seek(start)

    def tell(self) -> int:
        return self._f.tell() - self._start

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: self._start, os.SEEK_CUR: self._f.tell(), os.SEEK_END: self._end}[whence]
        self._f.seek(base + offset)
        return self.tell()

    def read(self, size: int = -1) -> bytes:
        left = self._end - self._f.tell()
        return self._f.read(left if size < 0 else min(size, left))


def _upload_range(blob: Blob, local_path: str | Path, start: int, end: int) -> None:
    """Bytes ``start`` to ``end`` of the local file as the whole object, streamed in UPLOAD_CHUNK_BYTES."""
    blob.chunk_size = UPLOAD_CHUNK_BYTES
    with open(local_path, "rb") as f:
        blob.upload_from_file(_FileRange(f, start, end), size=end - start, retry=None)


def append(uri: str, local_path: str | Path, start: int, end: int, *, seq: int) -> None:
    """Append bytes ``start`` to ``end`` of the local file to the object, which holds the ``start`` bytes
    before them: they go up, streamed, as a small part object (the ``seq``-th append to this object names
    it), composed onto the object with a generation precondition, then deleted."""
    blob = _blob(uri)
    # The part's name must not contain "tfevents": TensorBoard would read it as an event file.
    folder, _, name = blob.name.rpartition("/")
    part = blob.bucket.blob(f"{folder}/.append-{zlib.crc32(name.encode()):08x}-{seq}")

    def attempt() -> None:
        # Idempotent on retry: a compose whose answer was lost has already made the object ``end`` bytes
        # long, and is not run again; the generation precondition stops a compose onto anything else.
        blob.reload(retry=None)
        if blob.size == end:
            return
        if blob.size != start:
            raise MirrorConflict(f"{uri} is {blob.size} bytes, expected {start}: written by another writer")
        _upload_range(part, local_path, start, end)
        faults.fault_pause("upload")
        blob.compose([blob, part], if_generation_match=blob.generation, retry=None)

    try:
        retrying(f"append to {uri}", attempt)
    finally:
        retrying(f"delete {part.name}", lambda: _delete_blob(part))


def exists(uri: str) -> bool:
    return _blob(uri).exists()


def delete(uri: str) -> None:
    retrying(f"delete {uri}", lambda: _delete_blob(_blob(uri)))


def delete_folder(uri: str) -> None:
    for file_uri in list_files(uri):
        delete(file_uri)


def bucket_exists(uri: str) -> bool:
    return client().bucket(split_gcs(uri)[0]).exists()


def folder_exists(uri: str) -> bool:
    """The bucket exists and, below a prefix, holds at least one object (GCS has no empty folders).
    A prefix is only listed: that needs storage.objects.list (roles/storage.objectViewer), not the
    bucket's own metadata. PermissionError when these credentials may not look."""
    from google.api_core.exceptions import NotFound

    bucket, prefix = _bucket_and_prefix(uri)
    with _listing_allowed(uri):
        if not prefix:
            return client().bucket(bucket).exists()
        try:
            return any(client().list_blobs(bucket, prefix=prefix, max_results=1))
        except NotFound:  # no such bucket
            return False


def truncate(uri: str, length: int) -> None:
    blob = _blob(uri)
    blob.reload()
    if blob.size > length:
        head = blob.download_as_bytes(end=length - 1) if length else b""
        blob.upload_from_string(head, if_generation_match=blob.generation)


def read_versioned(uri: str) -> tuple[bytes | None, int]:
    from google.api_core import exceptions

    bucket, name = split_gcs(uri)
    while True:
        blob = client().bucket(bucket).get_blob(name)
        if blob is None:
            return None, 0
        try:
            return blob.download_as_bytes(if_generation_match=blob.generation), blob.generation
        except (exceptions.PreconditionFailed, exceptions.NotFound):
            continue  # replaced or deleted between the metadata and the download: read again


def write_if_generation(uri: str, data: bytes, generation: int) -> None:
    """The server checks the generation (``if_generation_match``)."""
    from google.api_core import exceptions

    try:
        _blob(uri).upload_from_string(data, if_generation_match=generation)
    except exceptions.PreconditionFailed as e:
        raise PreconditionFailed(f"{uri} is no longer at generation {generation}") from e


def _bucket_and_prefix(uri: str) -> tuple[str, str]:
    """The bucket, and the prefix of the names below ``uri`` ("" for a whole bucket)."""
    bucket, prefix = split_gcs(uri)
    return bucket, prefix + "/" if prefix else ""


@contextlib.contextmanager
def _listing_allowed(uri: str) -> Iterator[None]:
    """A 403 as a PermissionError naming the prefix: a listing refused must not pass for an empty one."""
    from google.api_core.exceptions import Forbidden

    try:
        yield
    except Forbidden as e:
        raise PermissionError(f"{uri}: these credentials may not list it ({e.message})") from None


def _listed(uri: str, fields: str, skip_hidden: bool = False) -> Iterator[tuple[str, Blob]]:
    """(name below ``uri``, blob with ``fields``) of every object: one request per 1000 objects."""
    bucket, prefix = _bucket_and_prefix(uri)
    with _listing_allowed(uri):
        for b in client().list_blobs(bucket, prefix=prefix, fields=f"items({fields}),nextPageToken"):
            rel = b.name[len(prefix) :]
            if not (skip_hidden and is_hidden(rel)):
                yield rel, b


def list_files(uri: str, skip_hidden: bool = False) -> list[str]:
    bucket = split_gcs(uri)[0]
    return sorted(f"{GCS_SCHEME}{bucket}/{b.name}" for _, b in _listed(uri, "name", skip_hidden))


def list_versions(uri: str, skip_hidden: bool = False) -> dict[str, tuple[int, int]]:
    """The version is the object's generation."""
    return {rel: (b.size, b.generation) for rel, b in _listed(uri, "name,size,generation", skip_hidden)}


def list_checksums(uri: str) -> dict[str, tuple[int, int, int | None]]:
    """The object's CRC32C too: GCS keeps one of every object's whole content, composed ones included."""
    return {
        rel: (b.size, b.generation, int.from_bytes(base64.b64decode(b.crc32c), "big") if b.crc32c else None)
        for rel, b in _listed(uri, "name,size,generation,crc32c")
    }


def list_modified(uri: str) -> dict[str, tuple[int, float]]:
    """The time is the object's ``updated``."""
    return {
        rel: (b.size, b.updated.timestamp() if b.updated else 0.0)
        for rel, b in _listed(uri, "name,size,updated")
    }


def upload_file(local_path: str | Path, uri: str, length: int | None = None) -> None:
    end = os.path.getsize(local_path) if length is None else length
    retrying(f"upload {uri}", lambda: _upload_range(_blob(uri), local_path, 0, end))


def upload_new(local_path: str | Path, uri: str) -> None:
    """Create-only: the server refuses it when the object exists (``if_generation_match=0``)."""
    from google.api_core import exceptions

    try:
        _blob(uri).upload_from_filename(str(local_path), if_generation_match=0)
    except exceptions.PreconditionFailed as e:
        raise PreconditionFailed(f"{uri} exists; it is never replaced") from e


def download_file(uri: str, local_path: str | Path) -> None:
    _blob(uri).download_to_filename(str(local_path))


def copy(source: str, dest: str) -> None:
    """Bucket to bucket on the server side, without the bytes passing through here."""
    src = _blob(source)
    dest_bucket, dest_name = split_gcs(dest)
    src.bucket.copy_blob(src, client().bucket(dest_bucket), dest_name)

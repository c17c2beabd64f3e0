"""The GCS backend: ``gs://BUCKET/NAME`` through google-cloud-storage.

google-cloud-storage honours ``STORAGE_EMULATOR_HOST``: the same code runs against fake-gcs-server in the
tests and against real GCS (Workload Identity or any default credentials) on a cluster. The Google
libraries are imported on first use, so that ``import trainboard.storage`` stays cheap for the CLI.

Idempotency: every write that goes through ``retrying`` is safe to run again after a failure whose answer
was lost: whole-object writes, a delete that counts "already gone" as done, and an append that checks
the object's size before composing. The client library's own retry is off there (``retry=None``): one
retry policy, ours, with one log.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar, cast

from trainboard import faults
from trainboard.storage.errors import MirrorConflict, NoCredentials, PreconditionFailed
from trainboard.storage.uris import GCS_SCHEME, is_hidden, split_gcs

if TYPE_CHECKING:
    from google.cloud.storage import Blob, Client

log = logging.getLogger("trainboard.storage")
T = TypeVar("T")

# Each ranged request of download_range fetches at most this many bytes (a multiple of 256 KiB, as GCS
# requires of a chunk size): the mirror's memory is bounded by this, not by the size of an event file.
DOWNLOAD_CHUNK_BYTES = 4 * 1024 * 1024

# Bounded retries of the writes training depends on: a storage outage of up to about two minutes
# delays training instead of killing it. Delays double from 0.5 s up to 8 s; api-core draws each sleep
# at random below that bound (full jitter), so that many writers do not retry in step.
RETRY_DEADLINE_SECONDS = 120.0
_FIRST_DELAY, _MAX_DELAY, _MULTIPLIER = 0.5, 8.0, 2.0


# --- the client --------------------------------------------------------------------------------------------

_injected: Client | None = None


@functools.cache
def _default_client() -> Client:
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(credentials=AnonymousCredentials(), project="trainboard-emulator")
    from google.auth.exceptions import DefaultCredentialsError

    try:
        return storage.Client()
    except DefaultCredentialsError:
        raise NoCredentials(
            "no Google Cloud credentials found to reach gs://; run `gcloud auth application-default login`, "
            "or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
        ) from None


def client() -> Client:
    """The client of every gs:// operation: the one given to set_client, else a default made once
    (anonymous, project "trainboard-emulator" when STORAGE_EMULATOR_HOST is set; default credentials
    otherwise)."""
    return _injected if _injected is not None else _default_client()


def set_client(new: Client | None) -> None:
    """Use ``new`` for every gs:// operation from now on. None: back to the default, made afresh at the
    next use (it reads STORAGE_EMULATOR_HOST then)."""
    global _injected
    _injected = new
    _default_client.cache_clear()


def _blob(uri: str) -> Blob:
    bucket, name = split_gcs(uri)
    return client().bucket(bucket).blob(name)


# --- retries -----------------------------------------------------------------------------------------------


@functools.cache
def _transient_errors() -> tuple[type[Exception], ...]:
    """What a retry can cure: no connection, a timeout, a 429 or 5xx answer."""
    import requests
    from google.api_core import exceptions as api
    from google.auth.exceptions import TransportError

    return (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
        TransportError,
        api.TooManyRequests,
        api.InternalServerError,
        api.BadGateway,
        api.ServiceUnavailable,
        api.GatewayTimeout,
    )


def retrying(what: str, fn: Callable[[], T], timeout: float = RETRY_DEADLINE_SECONDS) -> T:
    """``fn()``, retried on transient errors with exponential backoff until ``timeout`` seconds have
    passed; each retry is logged (attempt, error), giving up is logged and raises fn's last error itself
    (not api-core's RetryError). ``fn`` must be safe to run again after a failure.

    api-core's retry loop, ``retry_target``: the function that ``Retry`` runs, called directly because
    ``Retry`` does not pass on ``exception_factory`` (api-core 2.44), which makes giving up raise fn's error.
    """
    from google.api_core.retry import (
        RetryFailureReason,
        exponential_sleep_generator,
        if_exception_type,
        retry_target,
    )

    start, failures = time.monotonic(), cast(list[Exception], [])

    def attempt() -> T:
        # Logged here, when the retry really happens: after a failure api-core calls on_error before it
        # knows whether the deadline allows another attempt.
        if failures:
            log.warning("storage: %s: attempt %d failed (%s); retrying", what, len(failures), failures[-1])
        return fn()

    def give_up(
        errors: list[Exception], reason: RetryFailureReason, _timeout: float | None
    ) -> tuple[Exception, BaseException | None]:
        last = errors[-1]
        if reason == RetryFailureReason.TIMEOUT:
            waited = time.monotonic() - start
            log.error("storage: %s failed after %d attempts in %.0f s: %s", what, len(errors), waited, last)
        return last, last.__cause__ or last.__context__  # raised with the chain it had

    result = retry_target(
        attempt,
        if_exception_type(*_transient_errors()),
        exponential_sleep_generator(_FIRST_DELAY, _MAX_DELAY, _MULTIPLIER),
        timeout=timeout,
        on_error=failures.append,
        exception_factory=give_up,
    )
    return cast(T, result)


def _delete_blob(blob: Blob) -> None:
    """Delete; already gone counts as done (an earlier attempt may have deleted it without an answer)."""
    from google.api_core.exceptions import NotFound

    with contextlib.suppress(NotFound):
        blob.delete(retry=None)


# --- the backend's operations (see backends.Backend) -------------------------------------------------------


def read_bytes(uri: str, start: int = 0) -> bytes:
    return _blob(uri).download_as_bytes(start=start or None)  # one ranged request


def download_range(uri: str, out: BinaryIO, start: int, end: int, generation: int | None = None) -> None:
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


def append(uri: str, data: bytes, size: int, seq: int) -> None:
    """Append ``data`` to the object, which holds the ``size`` bytes written so far: ``data`` goes up as a
    small part object (the ``seq``-th append to this object names it), composed onto the object with a
    generation precondition, then deleted."""
    blob = _blob(uri)
    # The part's name must not contain "tfevents": TensorBoard would read it as an event file.
    folder, _, name = blob.name.rpartition("/")
    part = blob.bucket.blob(f"{folder}/.append-{zlib.crc32(name.encode()):08x}-{seq}")

    def attempt() -> None:
        # Idempotent on retry: a compose whose answer was lost has already made the object size+data
        # long, and is not run again; the generation precondition stops a compose onto anything else.
        blob.reload(retry=None)
        if blob.size == size + len(data):
            return
        if blob.size != size:
            raise MirrorConflict(f"{uri} is {blob.size} bytes, expected {size}: written by another writer")
        part.upload_from_string(data, retry=None)
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
    """The bucket exists and, below a prefix, holds at least one object (GCS has no empty folders)."""
    bucket, prefix = _bucket_and_prefix(uri)
    if not client().bucket(bucket).exists():
        return False
    return not prefix or any(client().list_blobs(bucket, prefix=prefix, max_results=1))


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


def list_files(uri: str, skip_hidden: bool = False) -> list[str]:
    bucket, prefix = _bucket_and_prefix(uri)
    return sorted(
        f"{GCS_SCHEME}{bucket}/{b.name}"
        for b in client().list_blobs(bucket, prefix=prefix)
        if not (skip_hidden and is_hidden(b.name[len(prefix) :]))
    )


def list_versions(uri: str, skip_hidden: bool = False) -> dict[str, tuple[int, int]]:
    """One listing request per 1000 objects; the version is the object's generation."""
    bucket, prefix = _bucket_and_prefix(uri)
    fields = "items(name,size,generation),nextPageToken"
    return {
        b.name[len(prefix) :]: (b.size, b.generation)
        for b in client().list_blobs(bucket, prefix=prefix, fields=fields)
        if not (skip_hidden and is_hidden(b.name[len(prefix) :]))
    }


def list_modified(uri: str) -> dict[str, tuple[int, float]]:
    """One listing request per 1000 objects; the time is the object's ``updated``."""
    bucket, prefix = _bucket_and_prefix(uri)
    fields = "items(name,size,updated),nextPageToken"
    return {
        b.name[len(prefix) :]: (b.size, b.updated.timestamp() if b.updated else 0.0)
        for b in client().list_blobs(bucket, prefix=prefix, fields=fields)
    }


def upload_file(local_path: str | Path, uri: str) -> None:
    retrying(f"upload {uri}", lambda: _blob(uri).upload_from_filename(str(local_path), retry=None))


def download_file(uri: str, local_path: str | Path) -> None:
    _blob(uri).download_to_filename(str(local_path))


def copy(source: str, dest: str) -> None:
    """Bucket to bucket on the server side, without the bytes passing through here."""
    src = _blob(source)
    dest_bucket, dest_name = split_gcs(dest)
    src.bucket.copy_blob(src, client().bucket(dest_bucket), dest_name)

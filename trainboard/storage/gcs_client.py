"""How every gs:// operation reaches GCS: the client (injectable; the emulator's when
``STORAGE_EMULATOR_HOST`` is set) and the one retry policy of the writes (``retrying``).

Idempotency: every write that goes through ``retrying`` must be safe to run again after a failure whose
answer was lost. The client library's own retry is off there (``retry=None``): one retry policy, ours,
with one log. The Google libraries are imported on first use, so that ``import trainboard.storage`` stays
cheap for the CLI.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from trainboard.storage.errors import NoCredentials

if TYPE_CHECKING:
    from google.cloud.storage import Client

log = logging.getLogger("trainboard.storage")
T = TypeVar("T")

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
        # api_core types the cause Exception | None; it does `raise final from cause`: any BaseException
        exception_factory=give_up,  # type: ignore[arg-type]
    )
    return cast(T, result)

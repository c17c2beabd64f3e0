"""URI rules: which URIs trainboard stores to, and how they are split, checked and joined.

Two kinds: a local directory path and ``gs://BUCKET/PREFIX``.
"""

from __future__ import annotations

import re
from pathlib import Path

GCS_SCHEME = "gs://"
# GCS bucket naming rules (the common subset): 3-63 chars, lowercase letters, digits, - _ .
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class StorageURIError(ValueError):
    """A URI that trainboard cannot store to; the message says what is allowed."""


def is_gcs(uri: str) -> bool:
    return uri.startswith(GCS_SCHEME)


def split_gcs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``."""
    bucket, _, prefix = uri[len(GCS_SCHEME) :].partition("/")
    return bucket, prefix.strip("/")


def check_uri(uri: str) -> str:
    """Return ``uri`` normalised, or raise StorageURIError saying what is wrong and what is allowed."""
    allowed = "a local directory path or gs://BUCKET[/PREFIX]"
    if not uri or not uri.strip():
        raise StorageURIError(f"empty; expected {allowed}")
    if is_gcs(uri):
        bucket, prefix = split_gcs(uri)
        if not _BUCKET_RE.match(bucket):
            raise StorageURIError(
                f"{uri!r} has no valid bucket name (3-63 of a-z 0-9 . _ -); expected {allowed}"
            )
        if ".." in prefix.split("/"):
            raise StorageURIError(f"{uri!r} contains '..'; expected {allowed}")
        return f"{GCS_SCHEME}{bucket}/{prefix}".rstrip("/")
    if _SCHEME_RE.match(uri):
        scheme = uri.split("://", 1)[0]
        raise StorageURIError(f"scheme {scheme}:// is not supported in {uri!r}; expected {allowed}")
    return str(Path(uri).expanduser().absolute())


def is_hidden(relative: str) -> bool:
    """Whether a path below a folder is hidden: a name on it starts with '.' (.git, .ipynb_checkpoints,
    .DS_Store), as ls and file managers hide it."""
    return any(name.startswith(".") for name in relative.split("/"))


def join(uri: str, *parts: str) -> str:
    """``uri`` with ``parts`` appended: with ``/`` on gs://, as a path locally."""
    if is_gcs(uri):
        return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(uri, *parts))

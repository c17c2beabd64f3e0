"""The errors both backends raise (apart from StorageURIError, in uris.py)."""

from __future__ import annotations


class PreconditionFailed(Exception):
    """A conditional write lost: the file changed (or appeared) since its generation was read."""


class MirrorConflict(RuntimeError):
    """The mirrored object changed under the mirror: appending would corrupt it."""


class NoCredentials(RuntimeError):
    """gs:// needs Google Cloud credentials and none were found; the message says how to provide them."""

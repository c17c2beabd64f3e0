"""The storage root every command and task names: checked (a local folder or gs://, writable where this
machine writes next) before any work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from trainboard import storage
from trainboard.checks import check_visible
from trainboard.errors import UsageError


def checked_uri(uri: str, field: str) -> str:
    """storage.check_uri's normal form of ``uri``, or its refusal as a UsageError naming ``field``."""
    try:
        return storage.check_uri(uri)
    except storage.StorageURIError as e:
        raise UsageError(field, str(e)) from None


def root_exists(root: str, field: str = "root") -> bool:
    """Whether ``root`` (checked) holds anything: a folder, or objects under the gs:// prefix; UsageError
    naming ``field`` when gs:// has no credentials to look with."""
    try:
        return storage.folder_exists(root)
    except storage.NoCredentials as e:
        raise UsageError(field, str(e)) from None


def check_root(root: str, will_write: bool = False) -> str:
    """The storage root, normalised; UsageError when it is neither a local path nor gs://, when it starts or
    ends with a space, or, with ``will_write`` (this machine writes there next), when it is a local path
    that is not a writable folder (nor can be made one) or a bucket that does not exist or cannot be
    reached with these credentials."""
    check_visible("root", root)
    if root.strip() and root != root.strip():
        # A stray space from a copied path makes a folder named " x" beside "x": nobody means that.
        raise UsageError("root", f"{root!r} starts or ends with a space; remove it")
    root = checked_uri(root, "root")
    if will_write and not storage.is_gcs(root):
        _check_writable_folder(Path(root))
    if will_write and storage.is_gcs(root):
        bucket = storage.split_gcs(root)[0]
        try:
            exists = storage.bucket_exists(root)
        except storage.NoCredentials as e:
            raise UsageError("root", str(e)) from None
        if not exists:
            raise UsageError(
                "root",
                f"bucket {bucket} does not exist or these credentials cannot see it; expected an existing "
                f"bucket (create it: gcloud storage buckets create gs://{bucket}) or a local directory",
            )
    return root


def _check_writable_folder(path: Path) -> None:
    """``path`` is a folder this user can write in, or does not exist yet and its nearest existing
    parent is one (it is made there)."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError("root", f"{existing} is a file; expected a folder (or a path to make one)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(
            "root", f"{existing} is not writable by this user; expected a folder you can write in"
        )
    # os.access says yes to root on /proc, /sys or a read-only mount: a file made and gone at once asks
    # the file system itself (O_TMPFILE where it has it: no name ever appears).
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as e:
        raise UsageError(
            "root", f"{existing} cannot hold files ({e.strerror}); expected a folder on a writable disk"
        ) from None

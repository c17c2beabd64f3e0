"""The storage root every command and task names: checked (a local folder or gs://, writable where this
machine writes next) before any work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from trainboard import storage
from trainboard.checks import check_visible
from trainboard.errors import UsageError

# The most a root's own layout adds below it (leases/, checkpoints/<run>/, tensorboard/<run>/evaluation/
# and an event file named for the host: a run name is at most 100 characters): a root longer than the
# file system's limit less this would fail at a file deep in a run, not before it.
LONGEST_BELOW_ROOT = 320
GCS_NAME_BYTES = 1024  # an object name's limit (cloud.google.com/storage/docs/objects#naming)


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
    check_length(root)
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


def check_length(root: str) -> None:
    """UsageError when ``root`` (checked) is too long for where it is: a folder name over the file system's
    NAME_MAX, or a path (an object name on gs://) so long that the files a run writes below it would be
    over the limit. Without it the first os.stat of such a path raises ENAMETOOLONG: a traceback."""
    if storage.is_gcs(root):
        length, limit, what = len(storage.split_gcs(root)[1].encode()), GCS_NAME_BYTES, "gs:// object names"
    else:
        existing = next((p for p in Path(root).parents if os.path.isdir(p)), Path("/"))
        name_max = os.pathconf(existing, "PC_NAME_MAX")
        for name in Path(root).parts:
            if len(os.fsencode(name)) > name_max:
                raise UsageError(
                    "root",
                    f"the folder name {name[:16]}... is {len(os.fsencode(name))} bytes long; this file "
                    f"system holds names of at most {name_max}: use a shorter one",
                )
        length, limit, what = len(os.fsencode(root)), os.pathconf(existing, "PC_PATH_MAX"), "paths here"
    if length + LONGEST_BELOW_ROOT > limit:
        raise UsageError(
            "root",
            f"{root[:40]}... is {length} bytes long: the files a run writes below it would be longer than "
            f"{what} may be ({limit} bytes); use a root of at most {limit - LONGEST_BELOW_ROOT} bytes",
        )


def _check_writable_folder(path: Path) -> None:
    """``path`` is a folder this user can write in, or does not exist yet and its nearest existing
    parent is one (it is made there)."""
    existing = next(p for p in (path, *path.parents) if os.path.lexists(p))
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

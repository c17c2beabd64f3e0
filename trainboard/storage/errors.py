"""The errors both backends raise (apart from StorageURIError, in uris.py)."""

from __future__ import annotations


class PreconditionFailed(Exception):
    """A conditional write lost: the file changed (or appeared) since its generation was read."""


class MirrorConflict(RuntimeError):
    """The mirrored object changed under the mirror: appending would corrupt it."""


class NoCredentials(RuntimeError):
    """gs:// needs Google Cloud credentials and none were found; the message says how to provide them."""


class SymlinkLoop(OSError):
    """A local folder holds a symbolic link back to a folder that contains it (or to itself): following it
    would list the same files forever. ``path``: the link."""

    def __init__(self, path: str):
        super().__init__(f"{path} is a symbolic link back to a folder that contains it")
        self.path = path

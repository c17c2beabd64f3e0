"""Copies between backends (and within one): whole folders and single files, each file through the
backend of its URI."""

from __future__ import annotations

from pathlib import Path

from trainboard.storage.backends import backend_for
from trainboard.storage.gcs import copy as copy_in_gcs
from trainboard.storage.uris import is_gcs, join


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
            backend_for(uri).upload_file(path, join(uri, path.relative_to(local_dir).as_posix()))


def copy_file(source: str, dest: str) -> None:
    """Copy one file; bucket to bucket on the server side, without the bytes passing through here."""
    if is_gcs(source) and is_gcs(dest):
        copy_in_gcs(source, dest)
    elif is_gcs(source):
        backend_for(dest).write_bytes(dest, backend_for(source).read_bytes(source))
    else:
        backend_for(dest).upload_file(source, dest)


def sync_dir(source: str, dest: str) -> None:
    """Make ``dest`` hold exactly the files below ``source``: copy each, then delete the files that
    ``source`` does not have. Readers of ``dest`` may see a mix while it runs (no directory is atomic on
    an object store)."""
    prefix = source.rstrip("/") + "/"
    wanted = {file_uri[len(prefix) :] for file_uri in backend_for(source).list_files(source)}
    for rel in sorted(wanted):
        copy_file(join(source, rel), join(dest, rel))
    dest_prefix = dest.rstrip("/") + "/"
    target = backend_for(dest)
    for file_uri in target.list_files(dest):
        if file_uri[len(dest_prefix) :] not in wanted:
            target.delete(file_uri)

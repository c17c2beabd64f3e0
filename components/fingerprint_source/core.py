"""fingerprint_source: what identifies the data behind a source, without reading it.

prepare_data is cached on its inputs; this fingerprint is one of them, so a folder whose images changed
is prepared again while an unchanged one is a cache hit. It runs on every execution (uncached) and reads
only the listing: one request per 1000 objects on GCS.
"""

from __future__ import annotations

import hashlib
import json

from trainboard import storage
from trainboard.errors import UsageError
from trainboard.sources.folder import check_gcs_folder
from trainboard.sources.spec import parse_source


def fingerprint_source(dataset: str) -> str:
    """A digest of ``dataset``, and for a folder of every file's path, size and version (GCS generation
    or modification time). demo is generated from its seed, a tfds: source is fixed by its name, config
    and version with the image's pinned TFDS: the spec alone identifies them."""
    source = parse_source(dataset)
    if source.kind == "folder" and storage.is_gcs(source.uri):
        check_gcs_folder(source.uri)  # a missing bucket: one line, not the client's 404
    # Hidden files are not data (prepare_data does not read them): a touched .DS_Store is no new data.
    listing = storage.list_versions(source.uri, skip_hidden=True) if source.kind == "folder" else {}
    if source.kind == "folder" and not listing:
        raise UsageError("dataset", f"folder:{source.uri}: no files found")
    payload = json.dumps([dataset, sorted(listing.items())])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]

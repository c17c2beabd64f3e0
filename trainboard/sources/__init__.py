"""Data sources: what `dataset` names, and the checks that need no decoding. TensorFlow-free to import.

demo                          generated offline (demo.py)
tfds:NAME[:CONFIG][@VERSION]  a TFDS image-classification dataset (tfds.py)
folder:URI                    URI/<split>/<class>/*.jpg|png or URI/<class>/* (folder.py; local or gs://)

spec.py parses the spec. check_source looks at the data behind it: the CLI runs it before it starts or
submits anything; prepare_data runs the same checks on the cluster, then reads the data.
"""

from __future__ import annotations

from trainboard.errors import UsageError
from trainboard.sources.spec import parse_source
from trainboard.storage import NoCredentials


def check_source(spec: str, tfds_data_dir: str = "") -> list[str]:
    """Everything about a source that can be checked before preparing it: the spec, a folder's layout,
    a TFDS dataset's name and features (this one imports TensorFlow Datasets). Returns the notes on how a
    folder was read (a split folder under another name, a folder left out), for the console."""
    source = parse_source(spec)
    if source.kind == "folder":
        from trainboard.sources.folder import scan_folder

        try:
            return scan_folder(source.uri).notes
        except NoCredentials as e:
            raise UsageError("dataset", str(e)) from None
    if source.kind == "tfds":
        from trainboard.sources.tfds import tfds_builder

        tfds_builder(source, tfds_data_dir)
    return []

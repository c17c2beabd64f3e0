"""Data sources: what `dataset` names, and the checks that need no decoding. TensorFlow-free to import.

demo                          generated offline (demo.py)
tfds:NAME[:CONFIG][@VERSION]  a TFDS image-classification dataset (tfds.py)
folder:URI                    URI/<split>/<class>/*.jpg|png or URI/<class>/* (folder.py; local or gs://)

spec.py parses the spec. check_source looks at the data behind it: `trainboard local` runs it before it
starts anything, `submit` and `schedule` (cluster=True) before they send anything; prepare_data runs the
same checks on the cluster, then reads the data.
"""

from __future__ import annotations

import importlib.util

from trainboard import storage
from trainboard.config import DataConfig
from trainboard.errors import UsageError
from trainboard.sources.spec import parse_source
from trainboard.storage import NoCredentials


def check_source(
    spec: str,
    tfds_data_dir: str = "",
    *,
    cluster: bool = False,
    validation_fraction: float = DataConfig.validation_fraction,
    test_fraction: float = DataConfig.test_fraction,
) -> list[str]:
    """Everything about a source that can be checked before preparing it: the spec, a folder's layout
    and images (folder_checks: enough for the splits carved at these fractions, an image's header in each
    class), a TFDS dataset's name, features and whether it can be had here (this one imports TensorFlow
    Datasets). Returns the notes on how a folder was read (a split folder under another name, a folder
    left out), for the console.

    ``cluster``: the tasks read the source, not this machine. A folder must be on gs:// and is not listed
    from here (the tasks read it with their own credentials; this machine may have none); a TFDS name
    and its features are checked from TensorFlow Datasets' own catalog, without ``tfds_data_dir`` (the
    tasks'), where it is installed (the train extra), else a note says so."""
    source = parse_source(spec)
    if cluster and source.kind == "folder":
        if not storage.is_gcs(source.uri):
            raise UsageError(
                "dataset",
                f"folder:{source.uri} is a folder on this machine, which no cluster task can read; a "
                "cluster run takes folder:gs://BUCKET/PREFIX (upload the images there)",
            )
        return []
    if cluster and source.kind == "tfds" and importlib.util.find_spec("tensorflow_datasets") is None:
        return [
            f"{spec} not checked here: TensorFlow Datasets is not installed (pip install "
            "'trainboard[train]'); the prepare-data task checks it on the cluster"
        ]
    if source.kind == "folder":
        from trainboard.sources.folder_checks import check_folder

        try:
            return check_folder(source.uri, validation_fraction, test_fraction).notes
        except NoCredentials as e:
            raise UsageError("dataset", str(e)) from None
    if source.kind == "tfds":
        from trainboard.sources.tfds import check_tfds_available, tfds_builder

        builder, _, _ = tfds_builder(source, "" if cluster else tfds_data_dir)
        if not cluster:  # the tasks download there, not this machine
            check_tfds_available(builder, source)
    return []


def known_classes(spec: str) -> int | None:
    """How many classes the source's prepared data will have, where that is known without preparing it
    (the demo's shapes, a folder's class folders); None for a TFDS dataset (its builder would load)."""
    source = parse_source(spec)
    if source.kind == "demo":
        from trainboard.sources.demo import CLASS_NAMES

        return len(CLASS_NAMES)
    if source.kind == "folder":
        from trainboard.sources.folder import scan_folder

        return len(scan_folder(source.uri).class_names)
    return None

"""The tfds: source: a TFDS dataset's builder and its image and label features, checked from metadata only
(offline-safe). TensorFlow Datasets is imported when a check runs, not with this module."""

from __future__ import annotations

import difflib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from trainboard import storage
from trainboard.errors import UsageError
from trainboard.sources.spec import Source
from trainboard.weights import OFFLINE_ENV, online


def tfds_builder(source: Source, data_dir: str = "") -> tuple[Any, str, str]:
    """(builder, image key, label key) of a tfds: source; UsageError when it does not exist or is not
    image classification. Reads only metadata (offline-safe)."""
    import tensorflow_datasets as tfds

    _check_data_dir(data_dir)
    name = (
        source.name
        + (f"/{source.config}" if source.config else "")
        + (f":{source.version}" if source.version else "")
    )
    if source.name not in tfds.list_builders():
        close = difflib.get_close_matches(source.name, tfds.list_builders(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join('tfds:' + c for c in close)}?" if close else ""
        raise UsageError("dataset", f"tfds:{source.name} is not a TFDS dataset{hint}")
    try:
        builder = tfds.builder(name, data_dir=data_dir or None)
    except (ValueError, tfds.core.registered.DatasetNotFoundError) as e:
        raise UsageError("dataset", f"tfds:{name}: {e}".splitlines()[0]) from None
    try:
        return (builder, *tfds_feature_keys(builder.info.features))
    except UsageError as e:
        raise UsageError("dataset", f"tfds:{source.name}: {e.problem}") from None


def _check_data_dir(data_dir: str) -> None:
    """A local tfds_data_dir is a folder, or made under one: TFDS would fail on a file only once it
    writes, after the download."""
    if not data_dir or storage.is_gcs(data_dir):
        return
    path = Path(data_dir).expanduser()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(
            "tfds_data_dir",
            f"{existing} is a file, not a folder; expected a folder for TFDS's downloads and prepared "
            "datasets (made if missing)",
        )


def check_tfds_available(builder: Any, source: Source) -> None:
    """A dataset not yet prepared in its data_dir is downloaded first; offline, TFDS retries that for
    minutes. Known in seconds instead: OFFLINE_ENV set, or a host its downloads come from (the dataset's
    checksums file, read offline) not answering, all probed at once. A prepared dataset needs no network."""
    if builder.is_prepared():
        return
    if os.environ.get(OFFLINE_ENV):  # said so: nothing to probe
        reason = f"{OFFLINE_ENV} is set (no network)"
    else:
        hosts = sorted({urlparse(url).hostname or "" for url in builder.url_infos or {}} - {""})
        with ThreadPoolExecutor(max(len(hosts), 1)) as pool:
            up = dict(zip(hosts, pool.map(lambda host: online(host=host), hosts), strict=True))
        down = [host for host in hosts if not up[host]]
        if not down:
            return
        reason = f"{down[0]} cannot be reached from here"
    raise UsageError(
        "dataset",
        f"tfds:{source.name} is not prepared in {builder.data_dir} and {reason}, so it cannot be "
        "downloaded; prepare it once on a machine with network and pass that folder as --tfds-data-dir",
    )


def tfds_feature_keys(features: Any) -> tuple[str, str]:
    """(image key, label key) of a TFDS dataset's features; UsageError when it is not image classification."""
    import tensorflow_datasets as tfds

    images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    if not images or not labels:
        raise UsageError(
            "dataset",
            f"not an image-classification dataset: it needs an Image and a ClassLabel feature, "
            f"it has {', '.join(f'{k} ({type(f).__name__})' for k, f in features.items())}",
        )
    pick = lambda keys, preferred: preferred if preferred in keys else keys[0]  # noqa: E731
    return pick(images, "image"), pick(labels, "label")

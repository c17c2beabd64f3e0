"""The tfds: source: a TFDS dataset's builder and its image and label features, checked from metadata only
(offline-safe). TensorFlow Datasets is imported when a check runs, not with this module."""

from __future__ import annotations

import difflib

from trainboard.errors import UsageError
from trainboard.sources.spec import Source


def tfds_builder(source: Source, data_dir: str = ""):
    """(builder, image key, label key) of a tfds: source; UsageError when it does not exist or is not
    image classification. Reads only metadata (offline-safe)."""
    import tensorflow_datasets as tfds

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


def tfds_feature_keys(features) -> tuple[str, str]:
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

"""Each source's plan: its examples (paths, URIs or encoded bytes), labels, names and splits, after the
checks in trainboard.sources. Nothing is decoded here but TFDS's own preparation."""

from __future__ import annotations

import hashlib

import tensorflow as tf

from trainboard.components.prepare_data.plan import Example, Plan
from trainboard.config import DataConfig
from trainboard.errors import UsageError
from trainboard.sources import demo
from trainboard.sources.folder_checks import check_folder
from trainboard.sources.spec import SPLIT_ALIASES, Source
from trainboard.sources.tfds import check_tfds_available, tfds_builder


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def plan_source(source: Source, seed: int, data: DataConfig) -> Plan:
    if source.kind == "demo":
        return _plan_demo(seed)
    if source.kind == "tfds":
        return _plan_tfds(source, data.tfds_data_dir)
    return _plan_folder(source, data.validation_fraction, data.test_fraction)


def _plan_demo(seed: int) -> Plan:
    examples = [
        Example(tf.io.encode_png(image).numpy(), label, f"{split}/{i}", split)
        for split, (images, labels) in demo.generate(seed).items()
        for i, (image, label) in enumerate(zip(images, labels, strict=True))
    ]
    return Plan(examples, list(demo.CLASS_NAMES), digest(f"demo/1:{seed}".encode()))


def _plan_tfds(source: Source, data_dir: str) -> Plan:
    import tensorflow_datasets as tfds

    builder, image_key, label_key = tfds_builder(source, data_dir)
    check_tfds_available(builder, source)  # offline, the download would retry for minutes
    builder.download_and_prepare()  # a no-op when data_dir already holds the prepared dataset
    class_names = list(builder.info.features[label_key].names)
    plan = Plan([], class_names, digest(f"tfds:{builder.info.full_name}".encode()))
    found: set[str] = set()
    # The split names come from the prepared metadata; where there is none (mocked builders), the usual ones.
    for name in list(builder.info.splits) or list(SPLIT_ALIASES):
        split = SPLIT_ALIASES.get(name.lower())
        if split is None or split in found:
            continue
        try:
            ds = builder.as_dataset(
                split=name, shuffle_files=False, decoders={image_key: tfds.decode.SkipDecoding()}
            )
        except (ValueError, KeyError):  # a usual name this dataset does not have
            continue
        found.add(split)
        plan.examples += [
            Example(bytes(example[image_key]), int(example[label_key]), f"{name}[{index}]", split)
            for index, example in enumerate(ds.as_numpy_iterator())
        ]
    if "train" not in found:
        raise UsageError(
            "dataset", f"tfds:{source.name} has no train split (it has {', '.join(builder.info.splits)})"
        )
    return plan


def _plan_folder(source: Source, validation_fraction: float, test_fraction: float) -> Plan:
    folder = check_folder(source.uri, validation_fraction, test_fraction)
    examples = [
        Example(uri, label, uri[len(source.uri) + 1 :], split)
        for split, classes in folder.splits.items()
        for label, cls in enumerate(folder.class_names)
        for uri in classes.get(cls, [])
    ]
    reasons = {
        "not an image file": folder.not_images,
        "nested: in a folder inside a class folder": folder.nested,
    }
    skipped = {reason: files for reason, files in reasons.items() if files}
    return Plan(examples, folder.class_names, skipped=skipped, notes=folder.notes)

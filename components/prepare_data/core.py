"""prepare_data: turn a source (demo, tfds:..., folder:...) into the Dataset artifact train and evaluate read.

Images are checked (decoded once) but stored as the source's own encoded bytes: no re-encoding, so
preparation runs at about the decode rate, and training resizes on the fly to whichever image size the
model wants (see README, "Data preparation"). They stream: each image is checked, encoded into its
record and written as the check pipeline delivers it, so a folder of any size fits in memory.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import itertools
import json
import math
import struct
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import google_crc32c
import numpy as np
import tensorflow as tf

from trainboard import storage
from trainboard.components.prepare_data import demo
from trainboard.components.prepare_data.sources import (
    IMAGE_EXTENSIONS,
    SPLITS,
    Source,
    check_fraction,
    parse_source,
    scan_folder,
)
from trainboard.config import UsageError
from trainboard.dataset_artifact import DatasetInfo, DatasetWriter, encode_record
from trainboard.image_grid import jpeg_bytes, label_grid

MIN_IMAGE_SIDE = 8  # smaller images carry no usable signal for these models
SAMPLES_FILE = "samples.jpg"
_SAMPLES = 8  # images in the card's sample grid
_JPEG = b"\xff\xd8\xff"
_PASS_THROUGH = (_JPEG, b"\x89PNG\r\n\x1a\n")  # JPEG and PNG are stored as they are
_TFDS_SPLIT_NAMES = {"train": "train", "validation": "validation", "val": "validation", "valid": "validation",
                     "test": "test"}  # fmt: skip
_REMOTE_CHUNK = 512  # objects read from a bucket ahead of the check: bounds the memory it takes


@dataclass
class Plan:
    """A source before its images are checked: each item (a local path, a gs:// URI or encoded bytes) with
    its label, its name (for the card) and its split (complete_splits carves those the source has not out
    of train). A folder's items are paths: its images are read as they are checked, never held whole."""

    items: list
    labels: list[int]
    names: list[str]
    splits: list[str]
    class_names: list[str]
    fingerprint: str = ""  # "" for a folder: it comes from the images' content, as they are read
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> names


@dataclass
class Written:
    """What the check let through into the artifact."""

    labels: dict[str, list[int]]  # per split, in the order written
    skipped: dict[str, list[str]]
    checksums: list[int]  # CRC-32C of each item's bytes, 0 where it could not be read
    samples: dict[int, list[bytes]]  # the first training images of each class


def prepare_data(
    dataset: str,
    output_dir: str,
    seed: int = 0,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    tfds_data_dir: str = "",
) -> DatasetInfo:
    """Write ``dataset`` into ``output_dir`` with train / validation / test splits.

    Everything about the input that can be known without decoding the images is checked before anything
    is written; what decoding finds (a class or split left with no usable image) removes what was written.
    """
    check_fraction("validation_fraction", validation_fraction)
    check_fraction("test_fraction", test_fraction)
    if validation_fraction + test_fraction >= 1:
        raise UsageError("test_fraction", "validation_fraction + test_fraction must stay below 1")
    source = parse_source(dataset)  # the planners check the rest before anything is written
    if source.kind == "demo":
        plan = _plan_demo(seed)
    elif source.kind == "tfds":
        plan = _plan_tfds(source, tfds_data_dir)
    else:
        plan = _plan_folder(source)
    complete_splits(plan, validation_fraction, test_fraction, seed)
    _check_splits(_by_split(plan), [], dataset)
    with DatasetWriter(output_dir) as writer:
        written = _write_checked(plan, writer)
        _check_splits(written.labels, plan.class_names if source.kind == "folder" else [], dataset)
        fingerprint = plan.fingerprint or _digest(
            json.dumps(list(zip(plan.names, written.checksums, strict=True))).encode()
        )
        info = DatasetInfo(
            class_names=plan.class_names,
            examples={split: len(written.labels[split]) for split in SPLITS},
            source=dataset,
            fingerprint=fingerprint,
            extra={
                "image_size_policy": "source size, encoded as in the source; resized in training",
                "seed": seed,
                "per_class": {
                    split: np.bincount(written.labels[split], minlength=len(plan.class_names)).tolist()
                    for split in SPLITS
                },
                "skipped": {reason: len(names) for reason, names in written.skipped.items()},
                "skipped_examples": {reason: names[:5] for reason, names in written.skipped.items()},
            },
        )
        writer.finish(info, {SAMPLES_FILE: sample_grid(written.samples, plan.class_names)})
    return info


def _by_split(plan: Plan) -> dict[str, list[int]]:
    """The labels of each split (every one of SPLITS, empty where the plan has none)."""
    labels: dict[str, list[int]] = {split: [] for split in SPLITS}
    for split, label in zip(plan.splits, plan.labels, strict=True):
        labels[split].append(label)
    return labels


def complete_splits(plan: Plan, validation_fraction: float, test_fraction: float, seed: int) -> None:
    """Carve the validation / test splits the source does not have out of train: seeded, stratified by
    class; in ``plan``. Before the images are checked, so that they can be written as they are."""
    present = set(plan.splits)
    left = 1.0  # the share of the source that train still holds
    for split, fraction in (("test", test_fraction), ("validation", validation_fraction)):
        if split not in present:
            train = [i for i, s in enumerate(plan.splits) if s == "train"]
            _, carved = stratified_split([plan.labels[i] for i in train], fraction / left, seed, split)
            for i in carved:
                plan.splits[train[i]] = split
            left -= fraction


def stratified_split(labels: list[int], fraction: float, seed: int, salt: str) -> tuple[list[int], list[int]]:
    """(kept, carved) indices: about ``fraction`` of each class carved (at least one where a class has two
    or more), chosen by a generator seeded with ``seed`` and ``salt``; both lists sorted."""
    rng = np.random.default_rng([seed, zlib.crc32(salt.encode())])
    labels_array = np.asarray(labels)
    carved: list[int] = []
    for cls in np.unique(labels_array):
        members = np.flatnonzero(labels_array == cls)
        count = max(1, round(len(members) * fraction)) if len(members) >= 2 else 0
        carved += rng.permutation(members)[:count].tolist()
    carved_set = set(carved)
    return [i for i in range(len(labels)) if i not in carved_set], sorted(carved)


def _check_splits(labels: dict[str, list[int]], folder_classes: list[str], dataset: str) -> None:
    """No split may be empty, and no class folder may have lost all its images (corrupt files). A TFDS
    label space may hold classes a dataset has no examples of: they are the dataset's to define."""
    counts = np.bincount(labels["train"], minlength=len(folder_classes))[: len(folder_classes)]
    empty = [folder_classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise UsageError(
            "dataset",
            f"{dataset}: class {empty[0]!r} has no usable training images; each must decode as "
            f"{', '.join(IMAGE_EXTENSIONS)} and be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} px",
        )
    for split in SPLITS:
        if not labels[split]:
            raise UsageError(
                "dataset", f"{dataset}: the {split} split is empty; add images or lower the fractions"
            )


def _plan_demo(seed: int) -> Plan:
    plan = Plan([], [], [], [], list(demo.CLASS_NAMES), _digest(f"demo/1:{seed}".encode()))
    for split, (images, labels) in demo.generate(seed).items():
        plan.items += [tf.io.encode_png(image).numpy() for image in images]
        plan.labels += labels
        plan.names += [f"{split}/{i}" for i in range(len(labels))]
        plan.splits += [split] * len(labels)
    return plan


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


# --- tfds:NAME[:CONFIG][@VERSION] -------------------------------------------------------------------------


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


def _plan_tfds(source: Source, data_dir: str) -> Plan:
    import tensorflow_datasets as tfds

    builder, image_key, label_key = tfds_builder(source, data_dir)
    builder.download_and_prepare()  # a no-op when data_dir already holds the prepared dataset
    class_names = list(builder.info.features[label_key].names)
    plan = Plan([], [], [], [], class_names, _digest(f"tfds:{builder.info.full_name}".encode()))
    # The split names come from the prepared metadata; where there is none (mocked builders), the usual ones.
    for name in list(builder.info.splits) or list(_TFDS_SPLIT_NAMES):
        split = _TFDS_SPLIT_NAMES.get(name)
        if split is None or split in plan.splits:
            continue
        try:
            ds = builder.as_dataset(
                split=name, shuffle_files=False, decoders={image_key: tfds.decode.SkipDecoding()}
            )
        except (ValueError, KeyError):  # a usual name this dataset does not have
            continue
        for index, example in enumerate(ds.as_numpy_iterator()):
            plan.items.append(bytes(example[image_key]))
            plan.labels.append(int(example[label_key]))
            plan.names.append(f"{name}[{index}]")
            plan.splits.append(split)
    if "train" not in plan.splits:
        raise UsageError(
            "dataset", f"tfds:{source.name} has no train split (it has {', '.join(builder.info.splits)})"
        )
    return plan


# --- folder:URI --------------------------------------------------------------------------------------------


def _plan_folder(source: Source) -> Plan:
    folder = scan_folder(source.uri)
    plan = Plan([], [], [], [], folder.class_names)
    for split, classes in folder.splits.items():
        for label, cls in enumerate(folder.class_names):
            found = classes.get(cls, [])
            plan.items += found
            plan.labels += [label] * len(found)
            plan.splits += [split] * len(found)
    plan.names = [uri[len(source.uri) + 1 :] for uri in plan.items]
    if folder.not_images:
        plan.skipped["not an image file"] = folder.not_images
    return plan


# --- checking and writing the images -----------------------------------------------------------------------


def _write_checked(plan: Plan, writer: DatasetWriter) -> Written:
    """Check each image and write the usable ones into their split, as the check delivers them (in a
    fixed order: the same source gives the same files). JPEG and PNG are stored as they are; other
    formats (BMP, GIF) as PNG."""
    written = Written({split: [] for split in SPLITS}, dict(plan.skipped), [0] * len(plan.items), {})
    samples_per_class = math.ceil(_SAMPLES / max(len(plan.class_names), 1))
    left_out: dict[str, list[int]] = {}
    for index, image, size in _checked_images(plan.items):
        if size is None:
            left_out.setdefault("corrupt or not decodable", []).append(index)
            continue
        if not plan.fingerprint:  # the content fingerprint (CRC-32C: a third of SHA-1's cost)
            written.checksums[index] = google_crc32c.value(image)
        if min(size) < MIN_IMAGE_SIDE:
            left_out.setdefault(f"smaller than {MIN_IMAGE_SIDE} px", []).append(index)
            continue
        split, label = plan.splits[index], plan.labels[index]
        image = image if image.startswith(_PASS_THROUGH) else _to_png(image)
        writer.write(split, encode_record(image, label))
        written.labels[split].append(label)
        if split == "train":
            samples = written.samples.setdefault(label, [])
            if len(samples) < samples_per_class:
                samples.append(image)
    for reason, indices in sorted(left_out.items()):
        written.skipped[reason] = [plan.names[i] for i in sorted(indices)]
    return written


def _checked_images(items: list) -> Iterator[tuple[int, bytes, tuple[int, int] | None]]:
    """(index, bytes, (height, width)) of each item; (index, b"", None) last for those that cannot be read
    or decoded.

    A first pass checks every item with one op, decode_jpeg at 1/8 scale. libjpeg still parses the whole
    compressed stream, so a truncated or corrupt JPEG fails exactly as the full decode in training does
    (5,600 corrupted variants: truncations, flipped bytes, garbage blocks, of baseline, progressive and
    greyscale JPEGs, all agreed), at a fraction of the cost; the same op decodes PNG and GIF in full. Its
    size comes from the header. What the first pass refuses (corrupt files, BMP) is decoded in full by a
    second. One op for every image, no branch in the graph: 25% faster than choosing the decoder per image.
    Each pass yields in the items' order.
    """
    failed = list(range(len(items)))
    for full in (False, True):
        arrived = set()
        for index, image, shape in _decoded(items, failed, full):
            arrived.add(index)
            yield index, image, tuple(shape) if full or not image.startswith(_JPEG) else _jpeg_size(image)
        failed = [i for i in failed if i not in arrived]
    for index in failed:
        yield index, b"", None


def _decoded(items: list, indices: list[int], full: bool) -> Iterator[tuple[int, bytes, list[int]]]:
    """(index, bytes, decoded [height, width]) of the items at ``indices`` that read and decode, in order.

    Local files are read and checked in one parallel tf.data pipeline (C++, outside the GIL): the fastest
    way measured (bench/prepare_data.py). Objects in a bucket are read through the storage module
    (retries) by a thread pool, a chunk ahead of the check."""
    if not indices:
        return
    first = items[indices[0]]
    if isinstance(first, str) and storage.is_gcs(first):
        for chunk, data in _read_ahead(items, indices):
            yield from _decode_pipeline(chunk, data, full, read_files=False)
    else:  # local paths (read by tf.data) or encoded bytes
        files = isinstance(first, str)
        yield from _decode_pipeline(indices, [items[i] for i in indices], full, read_files=files)


def _read_ahead(uris: list[str], indices: list[int]) -> Iterator[tuple[list[int], list[bytes]]]:
    """The objects at ``indices``, in order, _REMOTE_CHUNK at a time. Reads go on without a pause, up to
    two chunks ahead of the one being checked: a pool that waited for a whole chunk to finish would idle
    on its slowest reads (10-15 % slower, measured at 256 per chunk). 512 per chunk: within 5 % of reading
    every object first (2,000 from fake-gcs-server)."""
    waiting = iter(indices)
    reading: deque[tuple[int, Future[bytes]]] = deque()
    with ThreadPoolExecutor(16) as pool:  # I/O bound: many small requests

        def read_more() -> None:
            for index in itertools.islice(waiting, 2 * _REMOTE_CHUNK - len(reading)):
                reading.append((index, pool.submit(storage.read_bytes, uris[index])))

        read_more()
        while reading:
            chunk = [reading.popleft() for _ in range(min(_REMOTE_CHUNK, len(reading)))]
            read_more()
            yield [index for index, _ in chunk], [read.result() for _, read in chunk]


def _decode_pipeline(
    indices: list[int], items: list, full: bool, read_files: bool
) -> Iterator[tuple[int, bytes, list[int]]]:
    """tf.data reads (``read_files``) and decodes in parallel, dropping the failures, in order (the same
    source gives the same files; measured as fast as any order); batches, so that Python handles few
    elements."""

    @tf.autograph.experimental.do_not_convert  # plain TensorFlow: converting it only slows tracing
    def check(index, item):
        data = tf.io.read_file(item) if read_files else item
        if full:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
        else:
            image = tf.io.decode_jpeg(data, channels=3, ratio=8)
        # The decoded shape must reach the caller: a decode whose result nobody uses is pruned from the
        # graph. [-3:-1]: decode_jpeg gives a WebP image a frame axis in front.
        return index, data, tf.shape(image)[-3:-1]

    ds = tf.data.Dataset.from_tensor_slices((indices, items))
    ds = ds.map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    for batch in ds.batch(256).as_numpy_iterator():
        yield from zip(*(column.tolist() for column in batch), strict=True)


_START_OF_FRAME = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn markers (not DHT, JPG, DAC)
_NO_LENGTH = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: markers without a segment


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """(height, width) from a JPEG's frame header, found by walking the few segments before it in Python
    (cheaper than a call into TensorFlow per image); libjpeg's header reading where the walk fails."""
    at = 2
    while at + 9 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker in _START_OF_FRAME:
            height, width = struct.unpack_from(">HH", data, at + 5)
            if height and width:
                return height, width
            break  # the height comes later (DNL): leave it to libjpeg
        if marker == 0xFF:  # a fill byte
            at += 1
        else:
            at += 2 if marker in _NO_LENGTH else 2 + int.from_bytes(data[at + 2 : at + 4])
    return tuple(tf.io.extract_jpeg_shape(data)[:2].numpy().tolist())


def _to_png(image: bytes) -> bytes:
    return tf.io.encode_png(tf.io.decode_image(image, channels=3, expand_animations=False)).numpy()


# --- the dataset card --------------------------------------------------------------------------------------


def sample_grid(samples: dict[int, list[bytes]], class_names: list[str]) -> bytes:
    """A labelled grid (JPEG) of training images, the first of each class in turn, up to _SAMPLES: for the
    dataset card. ``samples``: label -> its first images."""
    picked = [
        (images[turn], label)
        for turn in range(max(map(len, samples.values()), default=0))
        for label, images in sorted(samples.items())
        if turn < len(images)
    ][:_SAMPLES]
    decoded = [tf.io.decode_image(image, channels=3, expand_animations=False).numpy() for image, _ in picked]
    return jpeg_bytes(label_grid(decoded, [class_names[label] for _, label in picked]))


def dataset_card(info: DatasetInfo, samples_jpeg: bytes = b"") -> str:
    """The Markdown card shown in the KFP UI: where the data came from, counts per split and class,
    class balance, what was skipped, and sample images (inline, so the card needs nothing else)."""
    per_class = info.extra["per_class"]
    header = "| class | " + " | ".join(per_class) + " |\n|---|" + "---|" * len(per_class) + "\n"
    rows = "".join(
        f"| {name} | " + " | ".join(str(per_class[s][i]) for s in per_class) + " |\n"
        for i, name in enumerate(info.class_names)
    )
    train = [n for n in per_class["train"] if n] or [0]
    skipped = info.extra["skipped"]
    examples = info.extra["skipped_examples"]
    skipped_lines = "".join(
        f"- {count} {reason}: {', '.join(examples[reason])}{' ...' if count > 5 else ''}\n"
        for reason, count in skipped.items()
    )
    return (
        f"# Dataset `{info.source}`\n\n"
        f"{len(info.class_names)} classes; examples: "
        + ", ".join(f"{split} {count}" for split, count in info.examples.items())
        + f".\n\nClass balance (train): smallest class {min(train)}, largest {max(train)} "
        f"(ratio {max(train) / max(min(train), 1):.2f}).\n\n"
        f"{header}{rows}\n"
        f"Skipped files: {sum(skipped.values())}\n{skipped_lines}\n"
        f"Images: {info.extra['image_size_policy']}. Fingerprint `{info.fingerprint}`.\n"
        + (f"\n![Sample training images](data:image/jpeg;base64,{base64.b64encode(samples_jpeg).decode()})\n"
           if samples_jpeg else "")
    )  # fmt: skip


def write_card(info: DatasetInfo, path: str, dataset_dir: str) -> None:
    samples = Path(dataset_dir) / SAMPLES_FILE
    storage.write_bytes(path, dataset_card(info, samples.read_bytes() if samples.exists() else b"").encode())

"""prepare_data: turn a source (demo, tfds:..., folder:...) into the Dataset artifact train and evaluate read.

Images are checked (decoded once) but stored as the source's own encoded bytes: no re-encoding, so
preparation runs at about the decode rate, and training resizes on the fly to whichever image size the
model wants (see README, "Data preparation").
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
from trainboard.dataset_artifact import DatasetInfo, Record, encode_record, write_dataset
from trainboard.image_grid import jpeg_bytes, label_grid

MIN_IMAGE_SIDE = 8  # smaller images carry no usable signal for these models
_JPEG = b"\xff\xd8\xff"
_PASS_THROUGH = (_JPEG, b"\x89PNG\r\n\x1a\n")  # JPEG and PNG are stored as they are
_TFDS_SPLIT_NAMES = {"train": "train", "validation": "validation", "val": "validation", "valid": "validation",
                     "test": "test"}  # fmt: skip


@dataclass
class Examples:
    """Encoded images and their labels, for one split."""

    images: list[bytes] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # where each image came from, for the card
    # Each image's TFRecord record where it was encoded while the other images were still being checked
    # (overlapping the decoding); None (or an empty list for all) where it is still to be encoded.
    records: list[Record | None] = field(default_factory=list)

    def take(self, indices: list[int]) -> Examples:
        pick = lambda values: [values[i] for i in indices] if values else []  # noqa: E731
        return Examples(pick(self.images), pick(self.labels), pick(self.names), pick(self.records))

    def encoded(self) -> list[Record]:
        ahead = self.records or [None] * len(self.labels)
        return [
            record or encode_record(image, label)
            for record, image, label in zip(ahead, self.images, self.labels, strict=True)
        ]


@dataclass
class Loaded:
    splits: dict[str, Examples]
    class_names: list[str]
    fingerprint: str
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> names


def prepare_data(
    dataset: str,
    output_dir: str,
    seed: int = 0,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    tfds_data_dir: str = "",
) -> DatasetInfo:
    """Write ``dataset`` into ``output_dir`` with train / validation / test splits.

    Everything about the input is checked before anything is written.
    """
    check_fraction("validation_fraction", validation_fraction)
    check_fraction("test_fraction", test_fraction)
    if validation_fraction + test_fraction >= 1:
        raise UsageError("test_fraction", "validation_fraction + test_fraction must stay below 1")
    source = parse_source(dataset)  # the loaders check the rest before anything is written
    if source.kind == "demo":
        loaded = _load_demo(seed)
    elif source.kind == "tfds":
        loaded = _load_tfds(source, tfds_data_dir)
    else:
        loaded = _load_folder(source)
    splits = complete_splits(loaded.splits, validation_fraction, test_fraction, seed)
    _check_splits(splits, loaded.class_names if source.kind == "folder" else [], dataset)
    info = DatasetInfo(
        class_names=loaded.class_names,
        examples={split: len(examples.labels) for split, examples in splits.items()},
        source=dataset,
        fingerprint=loaded.fingerprint,
        extra={
            "image_size_policy": "source size, encoded as in the source; resized in training",
            "seed": seed,
            "per_class": {
                s: np.bincount(e.labels, minlength=len(loaded.class_names)).tolist()
                for s, e in splits.items()
            },
            "skipped": {reason: len(names) for reason, names in loaded.skipped.items()},
            "skipped_examples": {reason: names[:5] for reason, names in loaded.skipped.items()},
        },
    )
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(1) as pool:  # the sample grid is drawn while the shards are written
        samples = pool.submit(write_samples, output_dir, splits["train"], loaded.class_names)
        write_dataset(output_dir, info, {split: examples.encoded() for split, examples in splits.items()})
        samples.result()
    return info


def complete_splits(
    splits: dict[str, Examples], validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, Examples]:
    """Carve the missing validation / test splits out of train: seeded, stratified by class."""
    splits = dict(splits)
    left = 1.0  # the share of the source that train still holds
    for split, fraction in (("test", test_fraction), ("validation", validation_fraction)):
        if split not in splits:
            kept, carved = stratified_split(splits["train"].labels, fraction / left, seed, split)
            splits[split] = splits["train"].take(carved)
            splits["train"] = splits["train"].take(kept)
            left -= fraction
    return {split: splits[split] for split in SPLITS}


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


def _check_splits(splits: dict[str, Examples], folder_classes: list[str], dataset: str) -> None:
    """No split may be empty, and no class folder may have lost all its images (corrupt files). A TFDS
    label space may hold classes a dataset has no examples of: they are the dataset's to define."""
    counts = np.bincount(splits["train"].labels, minlength=len(folder_classes))[: len(folder_classes)]
    empty = [folder_classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise UsageError(
            "dataset",
            f"{dataset}: class {empty[0]!r} has no usable training images; each must decode as "
            f"{', '.join(IMAGE_EXTENSIONS)} and be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} px",
        )
    for split, examples in splits.items():
        if not examples.labels:
            raise UsageError(
                "dataset", f"{dataset}: the {split} split is empty; add images or lower the fractions"
            )


def _load_demo(seed: int) -> Loaded:
    splits = {
        split: Examples([tf.io.encode_png(image).numpy() for image in images], labels, [])
        for split, (images, labels) in demo.generate(seed).items()
    }
    for split, examples in splits.items():
        examples.names = [f"{split}/{i}" for i in range(len(examples.labels))]
    return Loaded(splits, list(demo.CLASS_NAMES), _digest(f"demo/1:{seed}".encode()))


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()[:16]


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


def _load_tfds(source: Source, data_dir: str) -> Loaded:
    import tensorflow_datasets as tfds

    builder, image_key, label_key = tfds_builder(source, data_dir)
    builder.download_and_prepare()  # a no-op when data_dir already holds the prepared dataset
    # The split names come from the prepared metadata; where there is none (mocked builders), the usual ones.
    names = list(builder.info.splits) or list(_TFDS_SPLIT_NAMES)
    splits = {}
    for name in names:
        split = _TFDS_SPLIT_NAMES.get(name)
        if split is None or split in splits:
            continue
        try:
            ds = builder.as_dataset(
                split=name, shuffle_files=False, decoders={image_key: tfds.decode.SkipDecoding()}
            )
        except (ValueError, KeyError):  # a usual name this dataset does not have
            continue
        examples = Examples()
        for index, example in enumerate(ds.as_numpy_iterator()):
            examples.images.append(bytes(example[image_key]))
            examples.labels.append(int(example[label_key]))
            examples.names.append(f"{name}[{index}]")
        splits[split] = examples
    if "train" not in splits:
        raise UsageError(
            "dataset", f"tfds:{source.name} has no train split (it has {', '.join(builder.info.splits)})"
        )
    skipped: dict[str, list[str]] = {}
    splits = {s: check_images(e, skipped) for s, e in splits.items()}
    class_names = list(builder.info.features[label_key].names)
    return Loaded(splits, class_names, _digest(f"tfds:{builder.info.full_name}".encode()), skipped)


# --- folder:URI --------------------------------------------------------------------------------------------


def _load_folder(source: Source) -> Loaded:
    folder = scan_folder(source.uri)
    uris, labels, members = [], [], {}  # members: split -> indices into uris
    for split, classes in folder.splits.items():
        for label, cls in enumerate(folder.class_names):
            found = classes.get(cls, [])
            members.setdefault(split, []).extend(range(len(uris), len(uris) + len(found)))
            uris += found
            labels += [label] * len(found)
    # Each image's CRC-32C (what GCS and TFRecord check content with; a third of SHA-1's cost) for the
    # fingerprint, and its record, computed while the other images are being checked.
    checksums, records = [0] * len(uris), [None] * len(uris)

    def encode(index: int, image: bytes) -> None:
        checksums[index] = google_crc32c.value(image)
        records[index] = encode_record(image, labels[index])

    images, sizes = _read_images(uris, encode)
    names = [uri[len(source.uri) + 1 :] for uri in uris]
    skipped = {"not an image file": folder.not_images} if folder.not_images else {}
    everything = Examples(images, labels, names, records)
    splits = {
        split: check_images(everything.take(indices), skipped, [sizes[i] for i in indices])
        for split, indices in members.items()
    }
    fingerprint = _digest(json.dumps(list(zip(names, checksums, strict=True))).encode())
    return Loaded(splits, folder.class_names, fingerprint, skipped)


# --- reading and checking images ---------------------------------------------------------------------------

Size = tuple[int, int] | None  # (height, width), None where the image does not decode
OnImage = Callable[[int, bytes], None]


def _read_images(uris: list[str], each: OnImage | None = None) -> tuple[list[bytes], list[Size]]:
    """The bytes and size of every image (b"" and None for files that cannot be read or decoded); ``each``
    as _decode calls it.

    Local files are read and checked together in one parallel tf.data pipeline (C++, outside the GIL): the
    fastest way measured (bench/prepare_data.py). Objects in a bucket are read
    through the storage module (retries) by a thread pool, then checked the same way.
    """
    if uris and not storage.is_gcs(uris[0]):
        return _decode(uris, read_files=True, each=each)
    with ThreadPoolExecutor(16) as pool:  # I/O bound: many small requests
        return _decode(list(pool.map(storage.read_bytes, uris)), each=each)


def image_sizes(images: list[bytes]) -> list[Size]:
    """(height, width) of each image, None for those that do not decode."""
    return _decode(images)[1]


def _decode(
    items: list, read_files: bool = False, each: OnImage | None = None
) -> tuple[list[bytes], list[Size]]:
    """Each item's bytes (the file's, with ``read_files``) and (height, width), b"" and None where reading or
    decoding fails. ``each(index, bytes)`` is called for each image that decodes, as soon as it has: work
    there runs while the pipeline goes on decoding the others.

    A first pass checks every item with one op, decode_jpeg at 1/8 scale. libjpeg still parses the whole
    compressed stream, so a truncated or corrupt JPEG fails exactly as the full decode in training does
    (5,600 corrupted variants: truncations, flipped bytes, garbage blocks, of baseline, progressive and
    greyscale JPEGs, all agreed), at a fraction of the cost; the same op decodes PNG and GIF in full. Its
    size comes from the header. What the first pass refuses (corrupt files, BMP) is decoded in full by a
    second. One op for every image, no branch in the graph: 25% faster than choosing the decoder per image.
    """
    images, sizes = [b""] * len(items), [None] * len(items)
    for full in (False, True):
        failed = [i for i, size in enumerate(sizes) if size is None]
        if not failed:
            break
        for index, image, shape in _checked(items, failed, read_files, full):
            images[index] = image
            sizes[index] = tuple(shape) if full or not image.startswith(_JPEG) else _jpeg_size(image)
            if each:
                each(index, image)
    return images, sizes


def _checked(
    items: list, indices: list[int], read_files: bool, full: bool
) -> Iterator[tuple[int, bytes, tuple[int, int]]]:
    """(index, bytes, decoded (height, width)) of those of ``items`` at ``indices`` that read and decode.
    tf.data works in parallel, in any order, dropping the failures; batches, so that Python handles few
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

    ds = tf.data.Dataset.from_tensor_slices((indices, [items[i] for i in indices]))
    ds = ds.map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False).ignore_errors()
    for batch in ds.batch(512).as_numpy_iterator():
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


def check_images(
    examples: Examples, skipped: dict[str, list[str]], sizes: list[Size] | None = None
) -> Examples:
    """Keep the images that decode and are at least MIN_IMAGE_SIDE pixels; record the others in ``skipped``.
    JPEG and PNG stay as they are; other formats (BMP, GIF) are stored as PNG. ``sizes``: as image_sizes
    gives them, when already known."""
    sizes = image_sizes(examples.images) if sizes is None else sizes
    keep = []
    for i, name in enumerate(examples.names):
        if sizes[i] is None:
            skipped.setdefault("corrupt or not decodable", []).append(name)
        elif min(sizes[i]) < MIN_IMAGE_SIDE:
            skipped.setdefault(f"smaller than {MIN_IMAGE_SIDE} px", []).append(name)
        else:
            keep.append(i)
    kept = examples.take(keep)
    for i, image in enumerate(kept.images):
        if not image.startswith(_PASS_THROUGH):
            kept.images[i] = _to_png(image)
            if kept.records:
                kept.records[i] = None  # it was encoded in the source's format
    return kept


def _to_png(image: bytes) -> bytes:
    return tf.io.encode_png(tf.io.decode_image(image, channels=3, expand_animations=False)).numpy()


# --- the dataset card --------------------------------------------------------------------------------------


SAMPLES_FILE = "samples.jpg"


def write_samples(output_dir: str, train: Examples, class_names: list[str], count: int = 8) -> None:
    """``samples.jpg`` in the artifact: a labelled grid of the first training image of each class in
    turn (up to ``count``), for the dataset card."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(train.labels):
        by_class.setdefault(label, []).append(i)
    picked = [i for round_ in zip(*by_class.values(), strict=False) for i in round_][:count]
    images = [
        tf.io.decode_image(train.images[i], channels=3, expand_animations=False).numpy() for i in picked
    ]
    grid = label_grid(images, [class_names[train.labels[i]] for i in picked])
    (Path(output_dir) / SAMPLES_FILE).write_bytes(jpeg_bytes(grid))


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

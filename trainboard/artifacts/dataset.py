"""The Dataset artifact: written by prepare_data, read by train and evaluate.

A TFDS prepared dataset (`tfds.builder_from_directory(dir)` reads it without any builder class) plus
trainboard's own summary:

    <dir>/dataset.json                                 class names, examples per split, source, fingerprint
    <dir>/dataset_info.json, features.json             TFDS metadata
    <dir>/trainboard-<split>.tfrecord-00000-of-00002   tf.Example {image: JPEG/PNG bytes, label: int64}

Images stay encoded (small artifact, decoded in parallel by tf.data at training time).
"""

from __future__ import annotations

import functools
import json
import shutil
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

import google_crc32c
import tensorflow as tf

FORMAT = "trainboard-tfds/1"
_METADATA = "dataset.json"
_TFDS_NAME = "trainboard"
_SHARD_BYTES = 64 << 20  # several shards for large splits, so tf.data can read them in parallel
_WRITE_BYTES = 2 << 20  # records buffered per shard between writes
_IMAGE_KEY, _LABEL_KEY = b"\x0a\x05image", b"\x0a\x05label"  # Features map entries' key(1) fields


@dataclass
class DatasetInfo:
    class_names: list[str]
    examples: dict[str, int]
    source: str
    fingerprint: str = ""
    format: str = FORMAT
    extra: dict = field(default_factory=dict)


def _tag(number: int, length: int) -> bytes:
    """The tag and length of a length-delimited protobuf field (wire type 2) of ``length`` bytes."""
    return _varint(number << 3 | 2) + _varint(length)


def _varint(value: int) -> bytes:
    if value < 0x4000:  # every tag, and the length of an image under 16 KiB
        return bytes((value,)) if value < 0x80 else bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@functools.cache
def _label_entry(label: int) -> bytes:
    """The Features.feature map entry {key: "label", value: Feature{int64_list: {value: [label]}}}."""
    values = _varint(label)
    int64_list = _tag(1, len(values)) + values  # Int64List.value, packed
    feature = _tag(3, len(int64_list)) + int64_list  # Feature.int64_list
    entry = _LABEL_KEY + _tag(2, len(feature)) + feature
    return _tag(1, len(entry)) + entry


def _example(encoded_image: bytes, label: int) -> list[bytes]:
    """tf.train.Example {image: [encoded_image], label: [label]}, serialized, as parts around the image (not
    copied). Written by hand: building it through tf.train.Example and writing records one at a time took
    a third as long as checking the images (bench/prepare_data.py). Tests parse it back with TensorFlow."""
    size = len(encoded_image)
    value = _tag(1, size)  # BytesList.value
    feature = _tag(1, len(value) + size) + value  # Feature.bytes_list
    entry = _IMAGE_KEY + _tag(2, len(feature) + size) + feature  # map entry {key(1), value(2)}
    features = _tag(1, len(entry) + size) + entry  # Features.feature (a map: repeated entries)
    label_entry = _label_entry(label)
    return [_tag(1, len(features) + size + len(label_entry)) + features, encoded_image, label_entry]


def _masked_crc(*parts: bytes) -> bytes:
    crc = 0
    for part in parts:
        crc = google_crc32c.extend(crc, part)
    return struct.pack("<I", ((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF)


def _tfrecord(data: list[bytes]) -> list[bytes]:
    """One TFRecord record around ``data`` (parts): length, its masked CRC-32C, data, the data's."""
    length = struct.pack("<Q", sum(map(len, data)))
    return [length, _masked_crc(length), *data, _masked_crc(*data)]


Record = list[bytes]  # one TFRecord record, in parts: the image inside is not copied


def encode_record(encoded_image: bytes, label: int) -> Record:
    """The TFRecord record of tf.train.Example {image: [encoded_image], label: [label]}."""
    return _tfrecord(_example(encoded_image, label))


@dataclass
class _Shard:
    file: BinaryIO
    path: Path  # a temporary name: finish gives the shard its own
    records: int = 0
    size: int = 0
    pending: list[bytes] = field(default_factory=list)  # records' parts not yet written
    pending_size: int = 0

    def add(self, record: Record, size: int) -> None:
        self.pending += record
        self.records += 1
        self.size += size
        self.pending_size += size
        if self.pending_size >= _WRITE_BYTES:
            self.flush()

    def flush(self) -> None:
        """One write of what is pending: few large writes, not one per record (a file write releases the
        GIL: the check pipeline goes on meanwhile)."""
        if self.pending:
            self.file.write(b"".join(self.pending))
            self.pending, self.pending_size = [], 0


class DatasetWriter:
    """Writes a Dataset artifact record by record, in bounded memory: each split in order into shards of up
    to _SHARD_BYTES, under temporary names. ``finish`` names them and writes the metadata (dataset.json
    last: it marks a complete artifact). Leaving the ``with`` block without finishing removes everything
    written: an artifact is whole or absent."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self._shards: dict[str, list[_Shard]] = {}
        self._finished = False

    def __enter__(self) -> DatasetWriter:
        self._made_folder = not self.out_dir.exists()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._there_before = set(self.out_dir.iterdir())
        return self

    def write(self, split: str, record: Record) -> None:
        size = sum(map(len, record))
        shards = self._shards.setdefault(split, [])
        if not shards or (shards[-1].records and shards[-1].size + size > _SHARD_BYTES):
            if shards:
                shards[-1].flush()
                shards[-1].file.close()
            path = self.out_dir / f".{_TFDS_NAME}-{split}-{len(shards)}.partial"
            shards.append(_Shard(path.open("wb"), path))
        shards[-1].add(record, size)

    def finish(self, info: DatasetInfo, files: dict[str, bytes] | None = None) -> None:
        """Name the shards, write ``files`` (name -> content), the TFDS metadata and dataset.json."""
        import tensorflow_datasets as tfds

        for split, shards in self._shards.items():
            for index, shard in enumerate(shards):
                shard.flush()
                shard.file.close()
                name = f"{_TFDS_NAME}-{split}.tfrecord-{index:05d}-of-{len(shards):05d}"
                shard.path.rename(self.out_dir / name)
        for name, content in (files or {}).items():
            (self.out_dir / name).write_bytes(content)
        split_infos = [
            tfds.core.SplitInfo(
                name=split,
                shard_lengths=[shard.records for shard in shards],
                num_bytes=sum(shard.size for shard in shards),
            )
            for split, shards in self._shards.items()
        ]
        label = tfds.features.ClassLabel(names=info.class_names)
        features = tfds.features.FeaturesDict(
            {"image": tfds.features.Image(shape=(None, None, 3)), "label": label}
        )
        tfds.folder_dataset.write_metadata(
            data_dir=self.out_dir, features=features, split_infos=split_infos, check_data=False
        )
        (self.out_dir / _METADATA).write_text(json.dumps(asdict(info), indent=2))
        self._finished = True

    def __exit__(self, *_: object) -> None:
        for shards in self._shards.values():
            for shard in shards:
                shard.file.close()
        if self._finished:
            return
        if self._made_folder:
            shutil.rmtree(self.out_dir)
        else:  # a folder given to it (a KFP output): what it added
            for path in set(self.out_dir.iterdir()) - self._there_before:
                path.unlink()


def read_info(dataset_dir: str | Path) -> DatasetInfo:
    path = Path(dataset_dir) / _METADATA
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format {data.get('format')!r} is not {FORMAT!r}")
    return DatasetInfo(**data)


def _parse(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    parsed = tf.io.parse_single_example(
        serialized,
        {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)},
    )
    return parsed["image"], parsed["label"]


def _records(dataset_dir: str | Path, split: str) -> tf.data.Dataset:
    files = sorted(str(p) for p in Path(dataset_dir).glob(f"{_TFDS_NAME}-{split}.tfrecord-*"))
    if not files:
        raise ValueError(f"{dataset_dir}: no {split} split")
    return tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE)  # deterministic order


def read_encoded(dataset_dir: str | Path, split: str, limit: int = -1) -> list[bytes]:
    """The encoded images of ``split`` as stored (JPEG or PNG), in read_split's order (the first
    ``limit``; -1: all): what a client of the serving export sends."""
    return [encoded.numpy() for encoded, _ in _records(dataset_dir, split).map(_parse).take(limit)]


def read_split(dataset_dir: str | Path, split: str, image_size: int) -> tf.data.Dataset:
    """(uint8 image resized to image_size x image_size x 3, int label) of every example of ``split``,
    records read and decoded in parallel. Batching, caching and shuffling are the reader's to choose."""

    def decode(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        encoded, label = _parse(serialized)
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        image = tf.image.resize(image, (image_size, image_size))
        return tf.cast(tf.round(image), tf.uint8), label

    ds = _records(dataset_dir, split)
    # The count from dataset.json: a TFRecord file's is unknown, and Keras, not knowing an epoch's steps,
    # begins one step more per epoch (keras/src/trainers/epoch_iterator.py, _enumerate_iterator's
    # open-ended loop, and keras/src/backend/tensorflow/trainer.py, fit calling on_train_batch_begin
    # before the step that runs out of data; Keras 3.15.1). That shifts the steps of per-batch summaries,
    # and a resumed run would log a step twice (tests/test_train.py pins it). A split that does not hold
    # its count fails here instead.
    examples = read_info(dataset_dir).examples.get(split, 0)
    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).apply(
        tf.data.experimental.assert_cardinality(examples)
    )

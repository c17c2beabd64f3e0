"""The Dataset artifact: records written by hand, read back by TensorFlow exactly as it writes them; shards
in order; nothing left behind by a write that does not finish."""

from __future__ import annotations

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from trainboard.artifacts import dataset as dataset_artifact
from trainboard.artifacts.dataset import DatasetInfo, DatasetWriter, encode_record


def label_of(record: tf.Tensor) -> int:
    return tf.train.Example.FromString(record.numpy()).features.feature["label"].int64_list.value[0]


def test_records_parse_back_as_tensorflow_writes_them_with_checksums_checked(tmp_path):
    # Lengths and labels on each side of the varint byte boundaries.
    images = [bytes([n % 251]) * n for n in (0, 1, 127, 128, 16383, 16384, 2_100_000)]
    labels = [0, 127, 128, 16383, 16384, 2**40, 5]
    with DatasetWriter(tmp_path / "data") as writer:
        for image, label in zip(images, labels, strict=True):
            writer.write("train", encode_record(image, label))
        writer.finish(DatasetInfo(["a", "b"], {"train": len(images)}, "test"))
    (shard,) = (tmp_path / "data").glob("trainboard-train.tfrecord-*")
    assert shard.name.endswith("00000-of-00001")
    records = list(tf.data.TFRecordDataset(str(shard)))
    for record, image, label in zip(records, images, labels, strict=True):
        expected = tf.train.Example()
        expected.features.feature["image"].bytes_list.value.append(image)
        expected.features.feature["label"].int64_list.value.append(label)
        assert tf.train.Example.FromString(record.numpy()) == expected  # (map entry order may differ)
    corrupted = bytearray(shard.read_bytes())
    corrupted[-1] ^= 1  # the last record's data checksum
    shard.write_bytes(bytes(corrupted))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(shard)))


def test_splits_are_sharded_in_order_and_an_unfinished_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset_artifact, "_SHARD_BYTES", 3000)
    image = tf.io.encode_png(tf.zeros((16, 16, 3), tf.uint8)).numpy()
    labels = {"train": [i % 3 for i in range(40)], "validation": [2, 1], "test": [0, 1, 2]}
    with DatasetWriter(tmp_path / "data") as writer:
        for split, split_labels in labels.items():
            for label in split_labels:
                writer.write(split, encode_record(image, label))
        writer.finish(DatasetInfo(["a", "b", "c"], {s: len(v) for s, v in labels.items()}, "test"))
    shards = sorted(str(p) for p in (tmp_path / "data").glob("trainboard-train.tfrecord-*"))
    assert len(shards) > 1 and shards[-1].endswith(f"-of-{len(shards):05d}")
    for split, split_labels in labels.items():
        files = sorted(str(p) for p in (tmp_path / "data").glob(f"trainboard-{split}.tfrecord-*"))
        read = [label_of(record) for record in tf.data.TFRecordDataset(files)]
        assert read == split_labels, "in the order written"
    assert tfds.builder_from_directory(str(tmp_path / "data")).info.splits["train"].num_examples == 40
    assert not list((tmp_path / "data").glob(".*")), "no temporary file left"

    with pytest.raises(RuntimeError), DatasetWriter(tmp_path / "broken") as writer:
        writer.write("train", encode_record(image, 0))
        raise RuntimeError("a class turned out to have no usable image")
    assert not (tmp_path / "broken").exists()
    given = tmp_path / "kfp-output"  # a folder that was there: only what the writer added goes
    given.mkdir()
    (given / "theirs").write_text("kept")
    with pytest.raises(RuntimeError), DatasetWriter(given) as writer:
        writer.write("train", encode_record(image, 0))
        raise RuntimeError("a split turned out empty")
    assert [p.name for p in given.iterdir()] == ["theirs"]

"""The Dataset artifact's records, written by hand, read back by TensorFlow exactly as it writes them."""

from __future__ import annotations

import pytest
import tensorflow as tf

from trainboard.dataset_artifact import DatasetInfo, encode_record, write_dataset


def test_records_parse_back_as_tensorflow_writes_them_with_checksums_checked(tmp_path):
    # Lengths and labels on each side of the varint byte boundaries.
    images = [bytes([n % 251]) * n for n in (0, 1, 127, 128, 16383, 16384, 2_100_000)]
    labels = [0, 127, 128, 16383, 16384, 2**40, 5]
    records = [encode_record(image, label) for image, label in zip(images, labels, strict=True)]
    write_dataset(tmp_path, DatasetInfo(["a", "b"], {"train": len(records)}, "test"), {"train": records})
    shards = sorted(tmp_path.glob("trainboard-train.tfrecord-*"))
    assert [p.name[-14:] for p in shards] == ["00000-of-00002", "00001-of-00002"]  # two, written at once
    read = []
    for record in tf.data.TFRecordDataset([str(p) for p in shards]):
        example = tf.train.Example.FromString(record.numpy())
        read.append((example.features.feature["label"].int64_list.value[0], example))
    for label, image in zip(labels, images, strict=True):
        expected = tf.train.Example()
        expected.features.feature["image"].bytes_list.value.append(image)
        expected.features.feature["label"].int64_list.value.append(label)
        assert (label, expected) in read
    assert len(read) == len(records)
    corrupted = bytearray(shards[0].read_bytes())
    corrupted[-1] ^= 1  # the last record's data checksum
    shards[0].write_bytes(bytes(corrupted))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(shards[0])))

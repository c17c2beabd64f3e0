"""The Dataset artifact on disk: written by prepare_data, read by train and evaluate.

A TFDS prepared dataset (`tfds.builder_from_directory(dir)` reads it without any builder class) plus
trainboard's own summary:

    <dir>/dataset.json                                 class names, examples per split, source, fingerprint
    <dir>/dataset_info.json, features.json             TFDS metadata
    <dir>/trainboard-<split>.tfrecord-00000-of-00002   tf.Example {image: JPEG/PNG bytes, label: int64}

Images stay encoded (small artifact, decoded in parallel by tf.data at training time).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tensorflow as tf

FORMAT = "trainboard-tfds/1"
SPLITS = ("train", "validation", "test")
_METADATA = "dataset.json"
_TFDS_NAME = "trainboard"
_SHARD_BYTES = 64 << 20  # several shards for large splits, so tf.data can read them in parallel


@dataclass
class DatasetInfo:
    class_names: list[str]
    examples: dict[str, int]
    source: str
    fingerprint: str = ""
    format: str = FORMAT
    extra: dict = field(default_factory=dict)


def _example(encoded_image: bytes, label: int) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded_image])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_split(out_dir: Path, split: str, images: list[bytes], labels: list[int]) -> list[int]:
    """Write one split as TFRecord shards (examples dealt round-robin); return the shard lengths."""
    shards = max(1, -(-sum(map(len, images)) // _SHARD_BYTES))
    lengths = []
    for shard in range(shards):
        path = out_dir / f"{_TFDS_NAME}-{split}.tfrecord-{shard:05d}-of-{shards:05d}"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for i in range(shard, len(images), shards):
                writer.write(_example(images[i], int(labels[i])))
        lengths.append(len(range(shard, len(images), shards)))
    return lengths


def write_dataset(
    out_dir: str | Path, info: DatasetInfo, splits: dict[str, tuple[list[bytes], list[int]]]
) -> None:
    """Write every split, the TFDS metadata and dataset.json (last: it marks a complete artifact)."""
    import tensorflow_datasets as tfds

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split_infos = [
        tfds.core.SplitInfo(
            name=split,
            shard_lengths=_write_split(out_dir, split, images, labels),
            num_bytes=sum(map(len, images)),
        )
        for split, (images, labels) in splits.items()
    ]
    label = tfds.features.ClassLabel(names=info.class_names)
    features = tfds.features.FeaturesDict(
        {"image": tfds.features.Image(shape=(None, None, 3)), "label": label}
    )
    tfds.folder_dataset.write_metadata(
        data_dir=out_dir, features=features, split_infos=split_infos, check_data=False
    )
    (out_dir / _METADATA).write_text(json.dumps(asdict(info), indent=2))


def read_info(dataset_dir: str | Path) -> DatasetInfo:
    path = Path(dataset_dir) / _METADATA
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format {data.get('format')!r} is not {FORMAT!r}")
    return DatasetInfo(**data)


def _parse(serialized):
    parsed = tf.io.parse_single_example(
        serialized,
        {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)},
    )
    return parsed["image"], parsed["label"]


def load_split(
    dataset_dir: str | Path,
    split: str,
    image_size: int,
    batch_size: int,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 255] resized to image_size, int labels)."""
    files = sorted(str(p) for p in Path(dataset_dir).glob(f"{_TFDS_NAME}-{split}.tfrecord-*"))
    if not files:
        raise ValueError(f"{dataset_dir}: no {split} split")

    def decode(encoded, label):
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        image = tf.image.resize(image, (image_size, image_size))
        return image, label

    ds = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE).map(_parse)
    if shuffle_seed is not None:
        ds = ds.shuffle(10_000, seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)

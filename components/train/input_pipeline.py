"""The training input pipeline over the Dataset artifact: decoded and resized in parallel, cached in memory
when it fits (so later epochs skip decoding), shuffled and augmented after the cache, batched, prefetched."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from trainboard.artifacts.dataset import read_split

_CACHE_BYTES = 2 << 30  # decoded, resized splits up to this size stay in memory after the first epoch


def _augment(image, label):
    """Random flip, crop (from a 15% larger resize) and colour jitter; pixels stay in [0, 255]."""
    size = tf.shape(image)[0]
    image = tf.image.random_flip_left_right(image)
    larger = tf.cast(tf.cast(size, tf.float32) * 1.15, tf.int32)
    image = tf.image.random_crop(tf.image.resize(image, (larger, larger)), (size, size, 3))
    image = tf.image.random_brightness(image, 0.1 * 255)
    image = tf.image.random_contrast(image, 0.8, 1.2)
    image = tf.image.random_saturation(image, 0.8, 1.2)
    return tf.clip_by_value(image, 0, 255), label


def worker_share(examples: int, batch_size: int, worker: tuple[int, int]) -> tuple[int, int]:
    """(examples, batch size) of worker ``worker`` = (index, count): an equal share of the examples (at
    most count - 1 left out), so that every worker takes the same number of steps (a collective
    all-reduce waits for all of them), and an equal part of the global ``batch_size`` (a multiple of
    the count: trainboard.config_checks)."""
    count = worker[1]
    return examples // count, batch_size // count


def load_split(
    dataset_dir: str | Path,
    split: str,
    image_size: int,
    batch_size: int,
    shuffle_seed: int | None = None,
    augment: bool = False,
    cache: bool = True,
    worker: tuple[int, int] = (0, 1),
) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 255] resized to image_size, int labels); ``batch_size`` is the
    global batch, over all ``worker`` = (index, count) workers, each reading its share (worker_share).

    A split that fits _CACHE_BYTES decoded is cached in memory (as uint8) so later epochs skip decoding;
    shuffling and augmentation come after the cache.
    """
    ds = read_split(dataset_dir, split, image_size)
    examples = int(ds.cardinality())  # read_split asserts the split's count
    if worker[1] > 1:
        examples, batch_size = worker_share(examples, batch_size, worker)
        # Every count-th record from the index-th: a split of one TFRecord file shares as one of many.
        # The strategy's own sharding is off: it would shard this share again (tf.data AutoShardPolicy).
        ds = ds.shard(worker[1], worker[0]).take(examples)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        ds = ds.with_options(options)
    if cache and examples * image_size * image_size * 3 <= _CACHE_BYTES:
        ds = ds.cache()
    if shuffle_seed is not None:
        ds = ds.shuffle(min(max(examples, 1), 10_000), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda image, label: (tf.cast(image, tf.float32), label), num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        ds = ds.map(_augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

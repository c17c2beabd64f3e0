"""The training input pipeline over the Dataset artifact: decoded and resized in parallel, cached in memory
when it fits (so later epochs skip decoding), shuffled and augmented after the cache, batched, prefetched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    """(examples, examples a step) of worker ``worker`` = (index, count): an equal share of the examples
    (at most count - 1 left out), so that every worker takes the same number of steps (a collective
    all-reduce waits for all of them), and an equal part of the global ``batch_size`` (a multiple of
    the count: trainboard.config_checks)."""
    count = worker[1]
    return examples // count, batch_size // count


def load_split(
    dataset_dir: str | Path,
    split: str,
    image_size: int,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    augment: bool = False,
    cache: bool = True,
    worker: tuple[int, int] = (0, 1),
) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 255] resized to image_size, int labels): of worker ``worker`` =
    (index, count)'s share of the split (worker_share), every count-th record from the index-th (a split
    of one TFRecord file shares out as one of many).

    A split that fits _CACHE_BYTES decoded is cached in memory (as uint8) so later epochs skip decoding;
    shuffling and augmentation come after the cache.
    """
    ds = read_split(dataset_dir, split, image_size)
    examples = int(ds.cardinality())  # read_split asserts the split's count
    if worker[1] > 1:
        examples = worker_share(examples, batch_size, worker)[0]
        ds = ds.shard(worker[1], worker[0]).take(examples)
    if cache and examples * image_size * image_size * 3 <= _CACHE_BYTES:
        ds = ds.cache()
    if shuffle_seed is not None:
        ds = ds.shuffle(min(max(examples, 1), 10_000), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda image, label: (tf.cast(image, tf.float32), label), num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        ds = ds.map(_augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _one_hot(ds: tf.data.Dataset, classes: int) -> tf.data.Dataset:
    return ds.map(lambda x, y: (x, tf.one_hot(y, classes)), num_parallel_calls=tf.data.AUTOTUNE)


def fit_split(
    strategy: tf.distribute.Strategy,
    workers: int,
    dataset_dir: str | Path,
    split: str,
    *,
    image_size: int,
    batch_size: int,
    classes: int,
    **options: Any,
) -> tf.data.Dataset | tf.distribute.DistributedDataset:
    """The split as fit takes it (one-hot labels; ``options``: load_split's). With several workers,
    each builds its own share, batched per replica (distribute_datasets_from_function): handed a batched
    dataset instead, the strategy would split every batch across the replicas again and each worker
    would train on half of its batches (measured: the update then is not the global batch's)."""
    if workers == 1:
        return _one_hot(load_split(dataset_dir, split, image_size, batch_size, **options), classes)

    def share(context: tf.distribute.InputContext) -> tf.data.Dataset:
        worker = (context.input_pipeline_id, context.num_input_pipelines)
        per_replica = context.get_per_replica_batch_size(batch_size)
        return _one_hot(
            load_split(dataset_dir, split, image_size, per_replica, worker=worker, **options), classes
        )

    return strategy.distribute_datasets_from_function(share)

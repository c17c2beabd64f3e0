"""The training input pipeline over the Dataset artifact: decoded and resized in parallel, cached in memory
when it fits (so later epochs skip decoding), shuffled and augmented after the cache, batched, prefetched.

Exact resume: the training split is one dataset over the epochs still to train, each epoch shuffled with
a seed of its own (the run's seed and the epoch's number) and augmented with stateless random ops seeded
by (seed, epoch, position), so epoch N sees the same batches whether the run got there in one go or
resumed before it. tf.data's own reshuffle_each_iteration counts iterations of the dataset object, which
a restarted process begins again at the first epoch's order; stateful random ops (tf.image.random_*)
restart their state too."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NamedTuple

import tensorflow as tf

from trainboard.artifacts.dataset import read_split

AUTO = tf.data.AUTOTUNE
_CACHE_BYTES = 2 << 30  # decoded, resized splits up to this size stay in memory after the first epoch


class Epochs(NamedTuple):
    """The training epochs range(start, end) of a run seeded ``seed``: what decides their order."""

    seed: int
    start: int = 0
    end: int = 1


def _augment(seed, image, label):
    """Random flip, crop (from a 15% larger resize) and colour jitter, drawn from ``seed`` (shape [2]):
    the same seed, the same image; pixels stay in [0, 255]."""
    flip, crop, brightness, contrast, saturation = tf.unstack(tf.random.experimental.stateless_split(seed, 5))
    size = tf.shape(image)[0]
    image = tf.image.stateless_random_flip_left_right(image, flip)
    larger = tf.cast(tf.cast(size, tf.float32) * 1.15, tf.int32)
    image = tf.image.stateless_random_crop(tf.image.resize(image, (larger, larger)), (size, size, 3), crop)
    image = tf.image.stateless_random_brightness(image, 0.1 * 255, brightness)
    image = tf.image.stateless_random_contrast(image, 0.8, 1.2, contrast)
    image = tf.image.stateless_random_saturation(image, 0.8, 1.2, saturation)
    return tf.clip_by_value(image, 0, 255), label


def _epochs(
    ds: tf.data.Dataset, examples: int, epochs: Epochs, *, augment: bool, batch_size: int
) -> tf.data.Dataset:
    """The batches of ``ds`` for each of the ``epochs``, one after the other: each epoch in the
    order its seed (the run's seed, the epoch) draws, augmented (``augment``) with a seed per example,
    batched on its own (an epoch's last, smaller batch does not take the next epoch's first examples)."""
    buffer, seed = min(max(examples, 1), 10_000), epochs.seed

    def epoch(number):
        order = ds.shuffle(buffer, seed=seed * 1_000_003 + number, reshuffle_each_iteration=False)
        order = order.map(lambda image, label: (tf.cast(image, tf.float32), label), num_parallel_calls=AUTO)
        if augment:
            seeds = tf.data.Dataset.range(examples).map(
                lambda i: tf.stack([tf.constant(seed, tf.int64), number * examples + i])
            )
            order = tf.data.Dataset.zip(seeds, order).map(
                lambda s, pair: _augment(s, *pair), num_parallel_calls=tf.data.AUTOTUNE
            )
        return order.batch(batch_size)

    # One dataset per epoch, concatenated: shuffle's seed must be a Python number here (a tensor seed,
    # as flat_map would pass, fails beside the global seed keras.utils.set_random_seed sets).
    return functools.reduce(tf.data.Dataset.concatenate, map(epoch, range(epochs.start, epochs.end)))


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
    shuffled: Epochs | None = None,
    augment: bool = False,
    cache: bool = True,
    worker: tuple[int, int] = (0, 1),
) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 255] resized to image_size, int labels): of worker ``worker`` =
    (index, count)'s share of the split (worker_share), every count-th record from the index-th (a split
    of one TFRecord file shares out as one of many).

    A split that fits _CACHE_BYTES decoded is cached in memory (as uint8) so later epochs skip decoding;
    shuffling and augmentation come after the cache. ``shuffled``: those epochs one after the other, each
    shuffled and augmented as its number and the run's seed draw (_epochs); None: one pass in the split's
    order (not augmented: augmentation draws from the seed).
    """
    ds = read_split(dataset_dir, split, image_size)
    examples = int(ds.cardinality())  # read_split asserts the split's count
    if worker[1] > 1:
        examples = worker_share(examples, batch_size, worker)[0]
        ds = ds.shard(worker[1], worker[0]).take(examples)
    if cache and examples * image_size * image_size * 3 <= _CACHE_BYTES:
        ds = ds.cache()
    if shuffled is not None:
        ds = _epochs(ds, examples, shuffled, augment=augment, batch_size=batch_size)
    else:
        cast = ds.map(
            lambda image, label: (tf.cast(image, tf.float32), label), num_parallel_calls=tf.data.AUTOTUNE
        )
        ds = cast.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


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

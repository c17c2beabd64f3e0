"""The image check: every image decoded once (in parallel, in the files' order), read from a local folder,
a bucket (read ahead through the storage module) or memory. The caller leaves out what does not decode,
and what is too large: an image's size is read from its header before anything decodes it, so a
decompression bomb (a few kilobytes of PNG that decode to gigabytes) costs no memory."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import tensorflow as tf

from trainboard import storage
from trainboard.sources import image_headers
from trainboard.sources.image_headers import JPEG, PNG

PASS_THROUGH = (JPEG, PNG)  # JPEG and PNG are stored as they are
_REMOTE_CHUNK = 512  # objects read from a bucket ahead of the check: bounds the memory it takes


def checked_images(items: list, max_pixels: int) -> Iterator[tuple[int, bytes, tuple[int, int] | None]]:
    """(index, bytes, (height, width)) of each item; (index, b"", (height, width)) without decoding it for
    an image of more than ``max_pixels`` by its header; (index, b"", None) last for those that cannot be
    read or decoded.

    A first pass checks every item with one op, decode_jpeg at 1/8 scale. libjpeg still parses the whole
    compressed stream, so a truncated or corrupt JPEG fails exactly as the full decode in training does
    (5,600 corrupted variants: truncations, flipped bytes, garbage blocks, of baseline, progressive and
    greyscale JPEGs, all agreed), at a fraction of the cost; the same op decodes PNG and GIF in full. Its
    size comes from the header. What the first pass refuses (corrupt files, BMP) is decoded in full by a
    second. One op for every image, no branch in the graph: 25% faster than choosing the decoder per image.
    Each pass yields in the items' order.
    """
    failed = list(range(len(items)))
    shape: list[int] | tuple[int, int] | None
    for full in (False, True):
        arrived = set()
        for index, image, shape in _decoded(items, failed, full, max_pixels):
            arrived.add(index)
            if image.startswith(JPEG) and not full:
                shape = header_size(image)  # the 1/8-scale decode's shape is not the image's
            assert shape is not None  # libjpeg reads the header of any JPEG it decoded
            yield index, image, (shape[0], shape[1])
        failed = [i for i in failed if i not in arrived]
    for index in failed:
        yield index, b"", None


def _decoded(
    items: list, indices: list[int], full: bool, max_pixels: int
) -> Iterator[tuple[int, bytes, list[int] | tuple[int, int]]]:
    """(index, bytes, decoded [height, width]) of the items at ``indices`` that read and decode, in order;
    (index, b"", (height, width)) for those too large by their header, not decoded.

    Local files are read and checked in one parallel tf.data pipeline (C++, outside the GIL): the fastest
    way measured (bench/prepare_data.py); their headers are read first. Objects in a bucket are read
    through the storage module (retries) by a thread pool, a chunk ahead of the check."""
    if not indices:
        return
    first = items[indices[0]]
    if isinstance(first, str) and storage.is_gcs(first):
        for chunk, data in _read_ahead(items, indices):
            sizes = [header_size(image) for image in data]
            yield from _too_large(chunk, sizes, max_pixels)
            fit = [i for i, size in enumerate(sizes) if not _exceeds(size, max_pixels)]
            yield from _decode_pipeline([chunk[i] for i in fit], [data[i] for i in fit], full, False)
    else:  # local paths (read by tf.data) or encoded bytes
        files = isinstance(first, str)
        sizes = [_file_header_size(items[i]) if files else header_size(items[i]) for i in indices]
        yield from _too_large(indices, sizes, max_pixels)
        fit = [i for i, size in zip(indices, sizes, strict=True) if not _exceeds(size, max_pixels)]
        yield from _decode_pipeline(fit, [items[i] for i in fit], full, read_files=files)


def _exceeds(size: tuple[int, int] | None, max_pixels: int) -> bool:
    return size is not None and size[0] * size[1] > max_pixels


def _too_large(
    indices: list[int], sizes: list[tuple[int, int] | None], max_pixels: int
) -> Iterator[tuple[int, bytes, tuple[int, int]]]:
    for index, size in zip(indices, sizes, strict=True):
        if size is not None and _exceeds(size, max_pixels):
            yield index, b"", size


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


def header_size(data: bytes) -> tuple[int, int] | None:
    """image_headers.header_size, with libjpeg's header reading where the JPEG walk fails."""
    size = image_headers.header_size(data)
    if size is not None or not data.startswith(JPEG):
        return size
    try:
        return tuple(tf.io.extract_jpeg_shape(data)[:2].numpy().tolist())
    except tf.errors.OpError:
        return None


def _file_header_size(path: str) -> tuple[int, int] | None:
    """header_size of a local file, reading only its beginning unless its metadata is longer."""
    try:
        return header_size(image_headers.read_head(path))
    except OSError:  # unreadable: the check's own read fails and says so
        return None


def to_png(image: bytes) -> bytes:
    return tf.io.encode_png(tf.io.decode_image(image, channels=3, expand_animations=False)).numpy()

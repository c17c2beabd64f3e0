"""Read scalars out of TensorBoard event files (TFRecord framing + Event protos), without TensorFlow:
from bytes, or from a run's folder in a root."""

from __future__ import annotations

import struct

from tensorboard.compat.proto import event_pb2
from tensorboard.util import tensor_util

from trainboard import storage


def records(data: bytes) -> list[bytes]:
    """The payloads of a TFRecord stream; a torn record at the end (file still being written) is ignored."""
    out, pos = [], 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        end = pos + 12 + length + 4
        if end > len(data):
            break
        out.append(data[pos + 12 : pos + 12 + length])
        pos = end
    return out


def scalars(data: bytes, tag: str) -> list[tuple[int, float]]:
    """(step, value) of every scalar ``tag`` in one event file's bytes."""
    points = []
    for payload in records(data):
        event = event_pb2.Event.FromString(payload)
        for value in event.summary.value:
            if value.tag == tag:
                number = (
                    value.simple_value
                    if value.HasField("simple_value")
                    else tensor_util.make_ndarray(value.tensor)
                )
                points.append((event.step, float(number)))
    return points


def event_files(run_dir: str, sub: str = "") -> list[str]:
    return [
        u for u in storage.list_files(storage.join(run_dir, sub) if sub else run_dir) if ".tfevents." in u
    ]


def epoch_steps(run_dir: str, split: str = "train", tag: str = "epoch_loss") -> list[int]:
    return sorted(
        step for uri in event_files(run_dir, split) for step, _ in scalars(storage.read_bytes(uri), tag)
    )


def texts(run_dir: str, tag: str) -> list[tuple[int, str]]:
    """(step, text) of every text summary ``tag`` in the run's own event files (not train/, validation/)."""
    points = []
    for uri in event_files(run_dir):
        if "/" in uri[len(run_dir) + 1 :]:
            continue
        for payload in records(storage.read_bytes(uri)):
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                if value.tag == tag:
                    points.append((event.step, tensor_util.make_ndarray(value.tensor).item().decode()))
    return sorted(points)

"""The trend at a glance: night over night, without clicking through the runs.

promote adds a point per run to the TensorBoard runs ``<root>/tensorboard/_trend/run`` (this run's test
accuracy and loss, its training throughput in images/s) and ``<root>/tensorboard/_trend/champion`` (the
champion's test accuracy and loss after the decision), under the tags ``trend/...``: one chart per tag,
a line for the runs and one for the champion, "better or worse than last night" at a glance. ``_trend``
starts with '_': never a run name (checks.check_run_name), and the board's mirror keeps every folder
that is not named as a run.

The step is the run's place in ``<root>/trend.json`` (the runs in the order they first reached promote,
appended by compare-and-swap, so runs finishing at once get steps of their own; a retry finds its step
again). Each run writes whole event files of its own, ``events.out.tfevents.<step>.<run>``, in one write
(atomic on a local root and on GCS): no two runs append to one file, a promote killed half-way leaves no
torn file, and its retry writes the same file again. TensorBoard reads every file of a run folder.
TensorFlow-free: the events are built with tensorboard's own protos.

Two files a night would grow the board's objects forever (the mirror lists and fetches them all), so each
point's file is folded, once its whole calendar year is older than KEEP_NIGHTS nights, into one file per
year and trend run (compact_trend, after each point): the count stays under 2 x (365 + KEEP_NIGHTS) plus
two a year.
"""

from __future__ import annotations

import io
import json
import logging
import re
import struct
import time
from datetime import UTC, datetime

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from trainboard import layout, storage

log = logging.getLogger(__name__)

TREND = "_trend"
RUNS, CHAMPION = "run", "champion"  # the two TensorBoard runs under _trend/
ACCURACY, LOSS, THROUGHPUT = "trend/test_accuracy", "trend/test_loss", "trend/images_per_second"
SAVED = "trend/training_seconds_saved"  # by the race stopping a run that could not win, or was broken
ABOUT = "trend/run"  # text, per step: which run, and the decision
MAX_ATTEMPTS = 20
KEEP_NIGHTS = 90  # the board's retention: a quarter of points stay one file each
_POINT = re.compile(r"events\.out\.tfevents\.(\d{10})\.(?!~)")
# A year's file is named after its last step, with "~" (after every character a run name may hold): it
# sorts right after the last point it folds and before the next one.
_YEAR = re.compile(r"events\.out\.tfevents\.(\d{10})\.~year-(\d{4})$")


def trend_dir(root: str, which: str = "") -> str:
    folder = layout.tensorboard_dir(root, TREND)
    return storage.join(folder, which) if which else folder


def trend_index(root: str) -> str:
    return storage.join(root, "trend.json")


class TrendIndexError(ValueError):
    """``<root>/trend.json`` cannot be read."""


def trend_step(root: str, run: str) -> int:
    """``run``'s step in the trend, 1 for the first run: its place in ``<root>/trend.json``, appended if
    it is not there yet (compare-and-swap: two runs never get one step)."""
    uri = trend_index(root)
    for _ in range(MAX_ATTEMPTS):
        data, generation = storage.read_versioned(uri)
        try:
            runs = json.loads(data)["runs"] if data is not None else []
            if not (isinstance(runs, list) and all(isinstance(r, str) for r in runs)):
                raise TypeError(f"runs is {type(runs).__name__}, not a list of run names")
        except (ValueError, TypeError, KeyError) as e:
            raise TrendIndexError(
                f"{uri} is not a trend index ({type(e).__name__}: {e}); restore it, or delete it (the steps "
                "start again at 1)"
            ) from None
        if run in runs:
            return runs.index(run) + 1
        try:
            storage.write_if_generation(uri, json.dumps({"runs": [*runs, run]}).encode(), generation)
            return len(runs) + 1
        except storage.PreconditionFailed:
            continue  # another run took the next step: read again
    raise RuntimeError(f"{uri} changed {MAX_ATTEMPTS} times while run {run} took a step")


def _scalar(tag: str, value: float) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(tag=tag, simple_value=float(value))


def _text(tag: str, text: str) -> summary_pb2.Summary.Value:
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text")
    )
    return summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=tensor_util.make_tensor_proto(text))


def event_file(step: int, wall_time: float, values: list[summary_pb2.Summary.Value]) -> bytes:
    """A whole event file: its version record, then one event of ``values`` at ``step``."""
    out = io.BytesIO()
    writer = RecordWriter(out)
    writer.write(event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2").SerializeToString())
    event = event_pb2.Event(wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=values))
    writer.write(event.SerializeToString())
    return out.getvalue()


def file_name(step: int, run: str) -> str:
    """Sorted by step (TensorBoard loads a folder's files in name order)."""
    return f"events.out.tfevents.{step:010d}.{run}"


def record_trend(
    root: str,
    run: str,
    test: dict[str, float],
    *,
    images_per_second: float,
    champion: dict[str, float] | None,
    about: str,
    seconds_saved: float = 0.0,
) -> int:
    """Write ``run``'s point: its ``test`` metrics (headline names), throughput (0: not known, not
    plotted) and the training time the race saved by stopping it (0: not stopped, not plotted) to
    _trend/run, the ``champion``'s after the decision (None: there is none) to _trend/champion,
    ``about`` as the step's text. The step."""
    step = trend_step(root, run)
    now = time.time()
    values = [_scalar(ACCURACY, test["test_accuracy"]), _scalar(LOSS, test["test_loss"])]
    if images_per_second > 0:
        values.append(_scalar(THROUGHPUT, images_per_second))
    if seconds_saved > 0:
        values.append(_scalar(SAVED, seconds_saved))
    values.append(_text(ABOUT, about))
    storage.write_bytes(
        storage.join(trend_dir(root, RUNS), file_name(step, run)), event_file(step, now, values)
    )
    if champion is not None and "test_accuracy" in champion:
        values = [_scalar(ACCURACY, champion["test_accuracy"])]
        if "test_loss" in champion:
            values.append(_scalar(LOSS, champion["test_loss"]))
        storage.write_bytes(
            storage.join(trend_dir(root, CHAMPION), file_name(step, run)), event_file(step, now, values)
        )
    try:
        compact_trend(root)
    except Exception as e:  # the point is written; folding old ones waits for the next night
        log.warning("trend: folding old points failed: %s", e)
    return step


def _year_file(last_step: int, year: int) -> str:
    return f"events.out.tfevents.{last_step:010d}.~year-{year}"


def _points(data: bytes) -> bytes:
    """The records of a point's file after its first (the file version): its point."""
    (length,) = struct.unpack_from("<Q", data)
    return data[8 + 4 + length + 4 :]


def _record(event: event_pb2.Event) -> bytes:
    out = io.BytesIO()
    RecordWriter(out).write(event.SerializeToString())
    return out.getvalue()


def compact_trend(root: str, keep_nights: int = KEEP_NIGHTS, now: float | None = None) -> int:
    """Fold the points of every calendar year (UTC, by the time each point's file was written) that ended
    more than ``keep_nights`` nights before ``now`` into one file per year and trend run; the number of
    point files folded.

    The order makes a kill at any point harmless: the year's file is written whole and create-only first,
    named to sort right after the last point it holds, and begins with a restart at its first step; only
    then are the points' files deleted (a run of this that finds a year's file deletes what it folded
    first). While both exist, TensorBoard reads the points, then the year's file, which takes their place
    (the Python loader at the restart, the Rust one as the steps come again): every point shows once."""
    now = time.time() if now is None else now
    folded = 0
    for which in (RUNS, CHAMPION):
        folder = trend_dir(root, which)
        files = storage.list_modified(folder)
        years = [(int(m.group(1)), name) for name in files if (m := _YEAR.match(name))]
        done = max((step for step, _ in years), default=0)
        points = sorted(
            (int(m.group(1)), name, files[name][1]) for name in files if (m := _POINT.match(name))
        )
        for _, name, _ in [p for p in points if p[0] <= done]:  # a fold killed before its deletes
            storage.delete(storage.join(folder, name))
        points = [p for p in points if p[0] > done]
        while points:
            year = datetime.fromtimestamp(points[0][2], UTC).year
            ends = datetime(year + 1, 1, 1, tzinfo=UTC).timestamp()
            if ends > now - keep_nights * 86400:
                break
            block = []
            for point in points:  # the points up to the year's last one, in step order
                if point[2] >= ends:
                    break
                block.append(point)
            # A restart at the first step tells TensorBoard's Python loader to drop what it holds from there
            # on (the Rust one drops it by itself as the steps come again). Two: the loader takes a run's
            # first START for its start, not a restart.
            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            data = _record(event_pb2.Event(wall_time=now, file_version="brain.Event:2"))
            data += 2 * _record(event_pb2.Event(wall_time=now, step=block[0][0], session_log=start))
            data += b"".join(_points(storage.read_bytes(storage.join(folder, name))) for _, name, _ in block)
            uri = storage.join(folder, _year_file(block[-1][0], year))
            try:
                storage.write_if_generation(uri, data, 0)
            except storage.PreconditionFailed:
                log.info("trend: %s was written by another run's compaction", uri)
            for _, name, _ in block:
                storage.delete(storage.join(folder, name))
            folded += len(block)
            points = points[len(block) :]
    return folded

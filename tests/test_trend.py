"""The trend at a glance: promote adds a point per run to ``<root>/tensorboard/_trend/`` (this run's test
accuracy, loss and throughput; the champion's after the decision), read back from the event files and
from a real TensorBoard; runs promoting at once each get a step of their own; a retry adds no point."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2
from tensorboard.util import tensor_util

from tests.support.events import event_files, records, scalars
from tests.support.promotion import metrics_with_accuracy, model_folder
from trainboard import storage
from trainboard.artifacts.model import steady_images_per_second
from trainboard.board.retention import retained_runs
from trainboard.checks import check_run_name
from trainboard.components.promote import trend
from trainboard.components.promote.core import promote
from trainboard.components.promote.trend import (
    ABOUT,
    ACCURACY,
    CHAMPION,
    LOSS,
    RUNS,
    THROUGHPUT,
    TREND,
    file_name,
    record_trend,
    trend_dir,
    trend_index,
    trend_step,
)
from trainboard.config import PromotionRule
from trainboard.errors import UsageError


def trained(tmp_path: Path, run: str, images_per_second: float) -> str:
    """A stand-in Model artifact whose metadata carries its training throughput."""
    folder = model_folder(tmp_path, run)
    info = Path(folder) / "trainboard_model.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "images_per_second": images_per_second}))
    return folder


def points(root: str, which: str, tag: str) -> list[tuple[int, float]]:
    """(step, value) of ``tag`` over every event file of _trend/<which>, by step; values as float32 keeps
    them, rounded to 4 places."""
    files = event_files(trend_dir(root, which))
    return sorted((step, round(v, 4)) for uri in files for step, v in scalars(storage.read_bytes(uri), tag))


def texts(root: str) -> list[tuple[int, str]]:
    out = []
    for uri in event_files(trend_dir(root, RUNS)):
        for payload in records(storage.read_bytes(uri)):
            event = event_pb2.Event.FromString(payload)
            out += [
                (event.step, tensor_util.make_ndarray(v.tensor).item().decode())
                for v in event.summary.value
                if v.tag == ABOUT
            ]
    return sorted(out)


NIGHTS = [("n1", 0.6, 120.0), ("n2", 0.5, 118.0), ("n3", 0.8, 60.0)]  # n2 worse, n3 better but slower


def test_three_nights_give_one_point_per_run_in_order_and_the_champion_after_each(root, tmp_path):
    for run, accuracy, speed in NIGHTS:
        promote(
            root, run, trained(tmp_path, run, speed), metrics_with_accuracy(accuracy), rule=PromotionRule()
        )
    loss = {run: round(metrics_with_accuracy(accuracy).loss, 4) for run, accuracy, _ in NIGHTS}
    assert points(root, RUNS, ACCURACY) == [(1, 0.6), (2, 0.5), (3, 0.8)]
    assert points(root, RUNS, LOSS) == [(1, loss["n1"]), (2, loss["n2"]), (3, loss["n3"])]
    assert points(root, RUNS, THROUGHPUT) == [(1, 120.0), (2, 118.0), (3, 60.0)]
    # The champion after each decision: n1, n1 (n2 was not promoted), n3.
    assert points(root, CHAMPION, ACCURACY) == [(1, 0.6), (2, 0.6), (3, 0.8)]
    assert points(root, CHAMPION, LOSS) == [(1, loss["n1"]), (2, loss["n1"]), (3, loss["n3"])]
    about = texts(root)
    assert [step for step, _ in about] == [1, 2, 3]
    assert about[1][1].startswith("n2: not promoted: test accuracy 0.5000 vs champion n1's 0.6000")
    assert about[2][1].startswith("n3: promoted")
    # One file per run in each folder, named in step order (TensorBoard loads a folder's files by name).
    names = [uri.rsplit("/", 1)[1] for uri in event_files(trend_dir(root, RUNS))]
    assert names == sorted(names) and [n.rsplit(".", 1)[1] for n in names] == ["n1", "n2", "n3"]
    assert json.loads(storage.read_bytes(trend_index(root))) == {"runs": ["n1", "n2", "n3"]}


def test_a_retried_or_killed_promotion_adds_no_second_point(tmp_path):
    root = str(tmp_path / "root")
    promote(root, "n1", trained(tmp_path, "n1", 100.0), metrics_with_accuracy(0.6), rule=PromotionRule())
    assert trend_step(root, "n2") == 2  # n2's promote was killed after it took its step, before its files
    promote(root, "n3", trained(tmp_path, "n3", 100.0), metrics_with_accuracy(0.7), rule=PromotionRule())
    for _ in range(2):  # n2's retry, then a retry of that
        promote(root, "n2", trained(tmp_path, "n2", 100.0), metrics_with_accuracy(0.5), rule=PromotionRule())
    promote(root, "n3", trained(tmp_path, "n3", 100.0), metrics_with_accuracy(0.7), rule=PromotionRule())
    assert points(root, RUNS, ACCURACY) == [(1, 0.6), (2, 0.5), (3, 0.7)]
    assert points(root, CHAMPION, ACCURACY) == [(1, 0.6), (2, 0.7), (3, 0.7)]
    assert len(event_files(trend_dir(root, RUNS))) == 3


def test_runs_promoting_at_once_each_get_a_step_of_their_own(root, tmp_path):
    runs = [f"r{i}" for i in range(6)]
    folders = {run: trained(tmp_path, run, 50.0 + i) for i, run in enumerate(runs)}
    barrier = threading.Barrier(len(runs))
    errors: list[BaseException] = []

    def night(i: int, run: str) -> None:
        try:
            barrier.wait()
            promote(root, run, folders[run], metrics_with_accuracy(0.5 + 0.05 * i), rule=PromotionRule())
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=night, args=(i, run)) for i, run in enumerate(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    order = json.loads(storage.read_bytes(trend_index(root)))["runs"]
    assert sorted(order) == runs
    got = points(root, RUNS, THROUGHPUT)
    assert got == [(step, 50.0 + runs.index(run)) for step, run in enumerate(order, 1)]


def test_a_damaged_trend_index_is_named_and_the_promotion_stands(tmp_path, caplog):
    root = str(tmp_path / "root")
    storage.write_bytes(trend_index(root), b"{not json")
    decision = promote(
        root, "n1", trained(tmp_path, "n1", 1.0), metrics_with_accuracy(0.6), rule=PromotionRule()
    )
    assert decision.promoted
    assert f"{trend_index(root)} is not a trend index" in caplog.text and "delete it" in caplog.text


def test_the_trend_folder_is_no_run_name_and_the_mirror_keeps_it():
    with pytest.raises(UsageError):
        check_run_name(TREND)
    runs = {TREND, "20260101-000000-aaaaaa", "20260102-000000-bbbbbb"}
    assert TREND in retained_runs(runs, 1, set())


def test_tensorboard_lists_the_trend_runs_with_a_point_per_night(tmp_path, tensorboard_factory):
    root = str(tmp_path / "root")
    for run, accuracy, speed in NIGHTS:
        promote(
            root, run, trained(tmp_path, run, speed), metrics_with_accuracy(accuracy), rule=PromotionRule()
        )
    board = tensorboard_factory(f"{root}/tensorboard")
    got = board.wait_for_scalars(f"{TREND}/{RUNS}", ACCURACY, 3)
    assert [(step, round(value, 4)) for _, step, value in got] == [(1, 0.6), (2, 0.5), (3, 0.8)]
    champion = board.wait_for_scalars(f"{TREND}/{CHAMPION}", ACCURACY, 3)
    assert [(step, round(value, 4)) for _, step, value in champion] == [(1, 0.6), (2, 0.6), (3, 0.8)]
    assert [step for _, step, _ in board.wait_for_scalars(f"{TREND}/{RUNS}", THROUGHPUT, 3)] == [1, 2, 3]


def test_throughput_is_of_the_steady_state_epochs():
    """The first epoch (tracing, caches) and a slow epoch after a phase change do not count."""
    assert steady_images_per_second(900, [30.0, 3.0, 3.0, 12.0, 3.0]) == 300.0
    assert steady_images_per_second(900, [4.5]) == 200.0, "one epoch: it is all there is"
    assert steady_images_per_second(900, []) == 0.0, "not measured: not plotted"


def tensorboard_points(root: str, which: str, tag: str) -> list[tuple[int, float]]:
    """(step, value) of ``tag`` in _trend/<which> as TensorBoard's Python loader shows it (the folder's
    files read in name order, a restart dropping what came before from its step on)."""
    from tensorboard.backend.event_processing import plugin_event_accumulator as loader

    accumulator = loader.EventAccumulator(trend_dir(root, which), size_guidance={loader.TENSORS: 0})
    accumulator.Reload()
    return [
        (e.step, round(float(tensor_util.make_ndarray(e.tensor_proto)), 4)) for e in accumulator.Tensors(tag)
    ]


def _nights(root: str, count: int, first: datetime) -> None:
    """``count`` points, night after night from ``first`` (each file dated as it was written)."""
    for i in range(count):
        run = f"n{i:03d}"
        metrics = {"test_accuracy": round(0.5 + i / 1000, 4), "test_loss": 1.0}
        record_trend(root, run, metrics, images_per_second=100.0, champion=metrics, about=run)
        night = (first + timedelta(days=i)).timestamp()
        for which in (RUNS, CHAMPION):
            os.utime(Path(trend_dir(root, which)) / file_name(i + 1, run), (night, night))


class Killed(Exception):
    """The process dies here."""


def test_old_points_fold_into_one_file_per_year_and_a_kill_at_any_step_shows_each_point_once(
    tmp_path, monkeypatch
):
    # Nights from 2025-12-20: 12 in 2025, the rest in 2026. Tonight, 2027-04-15: 2025 ended more than 90
    # nights ago and is folded; 2026 ended 105 nights ago too.
    tonight = datetime(2027, 4, 15, tzinfo=UTC).timestamp()
    first = datetime(2025, 12, 20, tzinfo=UTC)
    expected = [(i + 1, round(0.5 + i / 1000, 4)) for i in range(20)]
    delete, writes = storage.delete, storage.write_if_generation
    # Killed before the year's file, after it, and after each of the deletes of the first year's points.
    for kill_after in range(-1, 13):
        root = str(tmp_path / f"root-{kill_after}")
        monkeypatch.setattr(trend, "compact_trend", lambda *a, **k: 0)  # as if each night were its own
        _nights(root, 20, first)
        monkeypatch.undo()
        deleted = []

        def dying_write(uri, data, generation, kill_after=kill_after):
            if kill_after < 0:
                raise Killed
            return writes(uri, data, generation)

        def dying_delete(uri, deleted=deleted, kill_after=kill_after):
            if len(deleted) == kill_after:
                raise Killed
            deleted.append(uri)
            delete(uri)

        monkeypatch.setattr(storage, "write_if_generation", dying_write)
        monkeypatch.setattr(storage, "delete", dying_delete)
        with pytest.raises(Killed):
            trend.compact_trend(root, now=tonight)
        monkeypatch.undo()
        for which in (RUNS, CHAMPION):
            assert tensorboard_points(root, which, ACCURACY) == expected, f"killed after {kill_after}"
        # The next night's compaction finishes the fold.
        trend.compact_trend(root, now=tonight)
        for which in (RUNS, CHAMPION):
            assert tensorboard_points(root, which, ACCURACY) == expected
            assert sorted(p.name for p in Path(trend_dir(root, which)).glob("*tfevents*")) == [
                "events.out.tfevents.0000000012.~year-2025",
                "events.out.tfevents.0000000020.~year-2026",
            ]
    assert trend.compact_trend(root, now=tonight) == 0, "nothing more to fold"


def test_a_year_is_folded_only_once_it_ended_more_than_keep_nights_ago(tmp_path):
    root = str(tmp_path / "root")
    _nights(root, 3, datetime(2026, 12, 30, tzinfo=UTC))  # two nights in 2026, one in 2027
    assert trend.compact_trend(root, now=datetime(2027, 3, 1, tzinfo=UTC).timestamp()) == 0
    assert trend.compact_trend(root, now=datetime(2027, 4, 2, tzinfo=UTC).timestamp()) == 2 * 2
    names = sorted(p.name for p in Path(trend_dir(root, RUNS)).glob("*tfevents*"))
    assert names == ["events.out.tfevents.0000000002.~year-2026", file_name(3, "n002")]
    assert tensorboard_points(root, RUNS, ACCURACY) == [(1, 0.5), (2, 0.501), (3, 0.502)]

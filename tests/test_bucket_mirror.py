"""The TensorBoard pod's sidecar: a bucket prefix mirrored into a folder, fetching only what changed."""

from __future__ import annotations

import filecmp
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.gcs import BUCKET, MIRROR_PEAK_RSS, free_port, wait_for_http
from tests.support.restricted import without_read_override
from trainboard import storage
from trainboard.artifacts import lease
from trainboard.board.leases import leases_folder, live_runs
from trainboard.board.mirror import BucketMirror
from trainboard.board.volume import Volume


def training_run(tmp_path: Path) -> tuple[Path, storage.DirectoryMirror]:
    """A trainer's local run folder with one event file (its first epoch), sent up to the bucket."""
    training = tmp_path / "training"
    (training / "run" / "train").mkdir(parents=True)
    event_file = training / "run" / "train" / "events.out.tfevents.1"
    event_file.write_bytes(b"epoch-0;")
    uploader = storage.DirectoryMirror(training, f"gs://{BUCKET}/root/tensorboard")
    uploader.sync()
    return event_file, uploader


def test_mirror_fetches_new_files_then_only_new_tails_then_drops_deleted(gcs, tmp_path):
    event_file, uploader = training_run(tmp_path)
    mirror = BucketMirror(f"gs://{BUCKET}/root/tensorboard", tmp_path / "logs")
    copy = tmp_path / "logs" / "run" / "train" / "events.out.tfevents.1"

    assert mirror.sync() == len(b"epoch-0;")
    assert copy.read_bytes() == b"epoch-0;"
    assert mirror.sync() == 0, "nothing changed, nothing fetched"

    with event_file.open(
        "ab"
    ) as f:  # the next epoch: training appends, the uploader composes onto the object
        f.write(b"epoch-1;")
    uploader.sync()
    assert mirror.sync() == len(b"epoch-1;"), "only the new tail"
    assert copy.read_bytes() == b"epoch-0;epoch-1;"
    assert [p.name for p in copy.parent.iterdir()] == [copy.name], "no partial file left behind"

    storage.gcs.client().bucket(BUCKET).blob("root/tensorboard/run/train/events.out.tfevents.1").delete()
    assert mirror.sync() == 0
    assert not copy.exists()


def _upload(name: str, data: bytes) -> None:
    storage.gcs.client().bucket(BUCKET).blob(f"root/tensorboard/{name}").upload_from_string(data)


def _mirror_once(gcs, dest, *extra: str) -> tuple[int, int]:
    """``python -m trainboard.board.bucket_mirror --once`` in its own process: (exit status, peak RSS in
    bytes).

    The peak is the process's own VmHWM: ru_maxrss of a child also counts the parent it was forked from."""
    proc = subprocess.run(
        [sys.executable, "-c", MIRROR_PEAK_RSS, f"--source=gs://{BUCKET}/root/tensorboard", f"--dest={dest}",
         "--once", *extra],
        env=gcs.env(), stderr=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    sys.stderr.write(proc.stderr)
    peak_kb = re.search(r"VmHWM (\d+)", proc.stderr)
    return proc.returncode, int(peak_kb.group(1)) * 1024 if peak_kb else 0


def test_mirror_streams_a_large_object_to_disk_in_bounded_memory(gcs, tmp_path):
    size = 256 * 1024 * 1024
    big = tmp_path / "events.out.tfevents.big"
    with big.open("wb") as f:  # 256 MiB, not all the same byte
        for i in range(size // (1024 * 1024)):
            f.write(bytes([i % 251]) * (1024 * 1024))
    storage.gcs.client().bucket(BUCKET).blob(
        "root/tensorboard/run/train/events.out.tfevents.big"
    ).upload_from_filename(str(big))
    rc, peak_rss = _mirror_once(gcs, tmp_path / "logs")
    assert rc == 0
    copy = tmp_path / "logs" / "run" / "train" / "events.out.tfevents.big"
    assert copy.stat().st_size == size
    assert filecmp.cmp(copy, big, shallow=False)
    # The interpreter and the Google client take about 60-70 MB; the object must not be held in memory.
    assert peak_rss < 150 * 1024 * 1024, f"peak RSS {peak_rss / 2**20:.0f} MiB mirroring a 256 MiB object"


def test_a_restarted_mirror_fetches_only_the_bytes_its_volume_lacks(gcs, tmp_path):
    _upload("run/train/events.out.tfevents.1", b"epoch-0;" * 1000)
    _upload("run/validation/events.out.tfevents.1", b"val-0;")
    dest = tmp_path / "logs"
    assert BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest).sync() == 8000 + 6

    # The pod's mirror restarts (same emptyDir): a new process knows nothing but what is on the volume.
    # Meanwhile training appended an epoch, and the old mirror left a half-written download behind.
    _upload("run/train/events.out.tfevents.1", b"epoch-0;" * 1000 + b"epoch-1;")
    (dest / "run" / "train" / ".mirror-partial-12345").write_bytes(b"half")
    restarted = BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest)
    assert restarted.sync() == len(b"epoch-1;"), "only the new tail, nothing already on the volume"
    assert (dest / "run" / "train" / "events.out.tfevents.1").read_bytes() == b"epoch-0;" * 1000 + b"epoch-1;"
    assert sorted(p.name for p in (dest / "run" / "train").iterdir()) == ["events.out.tfevents.1"]
    assert restarted.sync() == 0

    # A restart killed in the middle of a tail: the copy holds part of the tail; the rest is fetched.
    _upload("run/train/events.out.tfevents.1", b"epoch-0;" * 1000 + b"epoch-1;epoch-2;")
    with (dest / "run" / "train" / "events.out.tfevents.1").open("ab") as f:
        f.write(b"epo")
    assert BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest).sync() == len(b"ch-2;")
    assert (dest / "run" / "train" / "events.out.tfevents.1").read_bytes().endswith(b"epoch-1;epoch-2;")

    # The command, as the pod runs it, restarted: nothing new, nothing fetched (the files keep their inodes).
    inode = (dest / "run" / "validation" / "events.out.tfevents.1").stat().st_ino
    assert _mirror_once(gcs, dest)[0] == 0
    assert (dest / "run" / "validation" / "events.out.tfevents.1").stat().st_ino == inode


def test_mirror_refuses_names_that_resolve_outside_its_folder_and_goes_on(gcs, tmp_path, caplog):
    bad = ["../../escaped.tfevents", "run//empty-segment", "run/./dot", "run/../../../up", "/absolute"]
    for name in bad:
        _upload(name, b"evil")
    _upload("run/train/events.out.tfevents.1", b"good")
    dest = tmp_path / "box" / "logs"
    mirror = BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest)
    listed = set(storage.gcs.list_versions(f"gs://{BUCKET}/root/tensorboard"))
    assert set(bad) <= listed, "the emulator kept the names as given"

    with caplog.at_level(logging.ERROR, logger="trainboard.board"):
        assert mirror.sync() == len(b"good")
    assert (dest / "run" / "train" / "events.out.tfevents.1").read_bytes() == b"good"
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["box/logs/run/train/events.out.tfevents.1"]
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == len(bad) and all(any(repr(n) in m for m in refused) for n in bad)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="trainboard.board"):
        assert mirror.sync() == 0
    assert not caplog.records, "each refused name is logged once, not at every interval"


def _health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_health_reports_the_last_sync_and_turns_stale_when_storage_fails(gcs, tmp_path):
    _upload("run/train/events.out.tfevents.1", b"epoch-0;")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainboard.board.bucket_mirror", f"--source=gs://{BUCKET}/root/tensorboard",
         f"--dest={tmp_path / 'logs'}", "--interval=0.5", f"--health-port={port}", "--health-host=127.0.0.1",
         "--stale-after=3"],
        env=gcs.env(),
    )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        deadline = time.monotonic() + 30
        while (answer := _health(port))[1]["last_success"] is None and time.monotonic() < deadline:
            time.sleep(0.2)
        status, body = answer
        assert status == 200 and body["last_success"] is not None and body["last_error"] is None
        assert body["bytes_received"] == len(b"epoch-0;")

        gcs.process.terminate()  # storage gone: every sync hangs or fails from now on
        gcs.process.wait(10)
        deadline = time.monotonic() + 30
        while (answer := _health(port))[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        status, body = answer
        assert status == 503, body
        # The listing hangs in the client's own retries (a hung mirror): stale all the same.
        assert body["age_seconds"] >= 3
        assert body["last_success"] is not None
    finally:
        proc.terminate()
        proc.wait(10)


def test_retention_mirrors_the_latest_runs_and_every_promoted_one_and_frees_the_rest(gcs, tmp_path):
    runs = [f"2026010{d}-030000-{d:06x}" for d in range(1, 6)]  # five nightly runs, oldest first
    for run in runs:
        _upload(f"{run}/train/events.out.tfevents.1", run.encode())
    _upload("_trend/run/events.out.tfevents.1", b"trend")  # not a run name: always mirrored
    # runs[0] was champion once: its model is kept under <root>/models/ for rollbacks.
    storage.gcs.client().bucket(BUCKET).blob(f"root/models/{runs[0]}/model.keras").upload_from_string(b"m")
    dest = tmp_path / "logs"
    mirror = BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest, keep_runs=2)
    mirror.sync()
    mirrored = {p.name for p in dest.iterdir()}
    assert mirrored == {runs[0], runs[3], runs[4], "_trend"}

    # A new night: runs[3] falls out of the latest two and is deleted from the volume, folder and all.
    new = "20260106-030000-000006"
    _upload(f"{new}/train/events.out.tfevents.1", b"new")
    mirror.sync()
    assert {p.name for p in dest.iterdir()} == {runs[0], runs[4], new, "_trend"}

    # A restarted mirror with the same retention fetches nothing and deletes nothing it keeps.
    assert BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest, keep_runs=2).sync() == 0
    assert {p.name for p in dest.iterdir()} == {runs[0], runs[4], new, "_trend"}


def test_a_byte_budget_bounds_the_volume_champion_and_newest_runs_first(gcs, tmp_path, caplog):
    """Whatever the bucket holds (a run of profiles, years of champions), the volume holds at most the
    budget: the latest promoted run, then the newest runs that fit; a run left out is logged once."""
    runs = [f"2026010{d}-030000-{d:06x}" for d in range(1, 7)]  # six nightly runs, oldest first
    sizes = {runs[0]: 300, runs[1]: 400, runs[2]: 300, runs[3]: 5000, runs[4]: 300, runs[5]: 300}
    for run, size in sizes.items():
        _upload(f"{run}/train/events.out.tfevents.1", b"e" * size)
    _upload("_trend/run/events.out.tfevents.1", b"t" * 100)  # not a run: always, counted first
    for run in runs[:2]:  # runs[1] is the latest promoted: the champion
        storage.gcs.client().bucket(BUCKET).blob(f"root/models/{run}/model.keras").upload_from_string(b"m")
    dest = tmp_path / "logs"
    mirror = BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest, keep_runs=5, max_bytes=1500)
    caplog.set_level(logging.WARNING, logger="trainboard.board")
    mirror.sync()

    def on_volume() -> tuple[set[str], int]:
        return {p.name for p in dest.iterdir()}, sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())

    # 100 (trend) + 400 (the champion) + 300 + 300 (the two newest); runs[3] (5000) does not fit, runs[2]
    # still does (1400), then runs[0] (promoted too, but older) does not.
    assert on_volume() == ({"_trend", runs[1], runs[2], runs[4], runs[5]}, 1400)
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(left_out) == 2 and f"run {runs[3]} (0.0 MiB) left out" in left_out[1]
    caplog.clear()
    mirror.sync()
    assert not [r for r in caplog.records if "left out" in r.getMessage()], "logged once"

    # Tonight's run grows past what fits beside the others: the oldest kept run goes (deleted before the
    # new bytes are fetched: the volume never holds more than the budget).
    _upload(f"{runs[5]}/train/events.out.tfevents.1", b"e" * 600)
    mirror.sync()
    assert on_volume() == ({"_trend", runs[1], runs[4], runs[5]}, 1400)


def test_an_object_replaced_during_the_sync_is_fetched_at_the_next_one_and_the_others_go_on(
    gcs, tmp_path, monkeypatch
):
    _upload("a/train/events.out.tfevents.1", b"a-first")
    _upload("b/train/events.out.tfevents.1", b"b")
    listed = storage.gcs.list_checksums

    def list_then_replace(uri: str) -> dict:
        listing = listed(uri)
        _upload("a/train/events.out.tfevents.1", b"a-second")  # rewritten after the listing
        return listing

    monkeypatch.setattr(storage.gcs, "list_checksums", list_then_replace)
    dest = tmp_path / "logs"
    mirror = BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest)
    assert mirror.sync() == len(b"b"), "the listed generation of a is gone: a skipped, b fetched"
    assert not (dest / "a" / "train" / "events.out.tfevents.1").exists()
    assert [p.name for p in (dest / "a" / "train").iterdir()] == [], "no partial file left behind"
    monkeypatch.setattr(storage.gcs, "list_checksums", listed)
    assert mirror.sync() == len(b"a-second")
    assert (dest / "a" / "train" / "events.out.tfevents.1").read_bytes() == b"a-second"


def test_a_mirror_killed_in_the_middle_of_a_download_resumes_it_after_the_restart(gcs, tmp_path):
    size = 128 * 1024 * 1024
    big = tmp_path / "events.out.tfevents.big"
    with big.open("wb") as f:
        for i in range(size // (1024 * 1024)):
            f.write(bytes([i % 251]) * (1024 * 1024))
    storage.gcs.client().bucket(BUCKET).blob(
        "root/tensorboard/run/train/events.out.tfevents.big"
    ).upload_from_filename(str(big))
    dest = tmp_path / "logs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainboard.board.bucket_mirror", f"--source=gs://{BUCKET}/root/tensorboard",
         f"--dest={dest}", "--once"],
        env=gcs.env(),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    partial_size = 0
    while time.monotonic() < deadline and proc.poll() is None:
        partials = list((dest / "run" / "train").glob(".mirror-partial-*")) if dest.exists() else []
        if partials and (partial_size := partials[0].stat().st_size) >= 16 * 1024 * 1024:
            break
        time.sleep(0.005)
    proc.kill()  # SIGKILL, as the kubelet does after a failed liveness probe's grace period
    proc.wait(10)
    partials = list((dest / "run" / "train").glob(".mirror-partial-*"))
    assert len(partials) == 1 and 0 < partials[0].stat().st_size < size, "killed in the middle"
    partial_size = partials[0].stat().st_size

    restarted = BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest)
    assert restarted.sync() == size - partial_size, "only the bytes the volume lacks"
    copy = dest / "run" / "train" / "events.out.tfevents.big"
    assert filecmp.cmp(copy, big, shallow=False)
    assert [p.name for p in copy.parent.iterdir()] == [copy.name]


def test_an_object_the_file_system_cannot_hold_is_skipped_logged_once_and_the_rest_goes_on(
    gcs, tmp_path, caplog
):
    too_long = "r" * 300 + "/train/events.out.tfevents.1"  # a segment over 255 bytes: "File name too long"
    _upload(too_long, b"long")
    _upload("run/train", b"a file where a folder must be")
    _upload("run/train/events.out.tfevents.1", b"under the file")  # sorted after it: its folder is a file
    _upload("zz/train/events.out.tfevents.1", b"good")  # sorted after both
    dest = tmp_path / "logs"
    mirror = BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest)
    with caplog.at_level(logging.ERROR, logger="trainboard.board"):
        assert mirror.sync() == len(b"a file where a folder must be") + len(b"good")
    assert (dest / "zz" / "train" / "events.out.tfevents.1").read_bytes() == b"good"
    refused = [r.getMessage() for r in caplog.records]
    assert len(refused) == 2 and "File name too long" in refused[0] and repr(too_long) in refused[0]
    assert repr("run/train/events.out.tfevents.1") in refused[1]
    caplog.clear()
    _upload("zz/train/events.out.tfevents.1", b"good, and more")
    with caplog.at_level(logging.ERROR, logger="trainboard.board"):
        assert mirror.sync() == len(b", and more")
    assert not caplog.records, "each is logged once, not at every interval"
    # The command as the pod runs it: the sync succeeds (health stays OK), nothing left half-written.
    assert _mirror_once(gcs, dest)[0] == 0
    assert not list(dest.rglob(".mirror-partial-*"))


def test_an_object_named_as_a_folder_on_the_volume_is_refused_without_leftovers(gcs, tmp_path):
    _upload("run/x/events.out.tfevents.1", b"below x")
    dest = tmp_path / "logs"
    mirror = BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest)
    mirror.sync()
    _upload("run/x", b"x itself")  # a file named as the folder run/x/ on the volume
    assert mirror.sync() == 0
    assert mirror.refused == {"run/x"}
    assert sorted(p.name for p in (dest / "run").iterdir()) == ["x"], "no partial file left behind"


def test_the_byte_budget_holds_for_runs_of_any_name_and_newest_is_by_start_time(gcs, tmp_path):
    # Named by hand, not by time: by name exp-lr-002 would be the newest; by start, baseline is.
    started = {"exp-lr-001": 1_700_000_100, "exp-lr-002": 1_700_000_200, "baseline": 1_700_000_300}
    for run, start in started.items():
        _upload(f"{run}/train/events.out.tfevents.{start}.host.1.v2", b"e" * 400)
    # exp-lr-001 resumed last: a newer event file, yet the run started first.
    _upload("exp-lr-001/train/events.out.tfevents.1700000400.host.2.v2", b"r")
    _upload("_trend/run/events.out.tfevents.1700000500.host.1.v2", b"t" * 50)  # not a run: counted first
    dest = tmp_path / "logs"

    def on_volume() -> tuple[set[str], int]:
        return {p.name for p in dest.iterdir()}, sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())

    BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest, max_bytes=900).sync()
    assert on_volume() == ({"_trend", "baseline", "exp-lr-002"}, 850)
    BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest, keep_runs=1).sync()
    assert on_volume() == ({"_trend", "baseline"}, 450)


def test_an_object_rewritten_larger_is_fetched_whole_and_an_appended_one_only_its_tail(gcs, tmp_path):
    event_file, uploader = training_run(tmp_path)
    dest = tmp_path / "logs"
    copy = dest / "run" / "train" / "events.out.tfevents.1"
    mirror = BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest)
    mirror.sync()

    def append(data: bytes) -> None:  # training appends; the uploader composes: a new generation each time
        with event_file.open("ab") as f:
            f.write(data)
        uploader.sync()

    append(b"epoch-1;")
    assert mirror.sync() == len(b"epoch-1;"), "an append costs its tail only"
    _upload("run/train/events.out.tfevents.1", b"EPOCH-0;epoch-1;epoch-2;")  # rewritten, longer
    assert mirror.sync() == len(b"EPOCH-0;epoch-1;epoch-2;"), "fetched whole, not spliced"
    assert copy.read_bytes() == b"EPOCH-0;epoch-1;epoch-2;"

    # After a restart the copy's checksum is read from the volume once: an append is still a tail...
    event_file.write_bytes(b"EPOCH-0;epoch-1;epoch-2;")
    uploader = storage.DirectoryMirror(event_file.parents[2], f"gs://{BUCKET}/root/tensorboard")
    uploader.sync()
    append(b"epoch-3;")
    assert BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest).sync() == len(b"epoch-3;")
    # ...and a rewrite is fetched whole.
    _upload("run/train/events.out.tfevents.1", b"other-0;other-1;other-2;other-3;other-4;")
    assert BucketMirror(f"gs://{BUCKET}/root/tensorboard", dest).sync() == 40
    assert copy.read_bytes() == b"other-0;other-1;other-2;other-3;other-4;"
    assert [p.name for p in copy.parent.iterdir()] == [copy.name]


def test_a_source_the_mirror_cannot_read_fails_the_sync_naming_it_and_the_volume_is_kept(tmp_path):
    source, dest = tmp_path / "source", tmp_path / "logs"
    (source / "run" / "train").mkdir(parents=True)
    (source / "run" / "train" / "events.out.tfevents.1").write_bytes(b"epoch-0;")
    BucketMirror(str(source), dest).sync()
    source.chmod(0)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "trainboard.board.bucket_mirror", f"--source={source}", f"--dest={dest}",
             "--once"],
            capture_output=True, text=True, preexec_fn=without_read_override, check=False,
        )  # fmt: skip
    finally:
        source.chmod(0o755)
    assert proc.returncode == 1, proc.stderr
    assert f"sync failed: PermissionError: [Errno 13] Permission denied: '{source}'" in proc.stderr
    assert (dest / "run" / "train" / "events.out.tfevents.1").read_bytes() == b"epoch-0;", "not emptied"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source=ftp://x/y"], "--source: scheme ftp:// is not supported in 'ftp://x/y'; expected a local"),
        (["--dest={file}"], "--dest: {file} is a file; expected a folder"),
        (["--interval=0"], "--interval: must be a number of seconds greater than 0, got 0.0"),
        (["--interval=soon"], "--interval: 'soon' is not a number"),
        (["--keep-runs=-1"], "--keep-runs: must be 0 (every run) or more, got -1"),
        (["--max-mib=nan"], "--max-mib: must be 0 (no bound) or a number of MiB, got nan"),
        (["--health-port=70000"], "--health-port: must be 0 (none) or 1-65535, got 70000"),
        (
            ["--health-port=8081", "--health-host=no such host"],
            "--health-host: cannot listen on no such host",
        ),
        (["--stale-after=inf"], "--stale-after: must be a number of seconds greater than 0, got inf"),
        (["--live-interval=0"], "--live-interval: must be a number of seconds greater than 0, got 0.0"),
        (["--lease-interval=-1"], "--lease-interval: must be a number of seconds greater than 0, got -1.0"),
        (["--workers=0"], "--workers: must be 1 or more, got 0"),
    ],
)
def test_bad_arguments_are_one_line_naming_the_argument_and_exit_2(tmp_path, args, message):
    file = tmp_path / "a-file"
    file.write_bytes(b"")
    defaults = {"--source": f"--source={tmp_path}", "--dest": f"--dest={tmp_path / 'logs'}"}
    given = [a.format(file=file) for a in args]
    argv = [*given, *(v for k, v in defaults.items() if not any(a.startswith(k + "=") for a in given))]
    proc = subprocess.run(
        [sys.executable, "-m", "trainboard.board.bucket_mirror", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(
        f"python -m trainboard.board.bucket_mirror: error: {message.format(file=file)}"
    )


def _appears(path, within: float) -> float | None:
    """Seconds until ``path`` exists, or None if it does not within ``within`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if path.exists():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def test_a_live_runs_new_epoch_is_on_the_volume_in_2_s_while_the_full_listing_waits_a_minute(gcs, tmp_path):
    root = f"gs://{BUCKET}/root"
    for run in ("live", "old-writer"):
        _upload(f"{run}/train/events.out.tfevents.1", b"epoch-0;")
    dest = tmp_path / "logs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainboard.board.bucket_mirror", f"--source={root}/tensorboard",
         f"--dest={dest}",
         "--interval=60", "--live-interval=1", "--lease-interval=1"],
        env=gcs.env(),
    )  # fmt: skip
    try:
        assert _appears(dest / "old-writer" / "train" / "events.out.tfevents.1", 30) is not None, "first sync"
        lease.take(root, "live", "test")
        time.sleep(1.5)  # the mirror's next look at the leases
        _upload("live/train/events.out.tfevents.2", b"epoch-1;")
        _upload("old-writer/train/events.out.tfevents.2", b"epoch-1;")
        took = _appears(dest / "live" / "train" / "events.out.tfevents.2", 5)
        assert took is not None and took <= 2.0, f"the live run's epoch took {took} s"
        # A run without a lease waits for the full listing (60 s): only the leased run is watched closely.
        assert not (dest / "old-writer" / "train" / "events.out.tfevents.2").exists()
        # The run's last write, then its lease ends: the mirror takes one more look at its folder.
        _upload("live/evaluation/events.out.tfevents.3", b"final;")
        lease.release(root, "live", "test")
        assert _appears(dest / "live" / "evaluation" / "events.out.tfevents.3", 5) is not None
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_leases_are_beside_a_roots_tensorboard_folder_only_and_expire_by_their_renewal(tmp_path):
    assert leases_folder(f"gs://{BUCKET}/root/tensorboard/") == f"gs://{BUCKET}/root/leases"
    assert leases_folder(f"gs://{BUCKET}/tensorboard") == f"gs://{BUCKET}/leases"
    assert leases_folder(str(tmp_path / "root" / "tensorboard")) == str(tmp_path / "root" / "leases")
    for other in (f"gs://{BUCKET}/root/logs", "gs://tensorboard", "tensorboard", str(tmp_path)):
        assert leases_folder(other) is None, other
    root = str(tmp_path / "root")
    lease.take(root, "n1", "test")
    lease.take(root, "n2", "test")
    (tmp_path / "root" / "leases" / "notes.txt").write_text("not a lease")
    source = f"{root}/tensorboard"
    assert live_runs(source, lease.LEASE_SECONDS) == {"n1", "n2"}
    # A killed run's lease is never deleted: it stops counting when it would have expired.
    assert live_runs(source, lease.LEASE_SECONDS, now=time.time() + lease.LEASE_SECONDS + 1) == set()
    assert live_runs(str(tmp_path / "logs"), lease.LEASE_SECONDS) == set(), "no leases beside it"


def test_objects_are_fetched_several_at_a_time_and_shown_in_name_order(tmp_path, monkeypatch):
    source = tmp_path / "tensorboard"
    names = [f"run/train/events.out.tfevents.{i}" for i in range(6)] + ["_trend/run/events.out.tfevents.1"]
    for name in names:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(name.encode())
    download, running, most = storage.local.download_range, [], []

    def slow_first(uri: str, *args, **kwargs) -> None:
        running.append(uri)
        most.append(len(running))
        time.sleep(0.5 if uri.endswith(".0") else 0.05)  # the first file of the folder arrives last
        download(uri, *args, **kwargs)
        running.remove(uri)

    shown = []
    publish = Volume._publish

    def noted(volume, rel, staged):
        shown.append(rel)
        return publish(volume, rel, staged)

    monkeypatch.setattr(storage.local, "download_range", slow_first)
    monkeypatch.setattr(Volume, "_publish", noted)
    assert BucketMirror(str(source), tmp_path / "logs", workers=4).sync() == sum(len(n) for n in names)
    assert max(most) > 1, "downloads overlap"
    # TensorBoard's Rust loader drops later steps when an earlier file shows after them: never out of order.
    assert shown == sorted(names)


@pytest.mark.parametrize("where", ["gcs", "local"])
def test_a_restarted_mirror_never_keeps_a_copy_of_an_object_rewritten_at_its_size(request, tmp_path, where):
    """The mirror down, objects rewritten at the same size: the restarted one fetches those whole (GCS:
    the listing's CRC32C against the copy's; a local root: its files' modification time, set on each copy)
    and nothing else: not an object rewritten with the same bytes on GCS, not one left alone."""
    if where == "gcs":
        request.getfixturevalue("gcs")
        source = f"gs://{BUCKET}/root/tensorboard"

        def write(name: str, data: bytes) -> None:
            _upload(name, data)

    else:
        source = str(tmp_path / "root" / "tensorboard")

        def write(name: str, data: bytes) -> None:
            path = Path(source, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            before = path.stat().st_mtime_ns if path.exists() else 0
            path.write_bytes(data)
            os.utime(path, ns=(before + 10**9, before + 10**9))  # a second later, whatever the clock's grain

    names = {f"run-{i}/train/events.out.tfevents.{i}": f"epoch-{i};".encode() * 100 for i in range(4)}
    for name, data in names.items():
        write(name, data)
    dest = tmp_path / "logs"
    assert BucketMirror(source, dest).sync() == sum(map(len, names.values()))

    rewritten = {  # the same sizes, other bytes: a champion's copy replaced, an event file written again
        "run-0/train/events.out.tfevents.0": b"EPOCH-0;" * 100,
        "run-1/train/events.out.tfevents.1": b"epoch-1;" * 99 + b"epoch-X;",  # only the last bytes differ
    }
    for name, data in rewritten.items():
        write(name, data)
    if where == "gcs":  # written again with its very bytes: a new generation, the same content
        write("run-2/train/events.out.tfevents.2", names["run-2/train/events.out.tfevents.2"])
    restarted = BucketMirror(source, dest)
    assert restarted.sync() == sum(map(len, rewritten.values())), "the rewritten ones, whole; nothing else"
    for name, data in {**names, **rewritten}.items():
        assert (dest / name).read_bytes() == data, name
    assert restarted.sync() == 0
    assert BucketMirror(source, dest).sync() == 0, "restarted again with nothing changed: nothing fetched"

"""`trainboard gc`: old runs' checkpoints go (dry run first), the champion's lineage, the newest N and the
runs still training stay, and nothing outside checkpoints/ is touched; on a local and a gs:// root."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from trainboard import layout, storage
from trainboard.admin import gc
from trainboard.app.cli import main
from trainboard.artifacts.champion import ChampionRecord, record_history, write_champion

RUNS = [f"20261101-0{i}0000-aaaa0{i}" for i in range(1, 9)]


def checkpoint(root: str, run: str, done: int, epochs: int, size: int) -> None:
    folder = layout.checkpoint_dir(root, run)
    storage.write_bytes(storage.join(folder, "epoch-0001.keras"), b"w" * size)
    state = {"epoch": done, "checkpoint": "epoch-0001.keras", "started_with": {"epochs": epochs}}
    storage.write_bytes(storage.join(folder, "state.json"), json.dumps(state).encode())
    time.sleep(0.05)  # each run's last change after the one before


def checkpoint_bytes(root: str, run: str) -> int:
    return sum(size for size, _ in storage.list_versions(layout.checkpoint_dir(root, run)).values())


def champion(root: str, run: str, previous: str, at: str, generation: int) -> None:
    record = ChampionRecord(
        run, layout.model_dir(root, run), {"test_accuracy": 0.9}, at, "test", previous=previous
    )
    write_champion(root, record, generation)
    record_history(root, record)


def make_root(root: str) -> None:
    """Eight runs, oldest first: RUNS[1] champion once (history only), RUNS[3] the champion now, RUNS[2]
    has a models/ folder, RUNS[4] stopped short of its epochs, not evaluated; RUNS[0] and RUNS[5] (stopped
    early, evaluated) are neither."""
    for i, run in enumerate(RUNS):
        checkpoint(root, run, 1 if i in (4, 5) else 2, 2, 1000 + i)
    for run in RUNS[1:4]:
        storage.write_bytes(storage.join(layout.model_dir(root, run), "model.keras"), run.encode())
    champion(root, RUNS[1], "", "2026-11-01T02:00:00+00:00", 0)
    _, generation = storage.read_versioned(layout.champion_record(root))
    champion(root, RUNS[3], RUNS[1], "2026-11-01T04:00:00+00:00", generation)
    storage.write_bytes(storage.join(layout.tensorboard_dir(root, RUNS[0]), "train", "events"), b"e")
    evaluation = storage.join(layout.tensorboard_dir(root, RUNS[5]), "evaluation", "events.out.tfevents.1")
    storage.write_bytes(evaluation, b"e")  # RUNS[5] stopped early (1 of 2 epochs) and was evaluated: done


def test_plan_keeps_lineage_newest_and_unfinished_runs(root):
    make_root(root)
    result = gc.plan(root, keep=2, now=time.time() + 7200)
    assert [r.run for r in result.runs] == RUNS
    reasons = {r.run: r.kept_because for r in result.runs}
    assert reasons == {
        RUNS[0]: "",
        RUNS[1]: "champion lineage",
        RUNS[2]: "champion lineage",
        RUNS[3]: "champion lineage",
        RUNS[4]: "still training (1 of 2 epochs done, not evaluated)",
        RUNS[5]: "",
        RUNS[6]: "one of the newest 2",
        RUNS[7]: "one of the newest 2",
    }
    assert result.delete_bytes == sum(checkpoint_bytes(root, RUNS[i]) for i in (0, 5))


def test_gc_dry_run_then_delete(root, capsys, monkeypatch):
    make_root(root)
    monkeypatch.setattr(gc, "ACTIVE_SECONDS", 0)  # every run's files are seconds old
    before = {uri: storage.read_bytes(uri) for uri in storage.list_files(root)}

    assert main(["gc", "--root", root, "--keep", "2"]) == 0
    out, err = capsys.readouterr()
    assert {uri: storage.read_bytes(uri) for uri in storage.list_files(root)} == before, (
        "a dry run deletes nothing"
    )
    would = [line for line in out.splitlines() if line.startswith("would delete")]
    assert [line.split()[2] for line in would] == [RUNS[0], RUNS[5]]
    assert "champion lineage" in out and "still training (1 of 2 epochs done, not evaluated)" in out
    total = sum(checkpoint_bytes(root, RUNS[i]) for i in (0, 5))
    assert f"would delete 2 of 8 runs' checkpoints, {total} bytes; run again with --delete" in err

    assert main(["gc", "--root", root, "--keep", "2", "--delete"]) == 0
    out, err = capsys.readouterr()
    assert f"deleted 2 of 8 runs' checkpoints, {total} bytes" in err
    after = {uri: storage.read_bytes(uri) for uri in storage.list_files(root)}
    gone = {uri for uri in before if any(f"checkpoints/{RUNS[i]}/" in uri for i in (0, 5))}
    assert len(gone) == 4
    assert after == {uri: data for uri, data in before.items() if uri not in gone}, "only those checkpoints"
    for i in (0, 5):  # on a local root too, no empty checkpoints/<run>/ is left behind
        assert not storage.folder_exists(layout.checkpoint_dir(root, RUNS[i]))
    assert storage.folder_exists(layout.checkpoint_dir(root, RUNS[1]))

    assert main(["gc", "--root", root, "--keep", "2"]) == 0
    assert "would delete 0 of 6 runs' checkpoints, 0 bytes" in capsys.readouterr().err


def test_gc_keeps_runs_changed_in_the_last_hour(root, capsys):
    make_root(root)
    before = storage.list_files(root)
    assert main(["gc", "--root", root, "--keep", "1", "--delete"]) == 0
    out, err = capsys.readouterr()
    assert storage.list_files(root) == before
    assert "deleted 0 of 8 runs' checkpoints, 0 bytes" in err
    assert out.count("may still be training") == 4  # RUNS[0], RUNS[4], RUNS[5], RUNS[6]


@pytest.mark.parametrize("keep", ["0", "-3"])
def test_gc_refuses_keep_below_one(tmp_path, capsys, keep):
    with pytest.raises(SystemExit) as exit_:
        main(["gc", "--root", str(tmp_path), "--keep", keep])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("trainboard gc: error: --keep: must be 1 or more")


def test_gc_json_is_a_line_of_json_a_run_saying_whether_it_goes(root, capsys, monkeypatch):
    """--json: one object a run, the same runs and decisions as the readable lines; the summary stays
    on stderr, and a dry run still deletes nothing."""
    make_root(root)
    monkeypatch.setattr(gc, "ACTIVE_SECONDS", 0)
    before = storage.list_files(root)
    assert main(["gc", "--root", root, "--keep", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    runs = [json.loads(line) for line in out.splitlines()]
    assert [r["run"] for r in runs if r["delete"]] == [RUNS[0], RUNS[5]]
    assert {r["run"]: r["kept_because"] for r in runs}[RUNS[1]] == "champion lineage"
    assert all(r["kept_because"] is None for r in runs if r["delete"])
    assert runs[0]["checkpoints"] == layout.checkpoint_dir(root, runs[0]["run"])
    assert runs[0]["bytes"] == checkpoint_bytes(root, runs[0]["run"]) and runs[0]["files"] > 0
    assert "would delete 2 of 8 runs' checkpoints" in err and storage.list_files(root) == before


def test_gc_counts_a_link_as_a_link_and_reports_what_it_really_removed(tmp_path, capsys, monkeypatch):
    """Symbolic links under checkpoints/ (to a model folder, to a folder outside the root): each is one
    link, not its target's files, in the plan and in what --delete reports; the targets stay."""
    root = str(tmp_path / "root")
    monkeypatch.setattr(gc, "ACTIVE_SECONDS", 0)
    checkpoint(root, RUNS[0], 2, 2, 100)
    checkpoint(root, RUNS[7], 2, 2, 100)  # the newest: kept
    outside = tmp_path / "elsewhere"
    for name in ("a", "b", "c"):
        storage.write_bytes(str(outside / name), b"x" * 1000)
    storage.write_bytes(storage.join(layout.model_dir(root, "k1"), "model.keras"), b"m" * 5000)
    checkpoints = tmp_path / "root" / "checkpoints"
    (checkpoints / "to-a-model").symlink_to(layout.model_dir(root, "k1"))
    (checkpoints / "to-elsewhere").symlink_to(outside)
    old = time.time() - 86400
    for path in [*outside.iterdir(), *Path(layout.model_dir(root, "k1")).iterdir()]:
        os.utime(path, (old, old))  # a link is as old as what it points at
    own = checkpoint_bytes(root, RUNS[0])

    assert main(["gc", "--root", root, "--keep", "1"]) == 0
    out, err = capsys.readouterr()
    assert (
        f"to-elsewhere  {checkpoints / 'to-elsewhere'}  a symbolic link to {outside} (only the link)" in out
    )
    assert f"would delete 3 of 4 runs' checkpoints, {own} bytes and 2 symbolic link(s)" in err

    assert main(["gc", "--root", root, "--keep", "1", "--delete"]) == 0
    _, err = capsys.readouterr()
    assert f"deleted 3 of 4 runs' checkpoints, {own} bytes in 2 files and 2 symbolic link(s)" in err
    assert sorted(p.name for p in checkpoints.iterdir()) == [RUNS[7]]
    assert len(storage.list_files(str(outside))) == 3 and storage.list_files(layout.model_dir(root, "k1"))

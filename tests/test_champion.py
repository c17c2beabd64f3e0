"""The champion's history and rollback, and its serving copy under faults: every promotion and rollback is
one created-never-rewritten entry of <root>/champion-history/; `trainboard champion show|history|rollback`;
a promote process SIGKILLed at each point of its copies leaves a reader (serving) one model, whole, and the
next promotion repairs models/champion/. TensorFlow-free in this process; one slow test runs
`trainboard local` twice, the second forced and with the paired test in its report, then rolls back."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import PROMOTABLE_EPOCHS, in_process, last_json_line, trainboard
from tests.support.gcs import BUCKET
from tests.support.kill import kill_at_pause
from tests.support.promotion import champion_folder_run, metrics_with_accuracy, model_folder, promote_command
from trainboard import faults, layout, storage
from trainboard.admin.rollback import rollback
from trainboard.artifacts.champion import (
    ChampionRecord,
    IncompleteModel,
    download_champion,
    read_champion,
    read_history,
    read_model_copy,
    record_history,
)
from trainboard.components.promote.core import promote
from trainboard.components.promote.trend import TREND
from trainboard.config import PromotionRule
from trainboard.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def promote_at(root: str, tmp_path: Path, run: str, accuracy: float):
    return promote(
        root, run, model_folder(tmp_path, run), metrics_with_accuracy(accuracy), rule=PromotionRule()
    )


def history_files(root: str) -> dict[str, bytes]:
    return {uri: storage.read_bytes(uri) for uri in storage.list_files(layout.champion_history_dir(root))}


def test_every_promotion_and_rollback_is_appended_to_the_history(root, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINBOARD_USER", "night-shift")
    promote_at(root, tmp_path, "r1", 0.8)
    assert not promote_at(root, tmp_path, "r2", 0.7).promoted
    promote_at(root, tmp_path, "r3", 0.9)
    history = read_history(root)
    assert [(e.run, e.action, e.previous) for e in history] == [
        ("r1", "promote", ""),
        ("r3", "promote", "r1"),
    ]
    assert history[0].metrics == metrics_with_accuracy(0.8).headline() and "first model" in history[0].reason
    assert history[1].by.startswith("night-shift@") and "better by 0.1000" in history[1].reason
    before = history_files(root)

    back = rollback(root, "r1", "r3 misbehaves in serving")
    assert (back.run, back.action, back.previous, back.model_uri) == (
        "r1",
        "rollback",
        "r3",
        "models/r1",  # relative to the root: a copied root still finds it
    )
    assert back.reason == "rollback from r3: r3 misbehaves in serving"
    assert back.metrics == history[0].metrics, "the metrics of its own promotion"
    assert read_champion(root)[0] == back
    assert champion_folder_run(root) == "r1"
    after = history_files(root)
    assert {uri: after[uri] for uri in before} == before, "earlier entries are never rewritten"
    assert [e.run for e in read_history(root)] == ["r1", "r3", "r1"] and read_history(root)[-1] == back

    # The rolled-back champion is the one the next run must beat: 0.85 beats r1's 0.8.
    nxt = promote_at(root, tmp_path, "r4", 0.85)
    assert nxt.promoted and nxt.previous.run == "r1"
    assert [(e.run, e.previous) for e in read_history(root)][-1] == ("r4", "r1")


def test_a_rollback_to_a_run_that_cannot_be_champion_is_refused_and_changes_nothing(tmp_path):
    root = str(tmp_path / "root")
    promote_at(root, tmp_path, "r1", 0.8)
    promote_at(root, tmp_path, "r2", 0.9)
    record, entries = read_champion(root)[0], history_files(root)
    with pytest.raises(UsageError, match="was never champion") as error:
        rollback(root, "r9")
    assert error.value.field == "to"
    with pytest.raises(UsageError, match="is the champion already"):
        rollback(root, "r2")
    (Path(layout.model_dir(root, "r1")) / "model.keras").write_text("truncated")
    with pytest.raises(UsageError, match="not whole"):
        rollback(root, "r1")
    assert read_champion(root)[0] == record and history_files(root) == entries


def test_champion_command_shows_lists_and_rolls_back(tmp_path, capsys):
    root = str(tmp_path / "root")
    code, out, err = in_process(capsys, "champion", "show", "--root", root)
    assert (code, out) == (2, "") and f"--root: {root} does not exist" in err, "not 'no champion yet'"
    Path(root).mkdir()
    code, out, err = in_process(capsys, "champion", "show", "--root", root)
    assert (code, out) == (0, "") and "no champion yet" in err
    assert json.loads(in_process(capsys, "champion", "show", "--root", root, "--json")[1]) is None
    promote_at(root, tmp_path, "r1", 0.8)
    promote_at(root, tmp_path, "r2", 0.9)
    code, out, _ = in_process(capsys, "champion", "show", "--root", root, "--json")
    shown = json.loads(out)
    assert code == 0 and (shown["run"], shown["previous"], shown["serving_copy_whole"]) == ("r2", "r1", True)
    assert shown["model_problem"] is None

    code, out, err = in_process(
        capsys, "champion", "rollback", "--root", root, "--to", "r1", "--reason", "bad"
    )
    assert code == 0 and "run:         r1\n" in out and "r1 is the champion again" in err
    assert "reason:      rollback from r2: bad\n" in out and "previous:    r2\n" in out
    code, out, _ = in_process(capsys, "champion", "history", "--root", root)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert " promote  r1  (before: -)  test_accuracy 0.8000" in lines[0]
    assert " rollback r1  (before: r2)  test_accuracy 0.8000" in lines[2] and lines[2].endswith(
        "rollback from r2: bad"
    )
    code, out, _ = in_process(capsys, "champion", "history", "--root", root, "--json")
    assert [json.loads(line)["action"] for line in out.splitlines()] == ["promote", "promote", "rollback"]

    code, out, err = in_process(capsys, "champion", "rollback", "--root", root, "--to", "nobody")
    assert (code, out) == (2, "") and err.startswith(
        "trainboard champion rollback: error: --to: run 'nobody' was never"
    )
    assert len(err.splitlines()) == 1
    code, _, err = in_process(capsys, "champion", "rollback", "--root", root)
    assert code == 2 and "--to" in err


def test_champion_show_reads_as_lines_and_as_the_record_with_json(tmp_path, capsys):
    """Readable by default: a `label: value` line a field; --json: the record, the same fields, as JSON."""
    root = str(tmp_path / "root")
    promote_at(root, tmp_path, "r1", 0.8)
    promote_at(root, tmp_path, "r2", 0.9)
    code, out, err = in_process(capsys, "champion", "show", "--root", root)
    assert code == 0, err
    values = {label: value.strip() for label, value in (line.split(":", 1) for line in out.splitlines())}
    assert list(values) == [
        "run",
        "model",
        "metrics",
        "promoted at",
        "action",
        "by",
        "reason",
        "previous",
        *(["p-value"] if read_champion(root)[0].p_value is not None else []),
        "serving copy",
        "model problem",
    ]
    record = json.loads(in_process(capsys, "champion", "show", "--root", root, "--json")[1])
    assert values["run"] == record["run"] == "r2"
    assert values["model"] == record["model_uri"] and values["previous"] == "r1"
    assert "test_accuracy 0.9000" in values["metrics"] and values["promoted at"] == record["promoted_at"]
    assert values["serving copy"] == f"{layout.champion_model_dir(root)} is whole"
    assert values["model problem"] == "none"


def test_champion_and_gc_read_the_default_root_local_writes(tmp_path, monkeypatch, capsys):
    """No --root: ./trainboard-runs, the root `trainboard local` makes; where there is none yet, one line
    saying so and how to make one, exit 2."""
    monkeypatch.chdir(tmp_path)
    for command in (["champion", "show"], ["champion", "history"], ["gc"]):
        code, out, err = in_process(capsys, *command)
        assert (code, out) == (2, "") and len(err.splitlines()) == 1, err
        assert err.startswith(f"trainboard {' '.join(command)}: error: --root: {tmp_path}/trainboard-runs ")
        assert "run `trainboard local` first" in err and "give --root" in err
    promote_at(str(tmp_path / "trainboard-runs"), tmp_path, "r1", 0.8)
    code, out, err = in_process(capsys, "champion", "show", "--json")
    assert code == 0 and json.loads(out)["run"] == "r1", err
    code, out, err = in_process(capsys, "gc")
    assert code == 0 and "would delete 0 of 1 runs' checkpoints" in err, "r1: the champion's"


def served(root: str, tmp_path: Path, name: str) -> str:
    """What serving loads, checked file by file: the run of the one model it got."""
    local = tmp_path / name
    run = download_champion(root, local)
    files = {p.relative_to(local).as_posix(): p.read_text() for p in local.rglob("*") if p.is_file()}
    assert (
        files["model.keras"] == f"weights of {run}"
        and files["saved_model/saved_model.pb"] == f"graph of {run}"
    )
    assert json.loads(files["trainboard_model.json"]) == {"run": run}
    return run


# model_copy: uploading models/r2/ (no record points there yet); champion_copy: copying models/r2/ to
# models/champion/ after the record was flipped (3 files; the 3rd: all copied, the manifest not yet).
KILL_POINTS = ["model_copy:1", "model_copy:3", "champion_copy:1", "champion_copy:2", "champion_copy:3"]


@pytest.mark.parametrize(
    ("where", "point"),
    [("local", p) for p in KILL_POINTS] + [("gcs", "champion_copy:2")],
    ids=[f"local-{p}" for p in KILL_POINTS] + ["gcs-champion_copy:2"],
)
def test_promotion_killed_mid_copy_leaves_serving_one_whole_model_and_is_repaired(
    request, tmp_path, where, point
):
    if where == "gcs":
        request.getfixturevalue("gcs")
    root = f"gs://{BUCKET}/team" if where == "gcs" else str(tmp_path / "root")
    promote_at(root, tmp_path, "r1", 0.8)
    env = {**os.environ, faults.FAULT_PAUSE_ENV: point}
    proc = subprocess.Popen(
        promote_command(root, "r2", tmp_path, 0.9), cwd=REPO, env=env, stderr=subprocess.PIPE, text=True
    )
    kill_at_pause(proc, point)
    record = read_champion(root)[0]
    champion_dir = layout.champion_model_dir(root)
    if point.startswith("model_copy"):
        assert record.run == "r1", "no record points at a model still being copied"
        assert read_model_copy(champion_dir, tmp_path / "untouched") == "r1"
    else:
        assert record.run == "r2"
        with pytest.raises(IncompleteModel):  # the half-copied folder is never taken for a model
            read_model_copy(champion_dir, tmp_path / "half")
    assert served(root, tmp_path, "served") == record.run, "serving gets the record's model, whole"

    # The next run, not promoted, repairs the copy (and the history, were an entry missing).
    assert not promote_at(root, tmp_path, "r3", 0.5).promoted
    assert champion_folder_run(root) == record.run
    assert read_model_copy(champion_dir, tmp_path / "repaired") == record.run
    assert read_history(root)[-1] == record
    if point.startswith("model_copy"):  # the retried task copies its model again, whole, and promotes
        assert promote_at(root, tmp_path, "r2", 0.9).promoted
        assert (
            champion_folder_run(root) == "r2"
            and read_model_copy(layout.model_dir(root, "r2"), tmp_path / "r2") == "r2"
        )


@pytest.mark.parametrize("damage", ["missing", "cut-short"])
def test_local_refuses_a_champion_whose_model_is_gone_before_any_work(tmp_path, capsys, damage):
    root = str(tmp_path / "root")
    promote_at(root, tmp_path, "r1", 0.8)
    model = Path(layout.model_dir(root, "r1"))
    if damage == "missing":
        for path in sorted(model.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    else:
        (model / "model.keras").write_text("w")
    code, out, err = in_process(capsys, "local", "--root", root, "--epochs", "1")
    assert (code, out) == (2, "") and len(err.splitlines()) == 1
    assert err.startswith(f"trainboard local: error: champion.json: {root}/champion.json names champion r1 ")
    assert f"whose model {model} " in err and "trainboard champion rollback" in err and "force_promote" in err
    board = Path(layout.tensorboard_root(root))
    assert [p.name for p in board.iterdir()] == [TREND], "refused before any work: only r1's trend point"
    shown = json.loads(in_process(capsys, "champion", "show", "--root", root, "--json")[1])
    assert shown["run"] == "r1" and f"whose model {model} " in shown["model_problem"]


def test_a_rollback_racing_a_promotion_is_decided_on_the_newest_record(tmp_path, monkeypatch):
    """A promotion lands between the rollback's read of the record and its write: the write's precondition
    fails, the rollback reads the new record and rolls back from it, and the history says so."""
    root = str(tmp_path / "root")
    promote_at(root, tmp_path, "r1", 0.8)
    promote_at(root, tmp_path, "r2", 0.85)
    read_versioned, raced = storage.read_versioned, []

    def read_then_promote(uri: str):
        result = read_versioned(uri)
        if uri == layout.champion_record(root) and not raced:
            raced.append(uri)
            promote_at(root, tmp_path, "r3", 0.9)  # lands after the rollback read
        return result

    monkeypatch.setattr(storage, "read_versioned", read_then_promote)
    back = rollback(root, "r1")
    monkeypatch.setattr(storage, "read_versioned", read_versioned)
    assert raced and (back.run, back.previous) == ("r1", "r3") and back.reason == "rollback from r3"
    assert [(e.run, e.previous) for e in read_history(root)] == [
        ("r1", ""),
        ("r2", "r1"),
        ("r3", "r2"),
        ("r1", "r3"),
    ]
    assert read_champion(root)[0] == back and champion_folder_run(root) == "r1"


@pytest.mark.slow
def test_two_local_runs_a_forced_promotion_and_a_rollback_as_a_user_would(tmp_path):
    """The real pipeline (kfp.local): the second run's report has the paired test against the first on the
    same test split; the history has both; a rollback makes the first the champion again, whole."""
    root = tmp_path / "root"
    local = ["local", "--no-serve", "--json", "--root", str(root), "--epochs", PROMOTABLE_EPOCHS]
    first = trainboard(*local, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    first_run = last_json_line(first.stdout)["run"]
    second = trainboard(*local, "--seed", "3", "--min-significance", "0.05", "--force-promote", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    out = last_json_line(second.stdout)
    assert out["promoted"] and out["champion"] == out["run"]
    report = Path(out["report"]).read_text()
    assert f"Paired test against `{first_run}` on the same test split (McNemar's exact): " in report
    assert "p-value " in report

    history = trainboard("champion", "history", "--root", str(root), "--json")
    entries = [json.loads(line) for line in history.stdout.splitlines()]
    assert [(e["run"], e["action"], e["previous"]) for e in entries] == [
        (first_run, "promote", ""),
        (out["run"], "force", first_run),
    ]
    back = trainboard("champion", "rollback", "--root", str(root), "--to", first_run, "--reason", "canary")
    assert back.returncode == 0, back.stderr
    shown = last_json_line(trainboard("champion", "show", "--root", str(root), "--json").stdout)
    assert (shown["run"], shown["action"], shown["serving_copy_whole"]) == (first_run, "rollback", True)
    assert read_model_copy(layout.champion_model_dir(str(root)), tmp_path / "served") == first_run


def test_a_root_from_before_the_history_gets_one_and_rolls_back_to_a_model_without_manifest(tmp_path):
    """A record and model folders written before history and manifests: the next promote records the
    champion it finds, and a rollback to a run whose folder has no manifest copies it with one."""
    root = str(tmp_path / "root")
    promote_at(root, tmp_path, "r1", 0.8)
    promote_at(root, tmp_path, "r2", 0.9)
    for uri in [
        *storage.list_files(layout.champion_history_dir(root)),
        *storage.list_files(storage.join(root, "models")),
    ]:
        if "champion-history" in uri or uri.endswith("trainboard_manifest.json"):
            storage.delete(uri)
    assert not promote_at(root, tmp_path, "r3", 0.5).promoted
    assert [e.run for e in read_history(root)] == ["r2"], "the champion found is recorded"
    assert champion_folder_run(root) == "r2", "and its copy gets a manifest"
    # r1's promotion, as if the history had recorded it then: a rollback needs the metrics it restores.
    old = ChampionRecord(
        "r1", layout.model_dir(root, "r1"), {"test_accuracy": 0.8}, "2020-01-01T00:00:00", ""
    )
    record_history(root, old)
    assert rollback(root, "r1").run == "r1" and champion_folder_run(root) == "r1"
    assert read_model_copy(layout.champion_model_dir(root), tmp_path / "served") == "r1"


@pytest.mark.parametrize(
    ("lost", "champion", "said"),
    [
        ([], "r2", "it was missing"),  # only champion.json gone
        (["r2"], "r1", "the newer entries' models are not whole: r2"),  # and the newest model gone too
        (["r2", "r1"], None, "nothing to repair"),  # no whole model to name: no champion, as before
    ],
    ids=["record", "record-and-newest-model", "every-model"],
)
def test_repair_writes_a_missing_record_again_from_the_history_and_says_what_it_did(
    root, tmp_path, capsys, lost, champion, said
):
    """A champion.json lost with its history kept: without the repair the next run would be judged as if
    there were no champion."""
    promote_at(root, tmp_path, "r1", 0.8)
    promote_at(root, tmp_path, "r2", 0.9)
    storage.delete(layout.champion_record(root))
    code, _, err = in_process(capsys, "champion", "show", "--root", root)
    assert (
        code == 0 and "missing, though the history names 2 promotion(s): `trainboard champion repair`" in err
    )
    for run in lost:
        storage.delete(storage.join(layout.model_dir(root, run), "model.keras"))
    code, _, err = in_process(capsys, "champion", "repair", "--root", root)
    assert code == 0, err
    assert said in err and all(line.startswith("trainboard champion: ") for line in err.splitlines()), err
    record, _ = read_champion(root)
    assert (record.run if record else None) == champion
    if champion:
        assert f"again from the history: champion {champion}" in err and champion_folder_run(root) == champion
        recopied = f"copied the champion's model ({champion}, 3 files)"
        assert (recopied in err) == (champion == "r1"), (
            "models/champion/ held r2: copied only when it changes"
        )
        code, _, err = in_process(capsys, "champion", "repair", "--root", root)
        assert code == 0 and "nothing to repair" in err, "done: the second repair finds nothing"


@pytest.mark.parametrize("torn", ["model.keras", "trainboard_manifest.json"])
def test_repair_says_what_it_recopied(root, tmp_path, capsys, torn):
    promote_at(root, tmp_path, "r1", 0.8)
    storage.delete(storage.join(layout.champion_model_dir(root), torn))
    code, _, err = in_process(capsys, "champion", "repair", "--root", root)
    assert code == 0, err
    assert f"copied the champion's model (r1, 3 files) to {layout.champion_model_dir(root)}/" in err
    assert champion_folder_run(root) == "r1"

"""Tried as a new user would: ten scheduled-like runs into one root, some promoted, some
not, one killed during its promotion, then a rollback; the root ends consistent: record, history, models/,
models/champion/ and the board."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import BIN, PROMOTABLE_EPOCHS, last_json_line, trainboard
from tests.support.events import epoch_steps, event_files
from tests.support.promotion import metrics_with_accuracy, model_folder
from trainboard import faults, layout, storage
from trainboard.admin import gc
from trainboard.artifacts.champion import (
    IncompleteModel,
    download_champion,
    matches_manifest,
    read_champion,
    read_history,
    read_manifest,
    read_model_copy,
)
from trainboard.components.promote.core import promote
from trainboard.config import PromotionRule


def local_run(root: Path, tmp_path: Path, *flags: str) -> dict:
    done = trainboard(
        "local",
        "--no-serve",
        "--json",
        "--root",
        str(root),
        "--epochs",
        PROMOTABLE_EPOCHS,
        *flags,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return last_json_line(done.stdout)


def killed_during_promotion(root: Path, tmp_path: Path) -> str:
    """`trainboard local --force-promote`, its whole process group SIGKILLed while promote copies the model
    to models/champion/ (after the record was flipped); the run's name."""
    env = {**os.environ, faults.FAULT_PAUSE_ENV: "champion_copy:2"}
    command = [
        str(BIN / "trainboard"),
        "local",
        "--no-serve",
        "--verbose",
        "--root",
        str(root),
        "--epochs",
        "1",
    ]
    proc = subprocess.Popen(
        [*command, "--force-promote"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    run = ""
    try:
        for line in proc.stdout:
            if line.startswith("trainboard: run ") and not run:
                run = line.split()[2].rstrip(":")
            if "fault pause at champion_copy" in line:
                break
        else:
            raise AssertionError(f"trainboard local exited ({proc.wait()}) before pausing in promote")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    return run


def core_run(root: str, tmp_path: Path, accuracy: float, **rule) -> tuple[str, bool]:
    """A night driven through the promote core: a stand-in model with test metrics of ``accuracy``."""
    run = layout.new_run_name()
    time.sleep(0.01)
    decision = promote(
        root, run, model_folder(tmp_path, run), metrics_with_accuracy(accuracy), rule=PromotionRule(**rule)
    )
    return run, decision.promoted


@pytest.mark.slow
def test_ten_scheduled_runs_a_killed_promotion_and_a_rollback_leave_a_consistent_root(tmp_path):
    """Four nights run the whole pipeline (`trainboard local` on the demo data, 3 epochs, the killed one 1):
    the first is promoted, the second not (--min-improvement 1), the third forced, the fourth forced and
    SIGKILLed while models/champion/ is copied. Ten full runs take too long for the suite on 2 cores, so the
    other six nights go through the promote core directly (stand-in models, chosen accuracies: below the
    floor, forced, worse, better, under the margin, better); they have no event files. Then
    `trainboard champion rollback` to the third night."""
    root = tmp_path / "root"
    uri = str(root)
    a = local_run(root, tmp_path)
    b = local_run(root, tmp_path, "--min-improvement", "1")
    c = local_run(root, tmp_path, "--force-promote")
    assert (a["promoted"], b["promoted"], c["promoted"]) == (True, False, True)
    d = killed_during_promotion(root, tmp_path)
    record, _ = read_champion(uri)
    assert record.run == d, "the record was flipped before the kill"
    with pytest.raises(IncompleteModel):
        read_model_copy(layout.champion_model_dir(uri), tmp_path / "half")
    assert download_champion(uri, tmp_path / "while-broken") == d, "serving falls back to the record's model"

    nights = [
        core_run(uri, tmp_path, 0.95, min_accuracy=0.99),  # below the floor; repairs models/champion/
        core_run(uri, tmp_path, 0.6, force_promote=True),
        core_run(uri, tmp_path, 0.5),  # worse
        core_run(uri, tmp_path, 0.9),  # better
        core_run(uri, tmp_path, 0.95, min_improvement=0.1),  # under the margin
        core_run(uri, tmp_path, 0.97),  # better
    ]
    assert [promoted for _, promoted in nights] == [False, True, False, True, False, True]
    e, f, g, h, i, j = (run for run, _ in nights)
    back = trainboard(
        "champion", "rollback", "--root", uri, "--to", c["run"], "--reason", "night 10 regressed"
    )
    assert back.returncode == 0, back.stderr

    # The record and its history: one entry per promotion and the rollback, in order.
    record, _ = read_champion(uri)
    assert (record.run, record.action, record.previous) == (c["run"], "rollback", j)
    history = read_history(uri)
    assert [(r.run, r.action, r.previous) for r in history] == [
        (a["run"], "promote", ""),
        (c["run"], "force", a["run"]),
        (d, "force", c["run"]),
        (f, "force", d),
        (h, "promote", f),
        (j, "promote", h),
        (c["run"], "rollback", j),
    ]
    assert history[-1] == record
    assert [r.promoted_at for r in history] == sorted(r.promoted_at for r in history)

    # models/: every champion's model whole by its manifest, no other run's; models/champion/ the record's.
    champions = {a["run"], c["run"], d, f, h, j}
    models = {rel.split("/", 1)[0] for rel in storage.list_versions(storage.join(uri, "models"))}
    assert models == champions | {layout.CHAMPION}
    for run in champions:
        folder = layout.model_dir(uri, run)
        manifest = read_manifest(folder)
        assert manifest is not None and manifest["run"] == run
        assert matches_manifest(folder, manifest, digests=True), folder
    serving = layout.champion_model_dir(uri)
    assert read_manifest(serving) == read_manifest(record.model_in(uri))
    assert record.model_uri == layout.model_path(c["run"])
    assert matches_manifest(serving, read_manifest(serving), digests=True)
    assert read_model_copy(serving, tmp_path / "served") == c["run"]

    # The board: every full night's train, validation and evaluation event files, readable.
    board = layout.tensorboard_root(uri)
    full = {a["run"]: PROMOTABLE_EPOCHS, b["run"]: PROMOTABLE_EPOCHS, c["run"]: PROMOTABLE_EPOCHS, d: "1"}
    listed = {rel.split("/", 1)[0] for rel in storage.list_versions(board) if "/" in rel}
    assert set(full) <= listed
    for run, epochs in full.items():
        run_dir = layout.tensorboard_dir(uri, run)
        steps = list(range(int(epochs)))
        assert epoch_steps(run_dir, "train") == steps and epoch_steps(run_dir, "validation") == steps, run
        assert event_files(run_dir, "evaluation"), run

    # And `trainboard gc` keeps every champion's checkpoints: only the unpromoted full night's may go.
    # (The core nights trained nothing: their folder holds promote's outcome.json alone, which may go too.)
    plan = gc.plan(uri, keep=1, now=time.time() + 7200)
    assert [r.run for r in plan.delete] == [b["run"], e, g, i]
    assert all(r.files == 1 for r in plan.delete[1:]), "an unpromoted core night: its outcome.json only"

"""End to end: `trainboard local` runs the whole pipeline through kfp.local, streams TensorBoard logs
to the root while training, and a real TensorBoard over the root serves the run's curves."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.support.cli import BIN, last_json_line, trainboard
from tests.support.events import scalars
from tests.support.gcs import BUCKET
from tests.support.images import make_image_folder
from trainboard import storage
from trainboard.config import TrainingConfig

pytestmark = pytest.mark.slow
EPOCHS = TrainingConfig().epochs  # the default local settings
CHANCE = 1 / 4  # the demo data has four balanced classes


def epoch_points(run_dir: str, split: str = "train") -> list[tuple[int, float]]:
    """epoch_loss points in every event file of ``run_dir/split`` in the root."""
    points = []
    for uri in storage.list_files(storage.join(run_dir, split)):
        if ".tfevents." in uri:
            points += scalars(storage.read_bytes(uri), "epoch_loss")
    return sorted(points)


def check_run_in_root_and_tensorboard(result: dict, epochs: int, tensorboard_factory) -> None:
    """One epoch_loss point per epoch for train and validation, in the root and in a real TensorBoard."""
    run, logdir = result["run"], result["logdir"]
    for split in ("train", "validation"):
        assert [step for step, _ in epoch_points(logdir, split)] == list(range(epochs)), split
    tb = tensorboard_factory(result["tensorboard_logdir"])
    for split in ("train", "validation"):
        points = tb.wait_for_scalars(f"{run}/{split}", "epoch_loss", epochs)
        assert [int(step) for _, step, _ in points] == list(range(epochs)), split
        assert points[-1][2] < points[0][2], f"{split} loss should fall"
    (evaluated,) = tb.wait_for_scalars(f"{run}/evaluation", "test_accuracy", 1)
    assert evaluated[2] == pytest.approx(result["metrics"]["test_accuracy"], abs=1e-6)


def check_first_run_is_the_champion(result: dict) -> None:
    """A fresh root has no champion: the first run meets the default min_accuracy 0 and is promoted."""
    assert (result["promoted"], result["champion"]) == (True, result["run"])
    record = json.loads(storage.read_bytes(storage.join(result["root"], "champion.json")))
    assert (
        record["run"] == result["run"] and record["model_uri"] == f"{result['root']}/models/{result['run']}"
    )
    assert storage.exists(storage.join(result["root"], "models", "champion", "model.keras"))


def test_gcs_root_live_logs_learnable_data_and_tensorboard(gcs, tmp_path, tensorboard_factory):
    root = f"gs://{BUCKET}/x"
    run = "20260101-000000-live"
    proc = subprocess.Popen(
        [str(BIN / "trainboard"), "local", "--no-serve", "--json", "--root", root, "--run-name", run],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Live: the first epoch's loss reaches the bucket while training still has epochs to go.
    run_dir = f"{root}/tensorboard/{run}"
    seen_live = None
    while proc.poll() is None and seen_live is None:
        points = epoch_points(run_dir)
        if points:
            seen_live = (len(points), proc.poll())
        time.sleep(0.3)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    assert seen_live is not None, "no epoch reached the bucket while the run was going"
    assert seen_live[0] < EPOCHS and seen_live[1] is None, seen_live

    result = last_json_line(stdout)
    assert result["run"] == run
    assert result["logdir"] == run_dir
    assert result["metrics"]["test_accuracy"] > CHANCE + 0.4, result["metrics"]
    assert result["metrics"]["test_loss"] > 0
    assert storage.list_files(f"{root}/checkpoints/{run}"), "no checkpoint in the bucket"
    check_run_in_root_and_tensorboard(result, EPOCHS, tensorboard_factory)
    check_first_run_is_the_champion(result)


def test_local_root(tmp_path, tensorboard_factory):
    root = tmp_path / "root"
    result = trainboard("local", "--no-serve", "--json", "--root", str(root), "--epochs", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = last_json_line(result.stdout)
    assert out["logdir"] == str(root / "tensorboard" / out["run"])
    assert (tmp_path / out["model_uri"]).joinpath("model.keras").is_file()
    checkpoints = sorted(p.name for p in (root / "checkpoints" / out["run"]).iterdir())
    assert checkpoints == ["epoch-0003.keras", "state.json"], "the last epoch's checkpoint and its state"
    check_run_in_root_and_tensorboard(out, 3, tensorboard_factory)
    check_first_run_is_the_champion(out)


def test_a_reused_run_name_never_reports_another_runs_model(tmp_path):
    """`--run-name nightly` twice, the second on other data: refused before any work (it would resume the
    first run's model and report it as the second's); `--restart` trains it afresh."""
    root = tmp_path / "root"
    common = ["local", "--no-serve", "--json", "--root", str(root), "--run-name", "nightly", "--epochs", "1"]
    first = trainboard(*common, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    make_image_folder(tmp_path / "images", {"": 12}, classes=["circle", "square"])
    other = ["--dataset", f"folder:{tmp_path / 'images'}"]
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    second = trainboard(*common, *other, cwd=tmp_path)
    assert second.returncode == 2 and second.stdout == ""
    [line] = second.stderr.strip().splitlines()
    assert line.startswith("trainboard local: error: --run-name: run nightly in ")
    assert "dataset 'demo' -> 'folder:" in line and "--restart --run-name nightly" in line
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before, "nothing written"

    again = trainboard(*common, *other, "--restart", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    result = last_json_line(again.stdout)
    assert result["run"] == "nightly"
    state = json.loads((root / "checkpoints" / "nightly" / "state.json").read_text())
    assert state["started_with"]["dataset"] == f"folder:{tmp_path / 'images'}" and state["attempt"] == 1

"""A run name is not an identity: each case a careless team met, on a local root and on a gs://
root (fake-gcs-server) alike. A promoted model is written once and never replaced; the output says what
the records say; a run leases its name (two real processes); a resume goes ahead only when everything
that decides the result is the same and its checkpoint is whole; gc never follows a link into models/;
a rollback killed mid-copy is repaired by running it again; damaged records are refused before any work
and repaired by `trainboard champion repair`; records name models relative to the root."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.support.cli import BIN, in_process
from tests.support.gcs import BUCKET
from tests.support.images import make_image_folder
from tests.support.kill import kill_at_pause
from tests.support.promotion import champion_folder_run, metrics_with_accuracy, model_folder
from trainboard import faults, layout, storage
from trainboard.artifacts.champion import history_entry, read_champion, read_history, read_model_copy
from trainboard.artifacts.lease import release, take
from trainboard.artifacts.training_state import TrainingState, data_settings, started_with, state_uri
from trainboard.component_image import IMAGE
from trainboard.components.fingerprint_source.core import fingerprint_source
from trainboard.components.promote.core import promote
from trainboard.config import DataConfig, PromotionRule, TrainingConfig, model_spec
from trainboard.layout import lease_file

REPO = Path(__file__).resolve().parents[1]


def promote_at(root: str, tmp_path: Path, run: str, accuracy: float, **rule):
    return promote(
        root, run, model_folder(tmp_path, run), metrics_with_accuracy(accuracy), rule=PromotionRule(**rule)
    )


def retrained(tmp_path: Path, run: str) -> str:
    """Another model under the same run name (a restart with another seed)."""
    folder = Path(model_folder(tmp_path / "again", run))
    (folder / "model.keras").write_text(f"weights of {run}, trained again")
    return str(folder)


def files(folder: str) -> dict[str, bytes]:
    return {uri: storage.read_bytes(uri) for uri in storage.list_files(folder)}


def served_weights(root: str) -> bytes:
    return storage.read_bytes(storage.join(layout.champion_model_dir(root), "model.keras"))


def local(root: str, run: str, *extra: str) -> list[str]:
    return ["local", "--root", root, "--run-name", run, "--epochs", "1", "--no-serve", *extra]


def nothing_started(root: str, run: str) -> bool:
    """No training state, logs or lease of ``run`` (promote's outcome.json may be there from before)."""
    return not (
        storage.exists(state_uri(root, run))
        or storage.list_files(layout.tensorboard_dir(root, run))
        or storage.exists(lease_file(root, run))
    )


def test_a_promoted_runs_model_is_never_replaced(root, tmp_path, capsys):
    """Case 1: a restart (or a forced promotion) under the name of a past champion."""
    promote_at(root, tmp_path, "k1", 0.8)
    promote_at(root, tmp_path, "k2", 0.9)
    before = files(layout.model_dir(root, "k1"))
    [entry] = [history_entry(root, r) for r in read_history(root) if r.run == "k1"]

    for extra in (["--restart", "--seed", "7", "--force-promote"], []):
        code, out, err = in_process(capsys, *local(root, "k1", *extra))
        assert (code, out) == (2, ""), err
        assert f"--run-name: run k1 was promoted before ({entry})" in err and "another name" in err
        assert len(err.strip().splitlines()) == 1 and nothing_started(root, "k1")

    # promote, the last line of defence on a cluster: refuses to publish another model as k1.
    decision = promote(
        root, "k1", retrained(tmp_path, "k1"), metrics_with_accuracy(0.95), rule=PromotionRule()
    )
    assert not decision.promoted and "never replaced" in decision.reason
    assert files(layout.model_dir(root, "k1")) == before
    assert read_champion(root)[0].run == "k2"
    code, _, err = in_process(capsys, "champion", "rollback", "--root", root, "--to", "k1")
    assert code == 0, err
    assert champion_folder_run(root) == "k1"
    assert (
        storage.read_bytes(storage.join(layout.champion_model_dir(root), "model.keras")) == b"weights of k1"
    )


def test_the_output_says_what_the_record_says(root, tmp_path):
    """Case 2: the champion's own run trained again: not "promoted", since champion.json still serves
    the old model."""
    promote_at(root, tmp_path, "k1", 0.8)
    decision = promote(
        root, "k1", retrained(tmp_path, "k1"), metrics_with_accuracy(0.9), rule=PromotionRule()
    )
    assert not decision.promoted and decision.champion == "k1"
    assert "another training under that name" in decision.reason
    record = read_champion(root)[0]
    assert (record.run, record.model_uri) == ("k1", "models/k1")
    assert (
        storage.read_bytes(storage.join(layout.champion_model_dir(root), "model.keras")) == b"weights of k1"
    )
    # A retried promote task of the same training is still the promotion it was.
    assert promote_at(root, tmp_path, "k1", 0.8).promoted


HOLD = """
import sys, time
from trainboard.artifacts.lease import held
with held(sys.argv[1], sys.argv[2], sys.argv[3]):
    print("held", flush=True)
    time.sleep(120)
"""

RACE = """
import sys, time
from trainboard.artifacts.lease import take
from trainboard.errors import UsageError
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
try:
    take(sys.argv[1], "k1", sys.argv[2])
    print("won")
except UsageError:
    print("lost")
"""


def test_a_run_name_in_use_is_refused_before_any_work(root, capsys):
    """Case 3: another process (a run started a moment earlier) holds the name."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, root, "k1", "night-run"], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out, err = in_process(capsys, *local(root, "k1"))
        assert (code, out) == (2, ""), err
        assert "--run-name: run k1 is in use by night-run (" in err and " until 20" in err
        assert not storage.list_files(layout.checkpoint_dir(root, "k1"))
        assert not storage.list_files(layout.tensorboard_dir(root, "k1"))
    finally:
        holder.send_signal(signal.SIGKILL)  # killed: its lease stays until it expires
        holder.wait(30)
    assert json.loads(storage.read_bytes(lease_file(root, "k1")))["holder"] == "night-run"
    take(root, "k1", "night-run", seconds=-1)  # as if its expiry had passed
    take(root, "k1", "next-night")  # a killed run's name frees itself
    take(root, "k1", "next-night")  # a retried task of the same run holds it already
    release(root, "k1", "night-run")  # not the holder: nothing happens
    assert json.loads(storage.read_bytes(lease_file(root, "k1")))["holder"] == "next-night"


def test_leases_taken_and_given_back_night_after_night_leave_nothing_behind(root):
    for night in range(5):
        take(root, f"night-{night}", "kfp-run-x")
        release(root, f"night-{night}", "kfp-run-x")
    left = [uri.rsplit("/", 1)[-1] for uri in storage.list_files(storage.join(root, "leases"))]
    assert [name for name in left if not name.startswith(".")] == [], "a local root's lock: one, hidden"
    assert len(left) <= 1


def test_of_four_processes_taking_one_name_at_once_one_wins(root):
    start = time.time() + 3
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, root, f"racer-{i}", str(start)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for i in range(4)
    ]
    outcomes = sorted(racer.communicate(timeout=60)[0].strip() for racer in racers)
    assert outcomes == ["lost", "lost", "lost", "won"]


def write_state(
    root: str, run: str, checkpoint: bytes | None, data: DataConfig | None = None, source: str = ""
) -> None:
    """A run of the local defaults killed after epoch 2 (its checkpoint: ``checkpoint``)."""
    data = data or DataConfig()
    settings = data_settings(data)
    begun = started_with(
        TrainingConfig(epochs=1), data.dataset, data=settings, image=IMAGE, source_fingerprint=source
    )
    state = TrainingState(2, "epoch-0002.keras", started_with=begun)
    storage.write_bytes(state_uri(root, run), json.dumps(asdict(state)).encode())
    if checkpoint is not None:
        storage.write_bytes(storage.join(layout.checkpoint_dir(root, run), "epoch-0002.keras"), checkpoint)


def keras_archive(model: str, classes: int | None = None, image_size: int | None = None) -> bytes:
    """What model.save writes, as far as the check reads it: a zip whose config.json names the model and,
    when given, its head's classes and its input's size (build_model's layers "classes" and "image")."""
    layers = []
    if classes is not None:
        layers.append({"name": "classes", "config": {"units": classes}})
    if image_size is not None:
        layers.append({"name": "image", "config": {"batch_shape": [None, image_size, image_size, 3]}})
    config = {"class_name": "Functional", "config": {"name": model, "layers": layers}}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", b"\0" * 4096)
    return out.getvalue()


def test_a_resume_goes_ahead_only_when_everything_that_decides_the_result_is_the_same(root, capsys):
    """Case 4 (other split fractions) and case 7's checkpoint (another architecture, truncated)."""
    write_state(root, "k1", keras_archive("small_cnn"))
    code, _, err = in_process(capsys, *local(root, "k1", "--validation-fraction", "0.2"))
    assert code == 2 and "validation_fraction 0.1 -> 0.2" in err and "--restart" in err, err
    write_state(root, "k2", keras_archive("small_cnn"), DataConfig(test_fraction=0.2))
    code, _, err = in_process(capsys, *local(root, "k2"))
    assert code == 2 and "test_fraction 0.2 -> 0.1" in err, err

    write_state(root, "k3", keras_archive("vgg16"))
    code, _, err = in_process(capsys, *local(root, "k3"))
    assert code == 2 and "epoch-0002.keras, which state.json names, holds a vgg16 model, not small_cnn" in err
    write_state(root, "k4", keras_archive("small_cnn")[:200])
    code, _, err = in_process(capsys, *local(root, "k4"))
    assert code == 2 and "is not a whole Keras model" in err and "--restart --run-name k4" in err
    write_state(root, "k5", None)
    code, _, err = in_process(capsys, *local(root, "k5"))
    assert code == 2 and "epoch-0002.keras, which state.json names, is missing" in err
    for run in ("k1", "k2", "k3", "k4", "k5"):
        assert not storage.list_files(layout.tensorboard_dir(root, run)), "refused before any work"
        assert not storage.exists(lease_file(root, run))


def test_a_checkpoint_for_other_classes_or_image_size_is_refused_before_any_work(root, capsys):
    """A checkpoint that loads but cannot resume this run (put there by hand, or another run's): refused
    by `local` before data preparation, one line naming the file, what differs and the way out."""
    small_cnn = model_spec("small_cnn").default_image_size  # local's size for it
    cases = {
        "c1": (keras_archive("small_cnn", classes=7, image_size=small_cnn), "a head of 7 classes, not the 4"),
        "c2": (
            keras_archive("small_cnn", classes=4, image_size=small_cnn * 2),
            f"{small_cnn * 2}x{small_cnn * 2} images, not {small_cnn}x{small_cnn}",
        ),
        "c3": (keras_archive("vgg16", classes=10), "a vgg16 model, not small_cnn and a head of 10 classes"),
    }
    for run, (archive, words) in cases.items():
        write_state(root, run, archive)
        code, _, err = in_process(capsys, *local(root, run))
        assert code == 2 and words in err and "epoch-0002.keras, which state.json names" in err, err
        assert "--restart --run-name " + run in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert not storage.list_files(layout.tensorboard_dir(root, run)), "refused before any work"
        assert not storage.exists(lease_file(root, run))


def test_a_folder_changed_under_a_reused_run_name_is_refused_before_any_work(tmp_path, capsys):
    """Case 4's folder: one image rewritten after the run started; found from the listing, before any
    image is read."""
    root, images = str(tmp_path / "root"), tmp_path / "images"
    make_image_folder(images, {"": 6}, classes=["circle", "square"])
    data = DataConfig(dataset=f"folder:{images}")
    write_state(root, "k1", keras_archive("small_cnn"), data, fingerprint_source(data.dataset))
    some_image = sorted(path for path in images.rglob("*") if path.is_file())[0]
    some_image.write_bytes(some_image.read_bytes() + b"\0")
    code, _, err = in_process(capsys, *local(root, "k1", "--dataset", data.dataset))
    assert code == 2 and "source_fingerprint" in err and "(the data's content changed)" in err, err
    assert "--restart --run-name k1" in err and not storage.list_files(layout.tensorboard_dir(root, "k1"))


def test_gc_deletes_a_link_never_what_it_points_at(tmp_path, capsys):
    """Case 5 (a local root: object stores have no links)."""
    root = str(tmp_path / "root")
    promote_at(root, tmp_path, "k1", 0.8)
    promote_at(root, tmp_path, "k2", 0.9)
    old = time.time() - 10 * 86400
    checkpoints = Path(layout.checkpoint_dir(root, "x")).parent
    for run in ("old1", "old2", "new"):
        (checkpoints / run).mkdir(parents=True)
        (checkpoints / run / "epoch-0001.keras").write_bytes(b"c")
        if run != "new":
            os.utime(checkpoints / run / "epoch-0001.keras", (old, old))
    (checkpoints / "evil").symlink_to(Path(layout.model_dir(root, "k1")))
    (checkpoints / "not a run").mkdir()
    (checkpoints / "not a run" / "keep.txt").write_bytes(b"k")
    for path in Path(layout.model_dir(root, "k1")).rglob("*"):
        os.utime(path, (old, old), follow_symlinks=False)
    before = files(layout.model_dir(root, "k1"))

    code, _, err = in_process(capsys, "gc", "--root", root, "--keep", "1", "--delete")
    assert code == 0, err
    assert files(layout.model_dir(root, "k1")) == before, "the link went, not the model"
    assert not (checkpoints / "evil").exists() and not (checkpoints / "old1").exists()
    assert (checkpoints / "not a run" / "keep.txt").exists(), "gc walks only names a run can have"
    code, _, err = in_process(capsys, "champion", "rollback", "--root", root, "--to", "k1")
    assert code == 0 and champion_folder_run(root) == "k1", err


def test_a_rollback_killed_mid_copy_is_repaired_by_running_it_again(root, tmp_path, capsys):
    """Case 6: SIGKILL while models/champion/ is being copied."""
    promote_at(root, tmp_path, "k1", 0.8)
    promote_at(root, tmp_path, "k2", 0.9)
    env = {**os.environ, faults.FAULT_PAUSE_ENV: "champion_copy:2"}
    rollback = ["champion", "rollback", "--root", root, "--to", "k1"]
    proc = subprocess.Popen([str(BIN / "trainboard"), *rollback], env=env, stderr=subprocess.PIPE, text=True)
    kill_at_pause(proc, "champion_copy:2")
    assert read_champion(root)[0].run == "k1"
    with pytest.raises(Exception, match=r"not one model, whole|no trainboard_manifest"):
        read_model_copy(layout.champion_model_dir(root), tmp_path / "torn")

    code, out, err = in_process(capsys, *rollback, "--json")
    assert code == 0 and json.loads(out)["run"] == "k1", err
    assert champion_folder_run(root) == "k1"
    code, _, err = in_process(capsys, *rollback)
    assert code == 2 and "is the champion already" in err and "is whole" in err


@pytest.mark.parametrize("damaged", ["record", "history"])
def test_damaged_records_are_refused_before_any_work_and_repaired(root, tmp_path, capsys, damaged):
    """Case 7: a damaged champion.json or history entry, found by every command before it works."""
    promote_at(root, tmp_path, "k1", 0.8)
    promote_at(root, tmp_path, "k2", 0.9)
    if damaged == "record":
        target = layout.champion_record(root)
    else:
        target = history_entry(root, read_history(root)[0])
    storage.write_bytes(target, b'{"run": "k2", "model_uri": ')  # cut short
    name = target[len(root) + 1 :]
    for command in (
        local(root, "k3"),
        ["gc", "--root", root],
        ["champion", "show", "--root", root],
        ["champion", "rollback", "--root", root, "--to", "k1"],
    ):
        code, out, err = in_process(capsys, *command)
        assert (code, out) == (2, ""), (command, err)
        named = " ".join(command[:2]) if command[0] == "champion" else command[0]  # the command refused
        assert err.startswith(f"trainboard {named}: error: {name}: {target} is not a valid champion")
        assert f"trainboard champion repair --root {root}" in err and len(err.strip().splitlines()) == 1
    assert nothing_started(root, "k3")

    code, _, err = in_process(capsys, "champion", "repair", "--root", root)
    assert code == 0, err
    record = read_champion(root)[0]
    if damaged == "record":
        assert "again from the history: champion k2" in err and record.run == "k2"
    else:
        assert "moved the damaged history entry" in err and [r.run for r in read_history(root)] == ["k2"]
    assert champion_folder_run(root) == "k2"
    code, _, err = in_process(capsys, "champion", "repair", "--root", root)
    assert code == 0 and "nothing to repair" in err


@pytest.mark.parametrize("restart", [True, False])
def test_a_promoted_run_whose_history_entry_was_moved_aside_is_refused_before_anything_is_deleted(
    tmp_path, capsys, restart
):
    """champion repair moved k1's damaged history entry aside: its published model still makes the name
    final, and --restart deletes nothing before it is refused."""
    root = str(tmp_path / "root")
    promote_at(root, tmp_path, "k1", 0.8)
    promote_at(root, tmp_path, "k2", 0.9)
    storage.write_bytes(history_entry(root, read_history(root)[0]), b'{"run": 7}')
    assert in_process(capsys, "champion", "repair", "--root", root)[0] == 0
    checkpoint = storage.join(layout.checkpoint_dir(root, "k1"), "epoch-0001.keras")
    storage.write_bytes(checkpoint, b"k1's last epoch")
    code, out, err = in_process(capsys, *local(root, "k1", *(["--restart"] if restart else [])))
    assert (code, out) == (2, ""), err
    assert f"--run-name: run k1 has a published model ({layout.model_dir(root, 'k1')})" in err
    assert "give this run another name" in err and len(err.strip().splitlines()) == 1
    assert storage.read_bytes(checkpoint) == b"k1's last epoch", "nothing deleted"


def test_a_copied_root_finds_its_models(tmp_path, capsys):
    """Case 8: records name models relative to the root; an old absolute one is still read."""
    root, copy = tmp_path / "root", tmp_path / "restored"
    promote_at(str(root), tmp_path, "k1", 0.8)
    promote_at(str(root), tmp_path, "k2", 0.9)
    os.rename(root, copy)
    code, out, err = in_process(capsys, "champion", "show", "--root", str(copy), "--json")
    assert code == 0 and json.loads(out)["model_problem"] is None, err
    code, _, err = in_process(capsys, "champion", "rollback", "--root", str(copy), "--to", "k1")
    assert code == 0 and champion_folder_run(str(copy)) == "k1", err
    # A record written before paths were relative: absolute, read as it is.
    record = json.loads(storage.read_bytes(layout.champion_record(str(copy))))
    record["model_uri"] = layout.model_dir(str(copy), "k1")
    storage.write_bytes(layout.champion_record(str(copy)), json.dumps(record).encode())
    assert read_champion(str(copy))[0].model_in(str(copy)) == layout.model_dir(str(copy), "k1")
    assert not promote_at(str(copy), tmp_path, "k3", 0.5).promoted  # evaluates against it, no error


def test_submit_and_schedule_refuse_what_start_run_would_before_sending(gcs, kfp, tmp_path, capsys):
    """Where this machine can read the root: a run name already promoted, a damaged record."""
    root = f"gs://{BUCKET}/team"
    promote_at(root, tmp_path, "k1", 0.8)
    submit = ["submit", "--endpoint", kfp.url, "--param", f"root={root}"]
    code, _, err = in_process(capsys, *submit, "--run-name", "k1")
    assert code == 2 and "run_name: run k1 was promoted before" in err, err
    storage.write_bytes(layout.champion_record(root), b"{not json")
    for command in (
        submit,
        ["schedule", "create", "--name", "nightly", "--cron", "0 0 3 * * *", *submit[1:]],
    ):
        code, _, err = in_process(capsys, *command)
        assert code == 2 and "champion.json is not a valid champion record" in err, err
    assert kfp.bodies("POST", "/runs") == [] and kfp.bodies("POST", "/recurringruns") == []

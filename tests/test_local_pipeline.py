"""End to end: `trainboard local` runs the whole pipeline through kfp.local, streams TensorBoard logs
to the root while training, and a real TensorBoard over the root serves the run's curves. What a person
sees of it on a terminal: a few lines, a failed step's own error, Ctrl-C and the resume it suggests."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import pty
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.support.cli import BIN, last_json_line, trainboard
from tests.support.events import scalars
from tests.support.gcs import BUCKET, free_port, wait_for_http
from tests.support.images import make_image_folder
from tests.support.readme_sample import stale_sample
from trainboard import storage
from trainboard.components.promote.trend import ACCURACY, RUNS, THROUGHPUT, TREND
from trainboard.config import TrainingConfig

pytestmark = pytest.mark.slow
EPOCHS = TrainingConfig().epochs  # the default local settings
CHANCE = 1 / 4  # the demo data has four balanced classes
STEPS = ("start-run", "fingerprint-source", "prepare-data", "train", "evaluate", "promote")
# A new shell after `make run`: the environment's scripts (.venv/bin) are not on PATH.
NEW_SHELL = {
    **os.environ,
    "PATH": os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if Path(p).resolve() != BIN.resolve()
    ),
}


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
    assert record["run"] == result["run"] and record["model_uri"] == f"models/{result['run']}"
    assert result["champion_model_uri"] == f"{result['root']}/models/champion", "the served model's place"
    assert Path(result["model_uri"], "model.keras").is_file(), "the run's own model, the train step's output"
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

    [line] = stdout.splitlines()
    result = json.loads(line)
    assert result["run"] == run
    # kfp.local cannot write to gs://: its artifacts and the run's log stay in the working directory.
    assert "Executing task" in (tmp_path / ".trainboard" / "logs" / f"{run}.log").read_text()
    assert result["logdir"] == run_dir
    assert result["metrics"]["test_accuracy"] > CHANCE + 0.4, result["metrics"]
    assert result["metrics"]["test_loss"] > 0
    assert storage.list_files(f"{root}/checkpoints/{run}"), "no checkpoint in the bucket"
    check_run_in_root_and_tensorboard(result, EPOCHS, tensorboard_factory)
    check_first_run_is_the_champion(result)


def test_local_root(tmp_path, tensorboard_factory):
    root = tmp_path / "root"
    result = trainboard(
        "local", "--no-serve", "--json", "--verbose", "--root", str(root), "--epochs", "3", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = result.stdout.splitlines()  # --json: the result alone on stdout, --verbose or not
    out = json.loads(line)
    # --verbose: kfp.local's and the tasks' own output on the terminal (stderr with --json), no log file.
    assert "Executing task \x1b[96m'train'" in result.stderr and "Epoch 3/3" in result.stderr
    assert not (root / "logs").exists()
    assert Path(out["card"]).is_file() and Path(out["report"]).is_file()
    assert out["reason"].startswith("first model: no champion yet")
    assert out["logdir"] == str(root / "tensorboard" / out["run"])
    assert Path(out["model_uri"]).joinpath("model.keras").is_file()
    checkpoints = sorted(p.name for p in (root / "checkpoints" / out["run"]).iterdir())
    assert checkpoints == ["epoch-0003.keras", "outcome.json", "state.json"], "the last epoch's and the end"
    check_run_in_root_and_tensorboard(out, 3, tensorboard_factory)
    check_first_run_is_the_champion(out)
    # The trend's first point: this run's test accuracy and its measured throughput; the report compares
    # with no champion (the component hands promote the trained model's folder).
    [trend] = (root / "tensorboard" / TREND / RUNS).iterdir()
    [(step, accuracy)] = scalars(trend.read_bytes(), ACCURACY)
    assert (step, accuracy) == (1, pytest.approx(out["metrics"]["test_accuracy"], abs=1e-6))
    [(step, images_per_second)] = scalars(trend.read_bytes(), THROUGHPUT)
    assert step == 1 and images_per_second > 0
    assert "No champion before this run" in Path(out["report"]).read_text()


def test_a_reused_run_name_never_reports_another_runs_model(tmp_path):
    """`--run-name nightly` twice, the second on other data: refused before any work (it would resume the
    first run's model and report it as the second's); `--restart` trains it afresh. (Never promoted:
    a promoted run's name is final, tests/test_run_identity.py.)"""
    root = tmp_path / "root"
    common = ["local", "--no-serve", "--json", "--root", str(root), "--run-name", "nightly", "--epochs", "1"]
    common += ["--min-accuracy", "1"]
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


class Terminal:
    """`trainboard ARGS` with stderr on a pseudo-terminal, as a person runs it, in its own process group
    (a shell's job: Ctrl-C reaches the command and every task it started)."""

    def __init__(self, *args: str, cwd: Path, env: dict | None = None):
        controller, terminal = pty.openpty()
        self.process = subprocess.Popen(
            [str(BIN / "trainboard"), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
            start_new_session=True,
        )
        os.close(terminal)
        self.controller, self.raw = controller, b""

    def read_until(self, pattern: str, timeout: float = 300) -> None:
        """Read the terminal until ``pattern`` (a regular expression) is on it."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text()):
            assert time.monotonic() < deadline, f"{pattern!r} did not appear:\n{self.text()[-3000:]}"
            try:
                chunk = os.read(self.controller, 65536)
            except OSError:  # EIO: the command closed the terminal (it exited)
                chunk = b""
            assert chunk, f"the command ended before {pattern!r}:\n{self.text()[-3000:]}"
            self.raw += chunk

    def ctrl_c(self) -> int:
        """What the terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.wait()

    def wait(self) -> int:
        """The command's exit code, once it ended by itself (a signal sent to it alone), its output read."""
        code = self.process.wait(120)
        with contextlib.suppress(OSError):
            while chunk := os.read(self.controller, 65536):
                self.raw += chunk
        os.close(self.controller)
        return code

    def text(self) -> str:
        return self.raw.decode().replace("\r\n", "\n")  # the terminal's own line ends

    def lines(self) -> list[str]:
        """The lines as they stay on the screen: what an in-place update overwrote is gone."""
        return [line.rpartition("\r\x1b[K")[2] for line in self.text().rstrip("\n").split("\n")]


def check_what_the_summary_names(lines: list[str], root: Path, run: str) -> None:
    """The card and the report as .md files a terminal shows (their images beside them), the run's model,
    the champion's; the watch command as it runs from a new shell (this environment not on PATH there)."""
    paths = {
        x.split(": ")[1]: x.split(": ", 2)[2].strip().split(" (")[0] for x in lines if x.count(": ") >= 2
    }
    card, report = Path(paths["dataset card"]), Path(paths["promotion report"])
    assert (card, report) == (
        root / "reports" / run / "dataset-card.md",
        card.with_name("promotion-report.md"),
    )
    assert card.read_text().startswith("#") and "**promoted**" in report.read_text()
    for page in (card, report):
        assert max(map(len, page.read_text().splitlines())) < 1000, page
    assert (
        card.with_name("dataset-card-1.jpg").is_file()
        and report.with_name("promotion-report-1.png").is_file()
    )
    assert (Path(paths["model"]) / "model.keras").is_file()
    assert paths["champion's model"] == str(root / "models" / "champion")
    assert paths["watch it live"] == f"{BIN / 'trainboard'} tensorboard --logdir {root / 'tensorboard'}"
    assert paths["serve the champion"] == f"{BIN / 'trainboard'} serve --root {root}"
    helped = subprocess.run(
        ["bash", "-c", paths["watch it live"] + " --help"], capture_output=True, text=True, env=NEW_SHELL
    )
    assert helped.returncode == 0 and helped.stdout.startswith("usage: trainboard tensorboard")


def test_a_first_run_on_a_terminal_is_a_screenful_and_says_where_everything_is(tmp_path):
    """`make run` as a newcomer sees it: the default settings, then TensorBoard, then Ctrl-C."""
    root = tmp_path / "trainboard-runs"
    port = free_port()
    terminal = Terminal("local", "--root", str(root), "--port", str(port), cwd=tmp_path, env=NEW_SHELL)
    terminal.read_until(r"IMAGES tab\n")
    wait_for_http(f"http://127.0.0.1:{port}/data/runs")
    assert terminal.ctrl_c() == 0, "Ctrl-C stops TensorBoard: the run itself is done"
    lines = terminal.lines()
    assert lines[-2].startswith("trainboard: this run only: "), "TensorBoard's own output is in the log"
    assert lines[-1].startswith("trainboard: the links open on the curves; the confusion matrix ")
    before_url = lines[: next(i for i, line in enumerate(lines) if "TensorBoard over" in line)]
    assert len(before_url) <= 40, "\n".join(lines)
    for step in STEPS:  # one line as it starts, with the time of day, and one as it ends, with how long
        assert (
            len([x for x in lines if re.fullmatch(rf"trainboard: {step}: started at \d\d:\d\d:\d\d", x)]) == 1
        )
        assert len([x for x in lines if re.fullmatch(rf"trainboard: {step}: done in \d+\.\d s.*", x)]) == 1
    epochs = [x for x in lines if x.startswith("trainboard: train: epoch ")]
    assert len(epochs) == EPOCHS, lines
    for epoch, line in enumerate(epochs, 1):
        metrics = r"loss \d\.\d{4}, accuracy \d\.\d{4}, val_accuracy \d\.\d{4} \(\d+\.\d s\)"
        assert re.fullmatch(f"trainboard: train: epoch {epoch}/{EPOCHS}: {metrics}", line), line
    # Data preparation's progress, updated in place on the terminal, ends in the step's line.
    assert re.search(r"\r\x1b\[Ktrainboard: prepare-data: \d+/\d+ images checked", terminal.text())
    assert any(
        re.fullmatch(r"trainboard: prepare-data: done in .* \((\d+)/\1 images checked\)", x) for x in lines
    )
    screen = "\n".join(lines)
    for noise in ("Traceback", " - INFO - ", "trainboard-event", "tensorflow", "executor_input", "Epoch 1/"):
        assert noise not in screen, noise
    assert "promoted, now the champion: first model" in screen
    assert not (stale := stale_sample(lines)), stale  # the README shows this screen, kind by kind
    # Everything kfp.local and the tasks printed is in the run's log file, named on the first line.
    run, log = re.fullmatch(r"trainboard: run (\S+): the logs of every step in (\S+)", lines[0]).groups()
    check_what_the_summary_names(lines, root, run)
    log = Path(log)
    assert log.parent == root / "logs"
    logged = log.read_text()
    for step in STEPS:
        assert f"Executing task \x1b[96m'{step}'" in logged, step
    assert f"Epoch {EPOCHS}/{EPOCHS}" in logged and '"kind": "epoch"' in logged
    # TensorFlow's INFO lines are not: the tasks inherit TF_CPP_MIN_LOG_LEVEL=2 from the command
    # (trainboard/app/cli/tensorflow_logs.py); cpu_feature_guard's list is one (oneDNN's notice ignores the
    # level on AVX-512 machines and is there or not by the CPU, so nothing is said of it).
    assert "cpu_feature_guard" not in logged
    assert f"TensorBoard {importlib.metadata.version('tensorboard')} at http://127.0.0.1:{port}/" in logged


def test_a_failed_step_shows_its_own_error_at_once(tmp_path):
    """A class whose every image is broken stops prepare_data: its own error, not kfp.local's wrapper,
    and no retry after a minute's backoff (the cluster's policy is not for a laptop). Cut after a sound
    header: only the step's decode finds it (the CLI refuses files that are no image by their header)."""
    make_image_folder(tmp_path / "images", {"": 8}, classes=["circle", "square"])
    (tmp_path / "images" / "dot").mkdir()
    whole = (tmp_path / "images" / "circle" / "0001.jpg").read_bytes()
    for i in range(4):
        (tmp_path / "images" / "dot" / f"{i}.jpg").write_bytes(whole[: len(whole) // 2])
    started = time.monotonic()
    result = trainboard(
        "local", "--no-serve", "--root", "root", "--dataset", f"folder:{tmp_path / 'images'}", cwd=tmp_path
    )
    assert time.monotonic() - started < 60, "a failed step is not retried locally"
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert re.fullmatch(r"trainboard: prepare-data: failed in \d+\.\d s.*", lines[-17]), lines
    assert lines[-2] == (
        "    trainboard.errors.UsageError: dataset: folder:"
        f"{tmp_path / 'images'}: class 'dot' has no usable training images; each must decode as .jpg, "
        ".jpeg, .png, .bmp, .gif and be at least 8x8 px"
    )
    log = tmp_path / "root" / "logs" / f"{lines[0].split()[2].rstrip(':')}.log"
    assert lines[-1] == (
        f"trainboard local: error: step prepare-data failed; its last lines are above, the whole log is {log}"
    )
    assert not [x for x in lines if x.startswith("Traceback")], "the CLI's own traceback"
    assert "Inner task failed" not in result.stderr and "RuntimeError" not in result.stderr
    assert log.read_text().count("Executing task \x1b[96m'prepare-data'") == 1, "one attempt"
    assert "trainboard: train:" not in result.stderr


def test_ctrl_c_stops_every_task_and_the_run_resumes_as_it_says(tmp_path):
    root, run = tmp_path / "root", "20260101-000000-ctrlc"
    args = ("local", "--no-serve", "--root", str(root), "--run-name", run)
    terminal = Terminal(*args, cwd=tmp_path)
    terminal.read_until(f"train: epoch 2/{EPOCHS}: ")
    assert terminal.ctrl_c() == 130
    lines = terminal.lines()
    assert lines[-1] == (
        f"trainboard local: interrupted; to resume run {run} from its last completed epoch, run the same "
        f"command with --run-name {run}"
    )
    assert "Traceback" not in terminal.text()
    with pytest.raises(ProcessLookupError):  # no task left running in the command's process group
        os.killpg(terminal.process.pid, 0)
    resumed = trainboard(*args, "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert last_json_line(resumed.stdout)["run"] == run
    # Every epoch shown was committed (its line comes after its checkpoint); one more may have been.
    shown = [int(e) for e in re.findall(r"train: epoch (\d+)/", terminal.text())]
    epochs = [int(e) for e in re.findall(r"train: epoch (\d+)/", resumed.stderr)]
    assert shown[-1] + 1 <= epochs[0] <= shown[-1] + 2, (shown, epochs)
    assert epochs == list(range(epochs[0], EPOCHS + 1)), epochs


def test_sigterm_stops_a_run_as_ctrl_c_does_and_gives_its_name_back(tmp_path):
    """`kill`, `timeout` and a container runtime send SIGTERM to the command alone (not to its group, as a
    terminal's Ctrl-C): its tasks stop too, the lease is given back, the resume hint and exit code 143."""
    root, run = tmp_path / "root", "20260101-000000-term"
    terminal = Terminal("local", "--no-serve", "--root", str(root), "--run-name", run, cwd=tmp_path)
    terminal.read_until(f"train: epoch 1/{EPOCHS}: ")
    below = psutil.Process(terminal.process.pid).children(recursive=True)
    assert below, "the train task runs"
    terminal.process.send_signal(signal.SIGTERM)
    assert terminal.wait() == 143
    assert terminal.lines()[-1] == (
        f"trainboard local: stopped (SIGTERM); to resume run {run} from its last completed epoch, run the "
        f"same command with --run-name {run}"
    )
    assert "Traceback" not in terminal.text()
    assert not [p for p in below if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], "no task left"
    assert not (root / "leases" / f"{run}.json").exists(), "the name is free again"


def test_a_sigkilled_run_leaves_no_process_and_its_name_says_when_it_frees(tmp_path):
    """SIGKILL runs no code in the command: its train task and both workers end by themselves within
    seconds (trainboard.stopping, PR_SET_PDEATHSIG), nothing renews the lease, and the name is refused
    naming the lease file and its expiry."""
    root, run = tmp_path / "root", "20260101-000000-kill"
    args = ("local", "--no-serve", "--root", str(root), "--run-name", run, "--workers", "2")
    terminal = Terminal(*args, cwd=tmp_path)
    terminal.read_until("train: 2 workers, ")
    deadline = time.monotonic() + 120
    command = psutil.Process(terminal.process.pid)
    while (
        len(
            workers := [
                p for p in command.children(recursive=True) if "train.worker" in " ".join(p.cmdline())
            ]
        )
        < 2
    ):
        assert time.monotonic() < deadline, "the two workers did not start"
        time.sleep(0.2)
    below = command.children(recursive=True)
    lease = root / "leases" / f"{run}.json"
    terminal.process.kill()
    assert terminal.wait() == -signal.SIGKILL
    _, alive = psutil.wait_procs(below, timeout=10)
    assert not alive, [p.cmdline()[:4] for p in alive]
    assert all(not w.is_running() for w in workers)
    held = lease.read_text()
    time.sleep(2)
    assert lease.read_text() == held, "nobody renews it"
    refused = trainboard(*args, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    expires = json.loads(held)["expires"]
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires))
    assert f"run {run} is in use by " in refused.stderr and f"until {until} ({lease})" in refused.stderr
    assert "a run that was killed frees the name then" in refused.stderr

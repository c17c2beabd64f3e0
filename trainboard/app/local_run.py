"""Run the whole pipeline on this machine through kfp.local (one subprocess per task, no per-task venv).

kfp.local writes its own logs and every task's output (the executor's JSON, TensorFlow's banners, Keras's
epochs) to ``sys.stdout``, and its warnings to ``sys.stderr``. TaskOutput takes both: every line goes to
a sink (the run's log file, or the terminal with --verbose) and the task boundaries and the tasks' events
(trainboard.task_events) go to a callback, which `trainboard local` prints as one line each.

The dataset card and the promotion report are KFP Markdown artifacts, files without a suffix whose images
are inline (the KFP UI shows them so): a run ends by copying each to ``<root>/reports/<run>/`` as a .md
file, its images beside it, which a Markdown viewer opens and a terminal can show.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import os
import re
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO
from unittest import mock

from trainboard import invocation, layout, stopping, storage, task_events
from trainboard.app.cluster.settings import ENVIRONMENT
from trainboard.artifacts.champion import read_champion
from trainboard.components.notify.core import Failure, first_error_line, notify_run
from trainboard.config import DataConfig, PromotionRule, TrainingConfig
from trainboard.sweep import trials as sweep_trials

Event = dict[str, Any]
# How much of a failed task's output `trainboard local` shows: its error and the lines that led to it.
TAIL_LINES = 15


@dataclass
class LocalRunResult:
    run: str
    root: str
    logdir: str
    metrics: dict[str, float]
    model_uri: str  # the model this run judged (the chosen trial's with a sweep), promoted or not
    promoted: bool
    champion: str
    champion_model_uri: str  # the champion's model after this run (models/champion/), "" when none
    reason: str  # why the model was promoted or not
    card: str  # the dataset card, a .md file (reports/<run>/)
    report: str  # the promotion report, a .md file (reports/<run>/)
    chosen: str = ""  # the trial evaluate and promote judged: the run itself without a sweep
    trials: tuple[str, ...] = ()  # the sweep's trials' runs (empty without a sweep)
    tournament: str = ""  # the table of trials, a .md file (reports/<run>/), "" without a sweep

    def as_json(self) -> dict:
        return {
            "run": self.run,
            "root": self.root,
            "logdir": self.logdir,
            "tensorboard_logdir": layout.tensorboard_root(self.root),
            "metrics": self.metrics,
            "model_uri": self.model_uri,
            "promoted": self.promoted,
            "champion": self.champion,
            "champion_model_uri": self.champion_model_uri,
            "reason": self.reason,
            "card": self.card,
            "report": self.report,
            "chosen": self.chosen,
            "trials": list(self.trials),
            "tournament": self.tournament,
        }


class TaskFailed(RuntimeError):
    """A task of the local run failed; ``tail``: the last lines of its own output."""

    def __init__(self, task: str, tail: list[str]):
        super().__init__(f"step {task} failed")
        self.task, self.tail = task, tail


def local_dir(root: str) -> Path:
    """Where this machine keeps kfp.local's artifacts and the run logs: the root when it is local, else
    .trainboard/ in the working directory (kfp.local cannot write artifacts to gs://)."""
    return Path.cwd() / ".trainboard" if storage.is_gcs(root) else Path(root)


def reports_dir(root: str, run: str) -> Path:
    """Where a local run's dataset card and promotion report are, as .md files."""
    return local_dir(root) / layout.REPORTS / run


def default_pipeline_root(root: str) -> str:
    return str(local_dir(root) / layout.PIPELINE_ROOT)


def log_path(root: str, run: str) -> Path:
    """The log file of a run: kfp.local's and every task's output. A resumed run appends to it."""
    return local_dir(root) / layout.LOGS / f"{run}.log"


# kfp.local's own log lines around each task (kfp/local/task_dispatcher.py), colours removed.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r" - INFO - Executing task '([^']+)'$")
_FINISHED = re.compile(r" - (?:INFO|ERROR) - Task '([^']+)' finished with status (\w+)$")
_TASK_INDENT = "    "  # kfp.local indents each line a task prints


class TaskOutput(io.TextIOBase):
    """A text stream for kfp.local's output: each line to ``sink``, and to ``on_event`` each task's start
    (``{"kind": "task_started", "task": NAME}``), end (``task_finished``, with ``ok``) and the events it
    emits (with ``task`` added). Remembers the last lines of the running task, for its failure."""

    def __init__(self, sink: TextIO, on_event: Callable[[Event], None]):
        super().__init__()
        self.sink, self.on_event = sink, on_event
        self.task = ""
        self.failed: TaskFailed | None = None
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.sink.write(text)
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self.sink.flush()

    def _line(self, line: str) -> None:
        plain = _ANSI.sub("", line).rstrip()
        if started := _STARTED.search(plain):
            self.task = started[1]
            self._tail.clear()
            self.on_event({"kind": "task_started", "task": self.task})
        elif finished := _FINISHED.search(plain):
            ok = finished[2] == "SUCCESS"
            if not ok:
                self.failed = TaskFailed(finished[1], list(self._tail))
            self.on_event({"kind": "task_finished", "task": finished[1], "ok": ok})
            self.task = ""
        elif (event := task_events.parse(plain)) is not None:
            self.on_event({**event, "task": self.task})
        elif self.task and plain.strip():
            self._tail.append(plain.removeprefix(_TASK_INDENT))


def _for_this_machine(pipeline: Any, parallelism: int) -> Any:
    """A copy of the pipeline whose tasks stop at their first failure, and whose trials train
    ``parallelism`` at once. Its retry policy (2 retries, 60 s backoff doubling) is for a cluster's
    preempted nodes; kfp.local honours it (kfp/local/orchestrator/task_executor.py), so a task failing on
    a laptop would otherwise fail three times over three minutes. The trials' ParallelFor limit is the
    compiled one (a GPU each on a cluster); kfp.local runs that many at once (kfp/local/orchestrator/
    enhanced_dag_orchestrator.py, iterator_policy.parallelism_limit)."""
    local = copy.deepcopy(pipeline)
    spec = local.pipeline_spec
    for dag in [spec.root.dag, *(c.dag for c in spec.components.values() if c.HasField("dag"))]:
        for task in dag.tasks.values():
            task.ClearField("retry_policy")
            if task.HasField("parameter_iterator"):
                task.iterator_policy.parallelism_limit = parallelism
    return local


def _wait_for_tasks(timeout: float = 30.0) -> None:
    """After Ctrl-C: give the running task, which the terminal interrupted too (its whole process group;
    on SIGTERM, trainboard.stopping), time to end its own way (train sends its last logs to the root), so
    that a resume does not start beside it. A second Ctrl-C stops waiting."""
    deadline = time.monotonic() + timeout
    with contextlib.suppress(ChildProcessError, KeyboardInterrupt):
        while time.monotonic() < deadline:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):  # a child still runs
                time.sleep(0.1)


def _tell_the_team(root: str, run: str, output: TaskOutput, failure: Failure | None = None) -> None:
    """What the cluster's exit task does (pipelines/training_pipeline.py, cluster_pipeline), done here
    when the run ends: kfp.local cannot give outputs of a pipeline run inside an ExitHandler, and here the
    failed step and its error are known (kfp.local's output). The webhook from the environment."""
    tensorboard_url = os.environ.get(ENVIRONMENT["tensorboard_url"], "")
    output.write(f"trainboard: notification: {notify_run(root, run, '', tensorboard_url, failure=failure)}\n")


def run_local(
    root: str,
    run: str,
    *,
    data: DataConfig,
    config: TrainingConfig,
    rule: PromotionRule,
    output: TaskOutput,
    pipeline_root: str | None = None,
    parallelism: int = 1,
) -> LocalRunResult:
    """Run the pipeline with kfp.local, its output into ``output``, a sweep's trials ``parallelism`` at
    once; inputs are assumed checked (trainboard.config). TaskFailed when a task fails."""
    from kfp import local

    from trainboard.pipelines.training_pipeline import training_pipeline

    # The component image is for the cluster; here the tasks run this installed package on purpose.
    warnings.filterwarnings("ignore", message=".*non-Python base image", category=RuntimeWarning)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=pipeline_root or default_pipeline_root(root),
    )
    pipeline = _for_this_machine(training_pipeline, parallelism)
    # The tasks suggest commands too (a resume, a rollback): as this program was started, not as kfp.local's.
    # And each task ends with this command, even one killed outright (trainboard.stopping).
    named = mock.patch.dict(
        os.environ, {invocation.ENV: invocation.program(), stopping.COMMAND_ENV: stopping.this_command()}
    )
    with named, contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            # No accelerator asked for: this machine's TensorFlow uses a GPU it has without one.
            task = pipeline(
                root=root,
                run_name=run,
                accelerator_count="0",
                **asdict(data),
                **asdict(config),
                **asdict(rule),
            )
        except RuntimeError as e:
            # kfp.local's wrapper error says only which task; the task's own error is in its output.
            failed = output.failed
            failure = Failure(failed.task, first_error_line(failed.tail)) if failed else Failure(error=str(e))
            _tell_the_team(root, run, output, failure)
            if failed:
                raise failed from None
            raise
        except KeyboardInterrupt:
            _wait_for_tasks()
            raise
        _tell_the_team(root, run, output)
    return _result(task, root, run, config.sweep)


def _result(task: Any, root: str, run: str, sweep: str) -> LocalRunResult:
    """What the finished pipeline run left: its outputs, the records' champion, the reports' copies."""
    metrics = task.outputs["metrics"].metadata
    # What the records say after the decision, not what was meant: promote's "promoted" is read back from
    # them (components/promote/core.py, _as_recorded); the champion is the record's now.
    record, _ = read_champion(root)
    reports = reports_dir(root, run)
    trials, table = _tournament(task, run, sweep, reports)
    return LocalRunResult(
        run=task.outputs["run"],
        root=root,
        logdir=layout.tensorboard_dir(root, run),
        metrics={k: float(metrics[k]) for k in ("test_accuracy", "test_loss")},
        model_uri=task.outputs["model"].path,
        promoted=task.outputs["promoted"],
        champion=record.run if record else "",
        champion_model_uri=layout.champion_model_dir(root) if record else "",
        reason=task.outputs["reason"],
        card=readable_copy(task.outputs["card"].path, reports / layout.DATASET_CARD),
        report=readable_copy(task.outputs["report"].path, reports / layout.PROMOTION_REPORT),
        chosen=task.outputs["chosen"],
        trials=trials,
        tournament=table,
    )


def _tournament(task: Any, run: str, sweep: str, reports: Path) -> tuple[tuple[str, ...], str]:
    """A sweep's trials' runs and its table of trials as a .md file; none without a sweep."""
    if not sweep:
        return (), ""
    trials = tuple(trial.run for trial in sweep_trials(run, sweep))
    return trials, readable_copy(task.outputs["tournament"].path, reports / layout.TOURNAMENT_REPORT)


# An inline image of trainboard.markdown.image: ](data:image/png;base64,...)
_INLINE_IMAGE = re.compile(r"\]\(data:image/(\w+);base64,([A-Za-z0-9+/=]+)\)")


def readable_copy(artifact: str, copy_to: Path) -> str:
    """The Markdown artifact ``artifact`` written to ``copy_to`` (a .md file), each inline image written
    beside it and linked by its name: the same page in a Markdown viewer, and short lines in a terminal
    (the card's sample grid alone is a 45 KB line). Returns the copy's path."""
    copy_to.parent.mkdir(parents=True, exist_ok=True)
    images = 0

    def beside(match: re.Match[str]) -> str:
        nonlocal images
        images += 1
        name = f"{copy_to.stem}-{images}.{'jpg' if match[1] == 'jpeg' else match[1]}"
        (copy_to.parent / name).write_bytes(base64.b64decode(match[2]))
        return f"]({name})"

    text = Path(artifact).read_text(encoding="utf-8")
    copy_to.write_text(_INLINE_IMAGE.sub(beside, text), encoding="utf-8")
    return str(copy_to)

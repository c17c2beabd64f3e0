"""start_run writes the run card, the KFP UI's link to the run's live curves, before training starts."""

from __future__ import annotations

import re
import urllib.parse
import warnings
from dataclasses import fields
from pathlib import Path

import pytest
from kfp import local

from tests.support.gcs import BUCKET
from trainboard.components.start_run.component import start_run
from trainboard.components.start_run.core import JOB_ID_PLACEHOLDER, run_card
from trainboard.components.start_run.core import start_run as start
from trainboard.config import CONFIGS, cluster_default
from trainboard.errors import UsageError
from trainboard.links import tensorboard_run_url

TENSORBOARD = "https://tensorboard.example.com/"
PIPELINE_DEFAULTS = {f.name: cluster_default(f.name) for config in CONFIGS for f in fields(config)}


def test_start_run_task_writes_the_card_with_a_link_filtered_to_the_run(tmp_path, gcs):

    warnings.filterwarnings("ignore", message=".*non-Python base image", category=RuntimeWarning)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "pipeline-root"))
    task = start_run(
        root=f"gs://{BUCKET}/tb",  # start_run reads the champion records there
        run_name="",
        job_id="1f2e-3d4c",
        tensorboard_url=TENSORBOARD,
        accelerator_count="1",
        **PIPELINE_DEFAULTS,
    )
    run = task.outputs["Output"]
    assert run.endswith("-1f2e3d4c")  # unique per execution: the job id
    card = Path(task.outputs["card"].path).read_text()
    link = (
        f"https://tensorboard.example.com/?runFilter=%5E{run}%28%2F%7C%24%29"
        "&tagFilter=%5E%28epoch_%7Crace%2F%7Ctrend%2F%29#timeseries"  # the curves first: links.CURVES
    )
    assert f"**[Open this run in TensorBoard]({link})**" in card
    assert f"`gs://{BUCKET}/tb/tensorboard/{run}/`" in card


def test_the_card_opens_the_run_beside_the_champion_first():
    card = run_card("late", "gs://team-bucket/tb", TENSORBOARD, champion="champ")
    beside = tensorboard_run_url(TENSORBOARD, "late", "champ")
    assert card.index(f"beside the champion `champ`]({beside})") < card.index("Open this run in TensorBoard")
    assert "beside" not in run_card("champ", "gs://team-bucket/tb", TENSORBOARD, champion="champ")


def test_card_without_a_team_tensorboard_says_how_to_watch():
    card = run_card("r1", "gs://team-bucket/tb", "")
    assert "Open this run" not in card
    assert "trainboard tensorboard --logdir gs://team-bucket/tb/tensorboard" in card


@pytest.mark.parametrize(
    ("runs", "matches", "misses"),
    [
        (["r1"], ["r1/train", "r1/validation", "r1/evaluation", "r1"], ["r10/train", "r10", "xr1/train"]),
        (["a.b"], ["a.b/validation", "a.b"], ["aXb/train", "aXb"]),
        (["late", "champ"], ["late/validation", "champ/validation", "champ"], ["latex", "champion/train"]),
    ],
)
def test_run_filter_selects_exactly_the_runs(runs, matches, misses):
    """The filter is a regular expression over TensorBoard run names: all of the runs' (<run>/train,
    <run>/validation, <run>/evaluation and <run> itself, with its hyperparameters and sample images), no
    other's: one run, or this run beside the champion's."""
    query = urllib.parse.urlsplit(tensorboard_run_url(TENSORBOARD, *runs)).query
    [run_filter] = urllib.parse.parse_qs(query)["runFilter"]
    assert all(re.search(run_filter, name) for name in matches)
    assert not any(re.search(run_filter, name) for name in misses)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"seed": -1}, "seed"),
        ({"profile_batches": "20,10"}, "profile_batches"),
        ({"validation_fraction": 0.6, "test_fraction": 0.5}, "test_fraction"),
        ({"accelerator_count": "one"}, "accelerator_count"),
        ({"tensorboard_url": "tensorboard.example.com"}, "tensorboard_url"),
        ({"freeze_epochs": 11}, "freeze_epochs"),
    ],
)
def test_the_first_task_checks_every_parameter(change, field):
    """A bad value fails the first task (never retried), before any other starts."""
    values = {**PIPELINE_DEFAULTS, "accelerator_count": "1", "tensorboard_url": "", **change}
    with pytest.raises(UsageError) as error:
        start("gs://team-bucket/tb", "", "1f2e-3d4c", values)
    assert error.value.field == field


def test_an_unresolved_job_id_names_the_backend_release():
    values = {**PIPELINE_DEFAULTS, "accelerator_count": "1", "tensorboard_url": ""}
    with pytest.raises(UsageError, match=r"older than Kubeflow Pipelines 2\.5\.0"):
        start("gs://team-bucket/tb", "", JOB_ID_PLACEHOLDER, values)

"""start_run writes the run card, the KFP UI's link to the run's live curves, before training starts."""

from __future__ import annotations

import re
import urllib.parse
import warnings
from pathlib import Path

import pytest
from kfp import local

from components.start_run.component import start_run
from components.start_run.core import run_card
from trainboard.links import tensorboard_run_url

TENSORBOARD = "https://tensorboard.example.com/"


def test_start_run_task_writes_the_card_with_a_link_filtered_to_the_run(tmp_path):

    warnings.filterwarnings("ignore", message=".*non-Python base image", category=RuntimeWarning)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "pipeline-root"))
    task = start_run(root="gs://team-bucket/tb", run_name="", job_id="1f2e-3d4c", tensorboard_url=TENSORBOARD)
    run = task.outputs["Output"]
    assert run.endswith("-1f2e3d4c")  # unique per execution: the job id
    card = Path(task.outputs["card"].path).read_text()
    link = f"https://tensorboard.example.com/?runFilter=%5E{run}%28%2F%7C%24%29#timeseries"
    assert f"**[Open this run in TensorBoard]({link})**" in card
    assert f"`gs://team-bucket/tb/tensorboard/{run}/`" in card


def test_card_without_a_team_tensorboard_says_how_to_watch():
    card = run_card("r1", "gs://team-bucket/tb", "")
    assert "Open this run" not in card
    assert "trainboard tensorboard --logdir gs://team-bucket/tb/tensorboard" in card


@pytest.mark.parametrize(
    ("run", "matches", "misses"),
    [
        ("r1", ["r1/train", "r1/validation", "r1/evaluation", "r1"], ["r10/train", "r10", "xr1/train"]),
        ("a.b", ["a.b/validation", "a.b"], ["aXb/train", "aXb"]),
    ],
)
def test_run_filter_selects_exactly_the_run(run, matches, misses):
    """The filter is a regular expression over TensorBoard run names: all of the run's (<run>/train,
    <run>/validation, <run>/evaluation and <run> itself, with its hyperparameters and sample images), no
    other's."""
    query = urllib.parse.urlsplit(tensorboard_run_url(TENSORBOARD, run)).query
    [run_filter] = urllib.parse.parse_qs(query)["runFilter"]
    assert all(re.search(run_filter, name) for name in matches)
    assert not any(re.search(run_filter, name) for name in misses)

"""start_run: fix the run's name before anything is written, so every step files under it, and write the
run card: the link from the KFP UI to the run's live curves, there before training starts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainboard import layout, storage
from trainboard.artifacts.champion import check_records, read_champion
from trainboard.artifacts.lease import holder_for, take
from trainboard.artifacts.outcome import outcome_uri
from trainboard.artifacts.training_state import check_resume
from trainboard.checks import check_run_name
from trainboard.component_image import IMAGE
from trainboard.config import DataConfig, TrainingConfig, field_values
from trainboard.config_checks import check_pipeline_parameters
from trainboard.errors import UsageError
from trainboard.job_runs import record_job
from trainboard.links import tensorboard_run_url
from trainboard.mlflow_log import TENSORBOARD_TAG, MlflowLog, tag_run
from trainboard.roots import check_root
from trainboard.serving_rollout import NAME as SERVICE
from trainboard.serving_rollout import export_uri
from trainboard.sweep import trials

# What a backend older than 2.5.0 passes on unresolved (kubeflow/pipelines #11599 added the placeholder).
JOB_ID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"


def start_run(root: str, run_name: str, job_id: str, parameters: Mapping[str, Any]) -> str:
    """Check every pipeline parameter (``parameters``, by name) first, so a bad value fails here in
    seconds, not in a later task after its retries; then the run's name: ``run_name`` if given, else a
    time-sortable name made unique by the pipeline job id."""
    check_pipeline_parameters(parameters)
    check_root(root)
    if job_id == JOB_ID_PLACEHOLDER:
        raise UsageError(
            "job_id",
            f"the backend passed {JOB_ID_PLACEHOLDER} unresolved: it is older than Kubeflow Pipelines 2.5.0",
        )
    run = run_name or layout.new_run_name(job_id.replace("-", ""))
    check_run_name(run)
    trials(run, parameters["sweep"])  # each trial's run name too (<run>-t<N>)
    if not run_name:  # the exit task's notification finds a generated name here (trainboard/job_runs.py)
        record_job(root, job_id, run)
    check_records(root, run)  # a damaged record stops the run now, not after training
    take(root, run, holder_for(job_id))  # the run's name is this KFP run's (or its command's) until it ends
    # This execution's outcome is promote's to write: an earlier execution's (a name run again) would pass
    # for it in the notification at the end.
    storage.delete(outcome_uri(root, run))
    # A resume with other settings, refused before data preparation (its checkpoint is looked at by
    # `trainboard local` and by train: read whole from gs:// it could outgrow this small pod).
    config = TrainingConfig(**field_values(TrainingConfig, parameters))
    data = DataConfig(**field_values(DataConfig, parameters))
    check_resume(root, run, config, data, image=IMAGE, checkpoint=False)  # the fingerprints: train's
    return run


def run_card(run: str, root: str, tensorboard_url: str, champion: str = "", *, sweep: str = "") -> str:
    """The Markdown the KFP UI shows for the run: where its curves are (its sweep's trials', when it has
    one), live while it trains, beside the ``champion``'s run first (the race: who is ahead, epoch by
    epoch), then alone."""
    runs = [trial.run for trial in trials(run, sweep)]
    each = "-t<N>" if sweep else ""  # a sweep's trials are runs <run>-t1, <run>-t2, ...
    if tensorboard_url:
        beside = ""
        if champion and champion != run:
            link = tensorboard_run_url(tensorboard_url, *runs, champion)
            beside = f"**[Open this run beside the champion `{champion}`]({link})**\n\n"
        watch = (
            f"{beside}**[Open this run in TensorBoard]({tensorboard_run_url(tensorboard_url, *runs)})**: "
            "its curves appear there epoch by epoch while training runs.\n\n"
            f"All the team's runs: [{tensorboard_url}]({tensorboard_url})"
        )
    else:
        watch = (
            "No team TensorBoard was given (pipeline parameter `tensorboard_url`). Watch this run with\n\n"
            f"    trainboard tensorboard --logdir {layout.tensorboard_root(root)}"
        )
    return (
        f"# trainboard run `{run}`\n\n{watch}\n\n"
        f"| what | where |\n|---|---|\n"
        f"| TensorBoard logs | `{layout.tensorboard_dir(root, run)}{each}/` |\n"
        f"| checkpoints | `{layout.checkpoint_dir(root, run)}{each}/` |\n"
        f"| serving export, once promoted: InferenceService `{SERVICE}` (manifests/components/serving) "
        f"rolls to it | `{export_uri(layout.model_dir(root, run))}/` |\n"
    )


def write_run_card(path: str | Path, run: str, root: str, tensorboard_url: str, *, sweep: str = "") -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    record, _ = read_champion(root)  # start_run checked it (check_records)
    Path(path).write_text(run_card(run, root, tensorboard_url, record.run if record else "", sweep=sweep))
    if tensorboard_url:  # the same deep link on the MLflow run, where there is one
        tag_run(MlflowLog.from_environment(run), {TENSORBOARD_TAG: tensorboard_run_url(tensorboard_url, run)})

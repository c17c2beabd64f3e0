"""Where things live under the storage root, and how runs are named.

    <root>/tensorboard/<run>/train/        Keras event files, streamed while training
    <root>/tensorboard/<run>/validation/
    <root>/tensorboard/<run>/evaluation/   test-split results
    <root>/tensorboard/_trend/             a point per run: test accuracy, loss, images/s; the champion's
    <root>/trend.json                      the trend's steps: the runs in the order they reached promote
    <root>/checkpoints/<run>/              per-epoch checkpoints
    <root>/models/<run>/                   the model of every run that was promoted (kept for rollbacks),
                                           written once, never replaced
    <root>/models/champion/                a copy of the current champion's model: what serving loads
    <root>/champion.json                   the champion record: run, model path (relative), metrics, time
    <root>/champion-history/               every champion record ever written, one file each, append-only
    <root>/weights/                        ImageNet backbone weights, fetched once (trainboard weights fetch)
    <root>/leases/<run>.json               who runs <run> now, until when (artifacts/lease.py)
    <root>/jobs/<job id>.json              the run a KFP job named, until its exit task reads it (job_runs.py)
    <root>/logs/<run>.log                  a local run's output (trainboard local; in .trainboard/ for gs://)
    <root>/pipeline-root/                  kfp.local's artifacts (trainboard local; in .trainboard/ for gs://)
    <root>/reports/<run>/                  a local run's dataset card and promotion report as .md files, their
                                           images beside them (trainboard local; in .trainboard/ for gs://)

One TensorBoard over ``<root>/tensorboard`` shows every run side by side.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from trainboard import storage


def new_run_name(unique: str = "") -> str:
    """``YYYYMMDD-HHMMSS-xxxxxx`` in UTC: unique per execution, and runs sort by start time."""
    suffix = (unique or secrets.token_hex(3))[:8].lower()
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{suffix}"


TENSORBOARD = "tensorboard"  # the folder one TensorBoard reads: a run each
EVALUATION = "evaluation"  # a run's TensorBoard folder of test-split results, written by evaluate
CHECKPOINTS = "checkpoints"
MODELS = "models"
CHAMPION_RECORD = "champion.json"
CHAMPION_HISTORY = "champion-history"
WEIGHTS = "weights"
LEASES = "leases"
LEASE_SUFFIX = ".json"
JOBS = "jobs"
LOGS = "logs"
PIPELINE_ROOT = "pipeline-root"
REPORTS = "reports"
DATASET_CARD = "dataset-card.md"
PROMOTION_REPORT = "promotion-report.md"
TOURNAMENT_REPORT = "tournament.md"  # a sweep's table of trials


def tensorboard_root(root: str) -> str:
    return storage.join(root, TENSORBOARD)


def tensorboard_dir(root: str, run: str) -> str:
    return storage.join(root, TENSORBOARD, run)


def leases_dir(root: str) -> str:
    return storage.join(root, LEASES)


def lease_file(root: str, run: str) -> str:
    """``<root>/leases/<run>.json``, the lease on ``run``'s name (trainboard.artifacts.lease)."""
    return storage.join(root, LEASES, run + LEASE_SUFFIX)


def evaluation_dir(root: str, run: str) -> str:
    return storage.join(root, TENSORBOARD, run, EVALUATION)


def checkpoints_root(root: str) -> str:
    return storage.join(root, CHECKPOINTS)


def checkpoint_dir(root: str, run: str) -> str:
    return storage.join(root, CHECKPOINTS, run)


CHAMPION = "champion"  # the name of the champion's model folder, so no run may be called that


def model_path(run: str) -> str:
    """``models/<run>``, relative to the root: what the champion record stores, so that a root copied or
    moved (another bucket, a restored backup) still finds its models."""
    return f"{MODELS}/{run}"


def models_root(root: str) -> str:
    return storage.join(root, MODELS)


def model_dir(root: str, run: str) -> str:
    return storage.join(root, model_path(run))


def champion_model_dir(root: str) -> str:
    return model_dir(root, CHAMPION)


def champion_record(root: str) -> str:
    return storage.join(root, CHAMPION_RECORD)


def champion_history_dir(root: str) -> str:
    return storage.join(root, CHAMPION_HISTORY)


def imagenet_weights(root: str, model: str, image_size: int) -> str:
    """The cached ImageNet weights of ``model``'s backbone; its SHA-256 is beside it (+ ".sha256")."""
    return storage.join(root, WEIGHTS, f"{model}-{image_size}-notop.weights.h5")

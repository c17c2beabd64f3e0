"""The trainboard pipeline: start_run, fingerprint_source -> prepare_data -> plan_trials -> train (GPU, a
task per trial of the sweep, dsl.ParallelFor) -> choose_trial (dsl.Collected) -> evaluate -> promote.

TensorFlow-free to import: compile, submit and schedule load this module on a laptop.

The signature is written out (KFP's UI shows it); the config parameters among it are declared in
trainboard/config.py, defaults from its CLUSTER_DEFAULTS, and tests/test_parameters.py fails on any drift.
Their descriptions, the docstring's Args, are made from its help texts (pipelines/parameter_docs.py), and they
reach the components by name (field_values), so a parameter is written once more here only where it is
the pipeline's own.
"""

import inspect
from typing import Any, NamedTuple

from kfp import dsl, kubernetes
from kfp.dsl import Markdown, Metrics, Model

from trainboard import model_registry
from trainboard.components.choose_trial.component import choose_trial
from trainboard.components.evaluate.component import evaluate
from trainboard.components.fingerprint_source.component import fingerprint_source
from trainboard.components.notify.component import notify
from trainboard.components.notify.core import SECRET_DIR, SECRET_NAME
from trainboard.components.plan_trials.component import plan_trials
from trainboard.components.prepare_data.component import prepare_data
from trainboard.components.promote.component import promote
from trainboard.components.start_run.component import start_run
from trainboard.components.train.component import train
from trainboard.config import DataConfig, PromotionRule, TrainingConfig, field_values
from trainboard.config_checks import cluster_parallelism
from trainboard.pipelines.parameter_docs import args_from_config

PIPELINE_NAME = "trainboard"
# Transient failures (a preempted GPU node, a storage hiccup) should not cost the nightly run.
RETRIES = 2
RETRY_BACKOFF = {"backoff_duration": "60s", "backoff_factor": 2.0, "backoff_max_duration": "600s"}
# GKE and the NVIDIA GPU operator taint GPU nodes with nvidia.com/gpu:NoSchedule; without this toleration
# the train pod waits forever on such clusters. Harmless where GPU nodes are not tainted.
GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
# Trials of a sweep that train at once on a cluster (a GPU each), fixed when the pipeline is compiled
# (trainboard/sweep.py, PARALLELISM_ENV); `trainboard local --parallelism` sets its own (app/local_run.py).
SWEEP_PARALLELISM = cluster_parallelism()


def _settle(task: dsl.PipelineTask, name: str, cache: bool) -> None:
    """Name the task in the UI, set its caching and the retries every task that can fail for a transient
    reason gets."""
    task.set_display_name(name)
    task.set_caching_options(cache)
    task.set_retry(num_retries=RETRIES, **RETRY_BACKOFF)


class Outputs(NamedTuple):
    run: str
    model: Model  # the chosen trial's (the run's own without a sweep)
    chosen: str  # the chosen trial's run: the run itself without a sweep, <run>-t<N> with one
    tournament: Markdown  # the table of trials
    metrics: Metrics
    promoted: bool  # whether this run's model is now the champion
    champion: str  # the champion's run after this run ("" when there is none)
    reason: str  # why it was promoted or not
    card: Markdown  # the dataset card
    report: Markdown  # the promotion report


# The tasks, one helper each, called inside training_pipeline (a task joins the pipeline being built): each
# takes the pipeline's parameters (channels, by name) and the tasks whose outputs it reads.


def _start_run(parameters: dict[str, Any]) -> dsl.PipelineTask:
    """First, alone and never retried: it checks every parameter before any other task starts."""
    run = start_run(
        root=parameters["root"],
        run_name=parameters["run_name"],
        job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        tensorboard_url=parameters["tensorboard_url"],
        accelerator_count=parameters["accelerator_count"],
        **field_values(DataConfig, parameters),
        **field_values(TrainingConfig, parameters),
        **field_values(PromotionRule, parameters),
    )
    run.set_caching_options(False)  # a new name per execution, never a cached one
    run.set_display_name("start-run")
    return run


def _prepare_data(parameters: dict[str, Any], *, run: dsl.PipelineTask) -> dsl.PipelineTask:
    """The source's fingerprint, then the data prepared from it."""
    fingerprint = fingerprint_source(dataset=parameters["dataset"]).after(run)
    _settle(fingerprint, "fingerprint-source", cache=False)  # it must look at the data every time
    data = prepare_data(
        seed=parameters["seed"],
        source_fingerprint=fingerprint.output,
        **field_values(DataConfig, parameters),
    )
    # Safe to cache: the output is a function of the inputs (the source's fingerprint and the split
    # settings), which form the cache key.
    _settle(data, "prepare-data", cache=True)
    return data


def _train(parameters: dict[str, Any], *, data: dsl.PipelineTask, trial: Any) -> dsl.PipelineTask:
    """The train task of one ``trial`` (a ParallelFor item), on the accelerator and the nodes the
    parameters say."""
    trained = train(
        data=data.outputs["data"],
        root=parameters["root"],
        trial=trial,
        job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,  # the lease's holder: a retried task holds it already
        accelerator_type=parameters["accelerator_type"],
        accelerator_count=parameters["accelerator_count"],
        **field_values(TrainingConfig, parameters),
    )
    _settle(trained, "train", cache=False)  # it writes the run's logs and checkpoints to the root
    # Both from STRING parameters: the KFP driver (backend/src/v2/driver/resolve.go,
    # resolvePodSpecInputRuntimeParameter, 2.4.0 to 2.17.0) resolves a pod-spec runtime value with
    # GetStringValue(), so a count fed by an int parameter becomes "" and the GPU limit is silently dropped.
    # tests/test_compile.py holds the rule on the compiled YAML.
    trained.set_accelerator_type(parameters["accelerator_type"])
    trained.set_accelerator_limit(parameters["accelerator_count"])
    kubernetes.add_node_selector_json(trained, parameters["gpu_node_selector"])
    kubernetes.add_toleration_json(trained, parameters["gpu_tolerations"])
    return trained


def _tournament(
    parameters: dict[str, Any], *, data: dsl.PipelineTask, run: dsl.PipelineTask
) -> dsl.PipelineTask:
    """The night's trials trained (one without a sweep), each on its GPU, SWEEP_PARALLELISM at once, and
    the one chosen on validation (components/choose_trial): the task whose model and run the rest judge."""
    # After the data, though it does not read it: kfp.local (kfp 2.17.3, kfp/local/graph_utils.py,
    # topological_sort) runs ready tasks in its protobuf task map's order, which changes with the hash
    # seed; one chain keeps a run's steps in one order (tests/test_compile.py holds it).
    planned = plan_trials(run=run.outputs["Output"], sweep=parameters["sweep"]).after(data)
    _settle(planned, "plan-trials", cache=False)
    with dsl.ParallelFor(planned.output, parallelism=SWEEP_PARALLELISM, name="trials") as trial:
        trained = _train(parameters, data=data, trial=trial)
    chosen = choose_trial(
        trained_models=dsl.Collected(trained.outputs["trained_model"]),
        root=parameters["root"],
        run=run.outputs["Output"],
        sweep=parameters["sweep"],
    )
    _settle(chosen, "choose-trial", cache=False)
    return chosen


def _evaluate(
    parameters: dict[str, Any], *, data: dsl.PipelineTask, chosen: dsl.PipelineTask
) -> dsl.PipelineTask:
    """The chosen trial's model measured on the test split, and against the champion's."""
    evaluated = evaluate(
        data=data.outputs["data"],
        trained_model=chosen.outputs["chosen_model"],
        root=parameters["root"],
        run=chosen.outputs["Output"],
        job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        # A champion whose model is gone is not re-measured, but replaced.
        force_promote=parameters["force_promote"],
    )
    # A fresh model every run, so a cache hit is impossible; caching off says so plainly.
    _settle(evaluated, "evaluate", cache=False)
    return evaluated


def _promote(
    parameters: dict[str, Any],
    *,
    chosen: dsl.PipelineTask,
    evaluated: dsl.PipelineTask,
) -> dsl.PipelineTask:
    """The decision whether the chosen trial's model becomes the champion, and its promotion."""
    promoted = promote(
        trained_model=chosen.outputs["chosen_model"],
        evaluation=evaluated.outputs["evaluation"],
        root=parameters["root"],
        run=chosen.outputs["Output"],
        job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        tensorboard_url=parameters["tensorboard_url"],  # the Model Registry version's link
        **field_values(PromotionRule, parameters),
    )
    # The Model Registry's token, as the notification's webhook (an optional volume: without the Secret,
    # registration goes without a token, and a registry that wants one says so in the report).
    kubernetes.use_secret_as_volume(
        promoted, model_registry.SECRET_NAME, mount_path=model_registry.SECRET_DIR, optional=True
    )
    # No cache: it reads and writes the champion record. Safe to retry: an attempt that finds its own run
    # in the record takes the same decision again.
    _settle(promoted, "promote", cache=False)
    return promoted


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Train a Keras image classifier with live TensorBoard logs in <root>/tensorboard/<run>/.",
)
# The docstring's Args below are the pipeline's own parameters; each config parameter's entry is its help
# in trainboard/config.py, added by args_from_config (pipelines/parameter_docs.py).
@args_from_config
def training_pipeline(
    root: str,
    dataset: str = "tfds:caltech101",
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    tfds_data_dir: str = "",
    max_image_pixels: int = 40000000,
    model: str = "vgg16",
    epochs: int = 10,
    batch_size: int = 32,
    workers: int = 1,
    image_size: int = 224,
    learning_rate: float = 0.001,
    lr_schedule: str = "cosine",
    label_smoothing: float = 0.0,
    early_stopping_patience: int = 0,
    augment: bool = True,
    precision: str = "auto",
    weights: str = "imagenet",
    freeze_epochs: int = 3,
    fine_tune_layers: int = 0,
    fine_tune_learning_rate: float = 1e-05,
    seed: int = 0,
    sync_seconds: float = 10.0,
    batch_scalars_every: int = 0,
    histograms: bool = False,
    profile_batches: str = "",
    race_margin: float = 0.0,
    race_patience: int = 3,
    race_warmup: int = 2,
    sweep: str = "",
    run_name: str = "",
    accelerator_type: str = "nvidia.com/gpu",
    accelerator_count: str = "1",
    gpu_node_selector: dict = {},  # noqa: B006 (a pipeline parameter default, never mutated)
    gpu_tolerations: list = GPU_TOLERATIONS,
    tensorboard_url: str = "",
    min_accuracy: float = 0.0,
    min_improvement: float = 0.0,
    min_significance: float = 0.0,
    force_promote: bool = False,
    model_registry: str = "",
) -> Outputs:
    """Train a Keras image classifier; TensorBoard logs stream to <root>/tensorboard/<run>/ while it trains.

    Args:
        root: The team's storage root, gs://BUCKET/PREFIX; logs and checkpoints go under it.
        run_name: Name of the run under <root>; empty for a unique UTC-time name per execution.
        accelerator_type: Accelerator the train task requests: nvidia.com/gpu on Kubeflow Pipelines,
            a machine accelerator such as NVIDIA_L4 on Vertex AI.
        accelerator_count: How many accelerators the train task requests: a whole number, written as a
            string ("1"; "0" for none), because the KFP driver reads pod-spec values from string
            parameters only.
        gpu_node_selector: Node labels the train pod must match, e.g.
            {"cloud.google.com/gke-accelerator": "nvidia-l4"}; {} for any node with the accelerator.
        gpu_tolerations: Kubernetes tolerations of the train pod, for taints on GPU nodes.
        tensorboard_url: The team TensorBoard over <root>/tensorboard; the run card links to this run in it.
    """
    parameters = dict(locals())  # the config parameters go to the components by name
    run = _start_run(parameters)
    data = _prepare_data(parameters, run=run)
    chosen = _tournament(parameters, data=data, run=run)
    evaluated = _evaluate(parameters, data=data, chosen=chosen)
    promoted = _promote(parameters, chosen=chosen, evaluated=evaluated)
    # Steps for promoted models only (a deploy step) go under
    #     with dsl.If(promoted.outputs["promoted"] == True):
    return Outputs(
        run=run.outputs["Output"],
        model=chosen.outputs["chosen_model"],
        chosen=chosen.outputs["Output"],
        tournament=chosen.outputs["tournament"],
        metrics=evaluated.outputs["metrics"],
        promoted=promoted.outputs["promoted"],
        champion=promoted.outputs["champion"],
        reason=promoted.outputs["reason"],
        card=data.outputs["card"],
        report=promoted.outputs["report"],
    )


def _cluster_pipeline() -> dsl.graph_component.GraphComponent:
    """What compile, submit and schedule send: training_pipeline inside a dsl.ExitHandler whose exit task,
    notify, tells the team how the run ended (components/notify), whatever the state of the other tasks.

    A wrapper because KFP refuses pipeline outputs from inside an ExitHandler ("Pipeline outputs may only
    be returned from the top level", kfp 2.17.3), and training_pipeline's outputs are its interface: a
    team's pipeline nests it for a deploy step under dsl.If(promoted), `trainboard local` reads them (and
    sends the same notification itself when the run ends: trainboard/app/local_run.py). The wrapper takes
    training_pipeline's signature and docstring as they are, so the UI's parameters are the same.

    The exit task's webhook URL is the Kubernetes Secret SECRET_NAME, mounted as an optional volume (a
    cluster without it runs, and sends nothing). Not use_secret_as_env: kfp-kubernetes 2.17.3 always writes
    SecretAsEnv.optional, a field backends before 2.15.0 refuse (kubeflow/pipelines #12495), which would
    fail the exit task there; SecretAsVolume.optional is read since 2.1.0."""
    signature = inspect.signature(training_pipeline.pipeline_func)

    def cluster_pipeline(*args: Any) -> None:
        parameters = signature.bind(*args).arguments  # kfp passes the parameters' channels in order
        notice = notify(
            root=parameters["root"],
            run_name=parameters["run_name"],
            job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,  # the record start_run leaves for a generated name
            tensorboard_url=parameters["tensorboard_url"],
        )
        notice.set_display_name("notify")
        notice.set_caching_options(False)  # every run's end is news
        kubernetes.use_secret_as_volume(notice, SECRET_NAME, mount_path=SECRET_DIR, optional=True)
        with dsl.ExitHandler(notice, name="training"):
            training_pipeline(**parameters)

    cluster_pipeline.__signature__ = signature.replace(return_annotation=None)  # type: ignore[attr-defined]
    cluster_pipeline.__doc__ = training_pipeline.pipeline_func.__doc__
    return dsl.pipeline(name=PIPELINE_NAME, description=training_pipeline.description)(cluster_pipeline)


cluster_pipeline = _cluster_pipeline()

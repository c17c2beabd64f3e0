"""The trainboard pipeline: start_run -> prepare_data -> train (GPU) -> evaluate.

TensorFlow-free to import: compile, submit and schedule load this module on a laptop.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Metrics, Model

from trainboard.components.evaluate.component import evaluate
from trainboard.components.prepare_data.component import prepare_data
from trainboard.components.start_run.component import start_run
from trainboard.components.train.component import train

PIPELINE_NAME = "trainboard"


class Outputs(NamedTuple):
    run: str
    model: Model
    metrics: Metrics


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Train a Keras image classifier with live TensorBoard logs in <root>/tensorboard/<run>/.",
)
def training_pipeline(
    root: str,
    dataset: str = "tfds:caltech101",
    model: str = "vgg16",
    epochs: int = 10,
    batch_size: int = 32,
    image_size: int = 224,
    learning_rate: float = 0.001,
    lr_schedule: str = "cosine",
    label_smoothing: float = 0.0,
    early_stopping_patience: int = 0,
    augment: bool = True,
    precision: str = "auto",
    weights_uri: str = "",
    seed: int = 0,
    sync_seconds: float = 10.0,
    batch_scalars_every: int = 0,
    histograms: bool = False,
    profile_batches: str = "",
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    tfds_data_dir: str = "",
    run_name: str = "",
    accelerator_type: str = "nvidia.com/gpu",
    accelerator_count: int = 1,
) -> Outputs:
    run = start_run(root=root, run_name=run_name, job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
    run.set_caching_options(False)  # a new name per execution, never a cached one
    run.set_display_name("start-run")

    data = prepare_data(
        dataset=dataset,
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        tfds_data_dir=tfds_data_dir,
    )
    data.set_display_name("prepare-data")

    trained = train(
        data=data.outputs["data"],
        root=root,
        run=run.output,
        model_name=model,
        epochs=epochs,
        batch_size=batch_size,
        image_size=image_size,
        learning_rate=learning_rate,
        lr_schedule=lr_schedule,
        label_smoothing=label_smoothing,
        early_stopping_patience=early_stopping_patience,
        augment=augment,
        precision=precision,
        weights_uri=weights_uri,
        seed=seed,
        sync_seconds=sync_seconds,
        batch_scalars_every=batch_scalars_every,
        histograms=histograms,
        profile_batches=profile_batches,
    )
    trained.set_display_name("train")
    trained.set_caching_options(False)  # it writes the run's logs and checkpoints to the root
    trained.set_accelerator_type(accelerator_type).set_accelerator_limit(accelerator_count)

    evaluated = evaluate(data=data.outputs["data"], model=trained.outputs["model"])
    evaluated.set_display_name("evaluate")
    return Outputs(run=run.output, model=trained.outputs["model"], metrics=evaluated.outputs["metrics"])

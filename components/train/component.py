from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from trainboard.component_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    data: Input[Dataset],
    root: str,
    job_id: str,
    model: str,
    epochs: int,
    batch_size: int,
    workers: int,
    image_size: int,
    learning_rate: float,
    lr_schedule: str,
    label_smoothing: float,
    early_stopping_patience: int,
    augment: bool,
    precision: str,
    weights: str,
    freeze_epochs: int,
    fine_tune_layers: int,
    fine_tune_learning_rate: float,
    seed: int,
    sync_seconds: float,
    batch_scalars_every: int,
    histograms: bool,
    profile_batches: str,
    race_margin: float,
    race_patience: int,
    race_warmup: int,
    sweep: str,
    trial: str,
    accelerator_type: str,
    accelerator_count: str,
    trained_model: Output[Model],
):
    from dataclasses import asdict

    from trainboard.artifacts.lease import held, holder_for
    from trainboard.components.train.core import train as fit
    from trainboard.components.train.devices import gpus_requested
    from trainboard.config import TrainingConfig, field_values
    from trainboard.sweep import Trial, trial_config

    # One trial of the night (a ParallelFor item): its own run, settings and siblings to race.
    this = Trial.from_json(trial)
    config = trial_config(TrainingConfig(**field_values(TrainingConfig, locals())), this.overrides)
    gpus = gpus_requested(accelerator_type, accelerator_count)
    with held(root, this.run, holder_for(job_id)):  # renewed while it trains; a retry of this run holds it
        if config.workers == 1:
            info = fit(
                data.path,
                trained_model.path,
                root,
                this.run,
                config=config,
                gpus=gpus,
                siblings=this.siblings,
            )
        elif data.uri.startswith("gs://"):  # on a cluster (its artifacts in a bucket): a TrainJob trains
            from trainboard.components.train.handoff import train_on_trainjob

            info = train_on_trainjob(
                data.uri, trained_model.path, root, this.run, config=config, job_id=job_id, gpus=gpus
            )
        else:  # kfp.local: worker processes here; the task holds the lease and waits for them
            from trainboard.components.train.local_workers import train_on_local_workers

            info = train_on_local_workers(
                data.path, trained_model.path, root, this.run, config=config, gpus=gpus
            )
    trained_model.metadata.update(asdict(info))

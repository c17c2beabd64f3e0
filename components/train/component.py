from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from trainboard.components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    data: Input[Dataset],
    root: str,
    run: str,
    model_name: str,
    epochs: int,
    batch_size: int,
    image_size: int,
    learning_rate: float,
    lr_schedule: str,
    label_smoothing: float,
    early_stopping_patience: int,
    augment: bool,
    precision: str,
    weights_uri: str,
    seed: int,
    sync_seconds: float,
    batch_scalars_every: int,
    histograms: bool,
    profile_batches: str,
    model: Output[Model],
):
    from dataclasses import asdict

    from trainboard.components.train.core import train as fit
    from trainboard.config import TrainingConfig

    config = TrainingConfig(
        model=model_name,
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
    info = fit(data.path, model.path, root, run, config)
    model.metadata.update(asdict(info))

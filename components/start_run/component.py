from kfp import dsl
from kfp.dsl import Markdown, Output

from trainboard.component_image import IMAGE


# The first task, never retried: it checks every parameter, so a bad value fails the run in seconds.
@dsl.component(base_image=IMAGE, install_kfp_package=False)
def start_run(
    root: str,
    run_name: str,
    job_id: str,
    tensorboard_url: str,
    accelerator_count: str,
    dataset: str,
    validation_fraction: float,
    test_fraction: float,
    tfds_data_dir: str,
    max_image_pixels: int,
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
    min_accuracy: float,
    min_improvement: float,
    min_significance: float,
    force_promote: bool,
    model_registry: str,
    card: Output[Markdown],
) -> str:
    from trainboard.components.start_run.core import start_run as start
    from trainboard.components.start_run.core import write_run_card

    run = start(root, run_name, job_id, locals())
    write_run_card(card.path, run, root, tensorboard_url, sweep=sweep)
    return run

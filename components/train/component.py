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
    seed: int,
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
        seed=seed,
    )
    info = fit(data.path, model.path, root, run, config)
    model.metadata.update(asdict(info))

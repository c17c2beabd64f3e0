from kfp import dsl
from kfp.dsl import Dataset, Markdown, Output

from trainboard.component_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def prepare_data(
    dataset: str,
    validation_fraction: float,
    test_fraction: float,
    tfds_data_dir: str,
    max_image_pixels: int,
    seed: int,
    source_fingerprint: str,  # from fingerprint_source: part of the cache key, so changed data is redone
    data: Output[Dataset],
    card: Output[Markdown],
):
    from dataclasses import asdict

    from trainboard.components.prepare_data.card import write_card
    from trainboard.components.prepare_data.core import prepare_data as prepare
    from trainboard.config import DataConfig, field_values

    info = prepare(DataConfig(**field_values(DataConfig, locals())), data.path, seed, source_fingerprint)
    data.metadata.update(asdict(info), source_fingerprint=source_fingerprint)
    write_card(info, card.path, data.path)

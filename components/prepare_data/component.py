from kfp import dsl
from kfp.dsl import Dataset, Markdown, Output

from trainboard.components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def prepare_data(
    dataset: str,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    tfds_data_dir: str,
    source_fingerprint: str,  # from fingerprint_source: part of the cache key, so changed data is redone
    data: Output[Dataset],
    card: Output[Markdown],
):
    from dataclasses import asdict

    from trainboard.components.prepare_data.core import prepare_data as prepare
    from trainboard.components.prepare_data.core import write_card

    info = prepare(dataset, data.path, seed, validation_fraction, test_fraction, tfds_data_dir)
    data.metadata.update(asdict(info), source_fingerprint=source_fingerprint)
    write_card(info, card.path, data.path)

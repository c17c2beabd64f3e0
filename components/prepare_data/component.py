from kfp import dsl
from kfp.dsl import Dataset, Markdown, Output
from trainboard.components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def prepare_data(dataset: str, seed: int, data: Output[Dataset], card: Output[Markdown]):
    from trainboard.components.prepare_data.core import prepare_data as prepare
    from trainboard.components.prepare_data.core import write_card

    info = prepare(dataset, data.path, seed)
    data.metadata.update(
        {
            "class_names": info.class_names,
            "examples": info.examples,
            "source": info.source,
            "fingerprint": info.fingerprint,
        }
    )
    write_card(info, card.path)

from kfp import dsl

from trainboard.component_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def fingerprint_source(dataset: str) -> str:
    from trainboard.components.fingerprint_source.core import fingerprint_source as fingerprint

    return fingerprint(dataset)

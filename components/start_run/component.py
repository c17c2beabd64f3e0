from kfp import dsl
from kfp.dsl import Markdown, Output

from trainboard.component_image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def start_run(root: str, run_name: str, job_id: str, tensorboard_url: str, card: Output[Markdown]) -> str:
    from components.start_run.core import start_run as start
    from components.start_run.core import write_run_card

    run = start(root, run_name, job_id)
    write_run_card(card.path, run, root, tensorboard_url)
    return run

from kfp import dsl

from trainboard.components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def start_run(root: str, run_name: str, job_id: str) -> str:
    from trainboard.components.start_run.core import start_run as start

    return start(root, run_name, job_id)

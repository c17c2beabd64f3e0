from kfp import dsl

from trainboard.component_image import IMAGE


# The exit task of the cluster's pipeline: it runs once every other task has ended, whatever their state.
# It takes no other task's output (an exit task cannot): the run comes from run_name or from the record
# start_run left for the job. Never retried, never failing: a receiver's trouble is not the run's.
@dsl.component(base_image=IMAGE, install_kfp_package=False)
def notify(root: str, run_name: str, job_id: str, tensorboard_url: str):
    from trainboard.components.notify.core import notify_run

    print(f"trainboard: notification: {notify_run(root, run_name, job_id, tensorboard_url)}")

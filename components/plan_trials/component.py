from kfp import dsl

from trainboard.component_image import IMAGE


# The night's trials, one string each: what the train task fans out over (dsl.ParallelFor).
@dsl.component(base_image=IMAGE, install_kfp_package=False)
def plan_trials(run: str, sweep: str) -> list:
    from trainboard.components.plan_trials.core import plan

    return plan(run, sweep)

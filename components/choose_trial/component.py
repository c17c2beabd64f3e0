from kfp import dsl
from kfp.dsl import Input, Markdown, Model, Output

from trainboard.component_image import IMAGE


# After every trial: the one model the night judges, and the table of trials.
@dsl.component(base_image=IMAGE, install_kfp_package=False)
def choose_trial(
    trained_models: Input[list[Model]],
    root: str,
    run: str,
    sweep: str,
    chosen_model: Output[Model],
    tournament: Output[Markdown],
) -> str:
    from pathlib import Path

    from trainboard.components.choose_trial.core import choose, tournament_report

    results, chosen = choose(
        [m.path for m in trained_models], chosen_model.path, root=root, run=run, sweep=sweep
    )
    Path(tournament.path).parent.mkdir(parents=True, exist_ok=True)
    Path(tournament.path).write_text(tournament_report(run, results, chosen), encoding="utf-8")
    chosen_model.metadata["run"] = chosen
    return chosen

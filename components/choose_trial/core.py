"""choose_trial: the night's one judged model, the trial best on validation, and the table of trials.

Only the chosen trial is evaluated on the test split and goes to the promotion gate: the test split
judges one model a night. Picking the best of N trials by their test accuracy would make the winner's
test accuracy an optimistically biased estimate (the maximum of N noisy measurements), and the gate
would compare the champion with that inflated number. The choice is made on validation accuracy; the
test split stays unseen until the chosen model is measured on it. The other trials' models stay as the
trials' runs (logs, checkpoints), never promoted.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from trainboard.artifacts.model import read_model_info
from trainboard.artifacts.race_stop import RaceStop
from trainboard.artifacts.tournament import Tournament, write_tournament
from trainboard.markdown import escape
from trainboard.sweep import trials


@dataclass(frozen=True)
class TrialResult:
    run: str
    settings: str  # the trial's overrides, as the sweep wrote them
    best_val_accuracy: float
    epochs: int  # epochs trained
    planned: int  # epochs it was to train
    stopped: str  # why the race stopped it ("" when it trained to the end)
    seconds_saved: float  # training time the stop saved, times the GPUs that would have run it

    def row(self) -> dict:
        return {
            "run": self.run,
            "settings": self.settings,
            "best_val_accuracy": self.best_val_accuracy,
            "epochs": self.epochs,
            "planned": self.planned,
            "stopped": self.stopped,
            "seconds_saved": self.seconds_saved,
        }


def _result(model_dir: str, settings: dict[str, str]) -> TrialResult:
    info = read_model_info(model_dir)
    stop = RaceStop.from_json(info.stopped)
    planned = stop.epochs if stop else info.epochs
    saved = (stop.seconds_saved or 0.0) * max(1, stop.gpus or 0) if stop else 0.0
    return TrialResult(
        run=info.run,
        settings=settings.get(info.run, "as given"),
        best_val_accuracy=info.best_val_accuracy,
        epochs=info.epochs,
        planned=planned,
        stopped=f"{stop.rule}: {stop.reason}" if stop else "",
        seconds_saved=round(saved, 1),
    )


def choose(
    model_dirs: list[str], chosen_dir: str, *, root: str, run: str, sweep: str
) -> tuple[list[TrialResult], str]:
    """The trials' results, in the sweep's order, and the chosen trial's run: the best validation
    accuracy, the earlier trial on a tie. Its model is copied to ``chosen_dir`` (the judged model); with
    a sweep, the tournament's record goes to the root (for the notification)."""
    planned = trials(run, sweep)
    settings = {trial.run: trial.settings() for trial in planned}
    order = {trial.run: number for number, trial in enumerate(planned)}
    by_run = {read_model_info(d).run: d for d in model_dirs}
    results = sorted(
        (_result(d, settings) for d in by_run.values()), key=lambda r: order.get(r.run, len(order))
    )
    best = max(results, key=lambda r: (r.best_val_accuracy, -order.get(r.run, len(order))))
    shutil.copytree(by_run[best.run], chosen_dir, dirs_exist_ok=True)
    if sweep:
        write_tournament(root, Tournament(run, best.run, [r.row() for r in results]))
    return results, best.run


def trials_table(results: list[TrialResult], chosen: str) -> str:
    """The table of trials (Markdown): settings, best validation accuracy, epochs, why stopped, time saved."""
    lines = [
        "| trial | settings | best val accuracy | epochs | stopped | GPU time saved |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        mark = " (chosen)" if r.run == chosen else ""
        stopped = escape(r.stopped) if r.stopped else "trained to the end"
        lines.append(
            f"| `{r.run}`{mark} | {escape(r.settings)} | {r.best_val_accuracy:.4f} | {r.epochs}/{r.planned} "
            f"| {stopped} | {r.seconds_saved:g} s |"
        )
    return "\n".join(lines)


def tournament_report(run: str, results: list[TrialResult], chosen: str) -> str:
    """The tournament's Markdown: the table, the choice, and the epochs the races saved."""
    trained = sum(r.epochs for r in results)
    planned = sum(r.planned for r in results)
    saved = 1 - trained / planned if planned else 0.0
    return (
        f"# Tournament of run `{run}`: {len(results)} trial{'s' if len(results) != 1 else ''}\n\n"
        f"{trials_table(results, chosen)}\n\n"
        f"Chosen on validation accuracy: `{chosen}`; only it is evaluated on the test split and may be "
        f"promoted. Epochs trained {trained} of {planned} planned ({saved:.0%} saved by the races).\n"
    )

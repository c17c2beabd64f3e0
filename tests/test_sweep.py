"""The nightly tournament's rules, each a pure function tested case by case: the sweep parsed into a
bounded grid of trials and every trial checked before any work, the race against siblings (the leader
never stopped), and the choice of the one judged model on validation. `trainboard local --sweep` runs
for real at the end (slow)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from tests.support.cli import in_process, last_json_line, trainboard
from tests.support.webhook import receiver
from trainboard.artifacts.model import MODEL_INFO_FILE, ModelInfo
from trainboard.artifacts.outcome import PROMOTED, RunOutcome, read_outcome, write_outcome
from trainboard.artifacts.tournament import Tournament, read_tournament, write_tournament
from trainboard.components.choose_trial.core import choose, tournament_report
from trainboard.components.notify.core import WEBHOOK_ENV, notify_run
from trainboard.components.start_run.core import run_card
from trainboard.components.train.sibling_race import BEHIND, BROKEN, sibling_verdict
from trainboard.config import TrainingConfig
from trainboard.config_checks import check_config
from trainboard.errors import UsageError
from trainboard.links import tensorboard_run_url
from trainboard.sweep import MAX_TRIALS, Trial, parse_sweep, trials


def test_a_sweep_is_the_grid_of_its_values_the_first_name_varying_slowest():
    grid = parse_sweep("learning_rate=0.001,0.003;model=small_cnn,mobilenet_v3_small")
    assert grid == [
        {"learning_rate": 0.001, "model": "small_cnn"},
        {"learning_rate": 0.001, "model": "mobilenet_v3_small"},
        {"learning_rate": 0.003, "model": "small_cnn"},
        {"learning_rate": 0.003, "model": "mobilenet_v3_small"},
    ]
    assert parse_sweep("augment=true,false;seed=1") == [
        {"augment": True, "seed": 1},
        {"augment": False, "seed": 1},
    ]
    assert parse_sweep("") == [{}], "no sweep: one trial, the run as given"


@pytest.mark.parametrize(
    ("sweep", "says"),
    [
        ("lr=0.1", "'lr' is not a parameter a trial may set"),
        ("epochs=2,4", "'epochs' is not a parameter a trial may set"),  # siblings race at the same epochs
        ("learning_rate", "is not NAME=VALUE"),
        ("learning_rate=0.1;learning_rate=0.2", "given twice"),
        ("seed=1,1", "lists a value twice"),
        ("seed=x", "seed='x' is not an integer"),
        ("augment=yes", "use true or false"),
        (
            "seed=1,2,3,4,5;learning_rate=0.1,0.2,0.3,0.4",
            f"20 trials (the grid of every value); at most {MAX_TRIALS}",
        ),
    ],
)
def test_a_malformed_or_oversized_sweep_is_refused_naming_it(sweep, says):
    with pytest.raises(UsageError) as e:
        parse_sweep(sweep)
    assert e.value.field == "sweep" and says in e.value.problem


def test_every_trial_is_checked_as_a_single_run_and_a_bad_one_refuses_the_sweep_naming_it():
    check_config(TrainingConfig(sweep="learning_rate=0.0003,0.003,10"))  # lr 10: the bound's end, allowed
    with pytest.raises(UsageError) as e:
        check_config(TrainingConfig(sweep="learning_rate=0.003,20"))
    assert (
        str(e.value) == "sweep: trial 2 (learning_rate=20.0): learning_rate: must be at most 10.0, got 20.0"
    )
    with pytest.raises(
        UsageError, match=r"trial 1 \(batch_size=30\): workers: batch_size 30 must be a multiple"
    ):
        check_config(TrainingConfig(workers=4, sweep="batch_size=30,32"))


def test_a_bad_trial_exits_2_with_one_line_before_anything_is_written(capsys, tmp_path):
    root = tmp_path / "root"
    code, _, err = in_process(
        capsys, "local", "--root", str(root), "--no-serve", "--sweep", "learning_rate=0.1,11"
    )
    assert code == 2 and err.strip().count("\n") == 0 and "--sweep: trial 2" in err, err
    assert not root.exists(), "nothing written"


def test_trials_are_runs_named_after_the_nights_run_each_racing_the_others():
    night = trials("nightly", "learning_rate=0.001,0.003,0.01")
    assert [t.run for t in night] == ["nightly-t1", "nightly-t2", "nightly-t3"]
    assert night[1].siblings == ("nightly-t1", "nightly-t3") and night[1].overrides == {
        "learning_rate": 0.003
    }
    assert Trial.from_json(night[1].to_json()) == night[1]
    assert trials("nightly", "") == [Trial("nightly", {}, ())], "no sweep: the run itself, no siblings"
    with pytest.raises(UsageError, match="run_name"):
        trials("n" * 99, "seed=1,2")  # no room for -t1


RULE = TrainingConfig(epochs=6, race_margin=0.1, race_patience=2, race_warmup=1)


def test_a_trial_clearly_behind_its_siblings_median_stops_after_patience_epochs_never_the_leader():
    siblings = {"a": [0.5, 0.7, 0.8, 0.85], "b": [0.4, 0.6, 0.7, 0.75]}
    behind = [0.3, 0.4, 0.45]
    # Epoch 2: past the warm-up, but one trailing epoch is not patience 2; epoch 3: two in a row.
    assert sibling_verdict(behind[:2], siblings, RULE, classes=4) is None
    stop = sibling_verdict(behind, siblings, RULE, classes=4)
    assert stop["rule"] == BEHIND and stop["epoch"] == 3 and "leader a 0.8000" in stop["reason"]
    assert sibling_verdict([0.5, 0.7, 0.8], {"b": siblings["b"]}, RULE, classes=4) is None, "the leader"
    assert sibling_verdict(behind, siblings, replace(RULE, race_margin=0.0), classes=4) is None, "opt-in"
    assert sibling_verdict(behind, {}, RULE, classes=4) is None, "no sibling has reached the epoch"


def test_the_median_is_of_the_best_so_far_so_one_bad_epoch_is_no_verdict():
    siblings = {"a": [0.5, 0.6, 0.65], "b": [0.5, 0.6, 0.65]}
    dipped = [0.55, 0.62, 0.45]  # its best so far, 0.62, is within the margin of 0.65
    assert sibling_verdict(dipped, siblings, RULE, classes=4) is None


def test_chance_level_where_a_sibling_is_well_above_stops_without_any_margin():
    off = TrainingConfig(epochs=6, race_warmup=2)
    broken = [0.25, 0.26, 0.25]
    siblings = {"good": [0.6, 0.7, 0.8]}
    assert sibling_verdict(broken[:2], siblings, off, classes=4) is None, "within the warm-up"
    stop = sibling_verdict(broken, siblings, off, classes=4)
    assert stop["rule"] == BROKEN and "where sibling good had 0.8000" in stop["reason"]
    assert sibling_verdict(broken, {"weak": [0.3, 0.3, 0.4]}, off, classes=4) is None, "no one well above"


def test_a_diverged_trial_stops_where_a_sibling_learned_without_any_margin():
    """The issue's hopeless trial: lr=10 on the demo data (4 classes), its measured losses 2160.7, 303.7,
    64.3, 14.5 and accuracy at chance, beside lr=0.003's 1.82, 1.36, 1.12, 0.97 (2026-12-07)."""
    off = TrainingConfig(epochs=4, race_warmup=1)
    accuracy, siblings = [0.19, 0.26], {"good": [0.26, 0.38]}
    losses = ([2160.7, 303.7], {"good": [1.82, 1.36]})
    stop = sibling_verdict(accuracy, siblings, off, classes=4, losses=losses)
    assert (
        stop["rule"] == BROKEN
        and stop["epoch"] == 2
        and "over twice a uniform guess's (2.7726" in stop["reason"]
    )
    assert sibling_verdict(accuracy[:1], siblings, off, classes=4, losses=losses) is None, "the warm-up"
    not_learned = ([2160.7, 303.7], {"good": [1.82, 1.50]})  # no sibling below ln 4 = 1.386 yet
    assert sibling_verdict(accuracy, siblings, off, classes=4, losses=not_learned) is None
    slow = ([1.6, 1.49], {"good": [1.82, 1.36]})  # a slow trial, not a diverged one
    assert sibling_verdict(accuracy, siblings, off, classes=4, losses=slow) is None


def test_the_run_card_of_a_sweep_opens_the_board_on_its_trials_beside_the_champion():
    card = run_card("n", "gs://b/tb", "https://tb.example.com/", champion="champ", sweep="seed=1,2")
    link = tensorboard_run_url("https://tb.example.com/", "n-t1", "n-t2", "champ")
    assert f"**[Open this run beside the champion `champ`]({link})**" in card
    assert "`gs://b/tb/tensorboard/n-t<N>/`" in card


def test_trainboard_local_trains_as_many_trials_at_once_as_asked_and_never_retries():
    from trainboard.app.local_run import _for_this_machine
    from trainboard.pipelines.training_pipeline import SWEEP_PARALLELISM, training_pipeline

    spec = _for_this_machine(training_pipeline, 3).pipeline_spec
    dags = [spec.root.dag, *(c.dag for c in spec.components.values() if c.HasField("dag"))]
    tasks = [task for dag in dags for task in dag.tasks.values()]
    assert [t.iterator_policy.parallelism_limit for t in tasks if t.HasField("parameter_iterator")] == [3]
    assert not any(t.HasField("retry_policy") for t in tasks), "the train task inside the loop too"
    loop = next(
        t for t in training_pipeline.pipeline_spec.root.dag.tasks.values() if t.HasField("parameter_iterator")
    )
    assert loop.iterator_policy.parallelism_limit == SWEEP_PARALLELISM, "the pipeline itself unchanged"


def _model(folder: Path, run: str, best: float, stopped: dict | None = None) -> str:
    folder.mkdir(parents=True)
    info = ModelInfo("small_cnn", 16, ["a", "b"], 3 if stopped else 6, best, run, stopped=stopped or {})
    (folder / MODEL_INFO_FILE).write_text(json.dumps(asdict(info)))
    (folder / "model.keras").write_text(run)
    return str(folder)


def test_the_best_trial_on_validation_is_chosen_alone_with_the_table_of_trials(tmp_path):
    stop = {
        "rule": BROKEN,
        "epoch": 3,
        "reason": "chance level",
        "epochs": 6,
        "seconds_saved": 12.0,
        "gpus": 1,
    }
    dirs = [
        _model(tmp_path / "m3", "n-t3", 0.25, stop),  # dsl.Collected gives them in any order
        _model(tmp_path / "m1", "n-t1", 0.7),
        _model(tmp_path / "m2", "n-t2", 0.8),
    ]
    root = str(tmp_path / "root")
    sweep = "learning_rate=0.0003,0.003,10"
    results, chosen = choose(dirs, str(tmp_path / "chosen"), root=root, run="n", sweep=sweep)
    assert chosen == "n-t2" and (tmp_path / "chosen" / "model.keras").read_text() == "n-t2"
    assert [r.run for r in results] == ["n-t1", "n-t2", "n-t3"], "in the sweep's order"
    assert results[2].settings == "learning_rate=10.0" and results[2].seconds_saved == 12.0
    report = tournament_report("n", results, chosen)
    assert "| `n-t2` (chosen) | learning\\_rate=0.003 | 0.8000 | 6/6 | trained to the end | 0 s |" in report
    assert "Epochs trained 15 of 18 planned (17% saved by the races)" in report
    assert read_tournament(root, "n").chosen == "n-t2"


def test_a_tie_goes_to_the_earlier_trial(tmp_path):
    dirs = [_model(tmp_path / "b", "n-t2", 0.8), _model(tmp_path / "a", "n-t1", 0.8)]
    _, chosen = choose(dirs, str(tmp_path / "c"), root=str(tmp_path / "r"), run="n", sweep="seed=1,2")
    assert chosen == "n-t1"


def test_the_notification_of_a_sweep_tells_the_chosen_trials_outcome_and_the_table(tmp_path, monkeypatch):
    root = str(tmp_path / "root")
    reason = "first model: no champion yet"
    write_outcome(root, RunOutcome("n-t2", PROMOTED, reason, {"test_accuracy": 0.95}, champion="n-t2"))
    rows = [
        {"run": "n-t1", "settings": "learning_rate=0.0003", "best_val_accuracy": 0.5, "epochs": 6},
        {"run": "n-t2", "settings": "learning_rate=0.003", "best_val_accuracy": 0.9, "epochs": 6},
        {"run": "n-t3", "settings": "learning_rate=10.0", "best_val_accuracy": 0.26, "epochs": 2},
    ]
    for row in rows:
        row |= {
            "planned": 6,
            "stopped": "broken: diverged" if row["epochs"] == 2 else "",
            "seconds_saved": 8.0,
        }
    write_tournament(root, Tournament("n", "n-t2", rows))
    with receiver() as got:
        monkeypatch.setenv(WEBHOOK_ENV, got.url)
        assert notify_run(root, "n", "", "https://tb.example.com").startswith("sent (HTTP 200)")
    [body] = got.bodies
    assert body["outcome"] == PROMOTED and body["trials"] == rows
    assert body["links"]["tensorboard"] == tensorboard_run_url(
        "https://tb.example.com", "n-t1", "n-t2", "n-t3"
    )
    assert body["text"].splitlines()[-3:] == [
        "n-t1: learning_rate=0.0003, best val accuracy 0.5000, 6/6 epochs",
        "n-t2 (chosen): learning_rate=0.003, best val accuracy 0.9000, 6/6 epochs",
        "n-t3: learning_rate=10.0, best val accuracy 0.2600, 2/6 epochs, stopped (broken), 8 s saved",
    ]


@pytest.mark.slow
def test_a_local_sweep_prepares_once_trains_three_stops_the_hopeless_and_judges_only_the_best(tmp_path):
    """The issue's "done when": three trials on one board, lr=10 stopped early, one model tested and gated."""
    root = tmp_path / "root"
    # Six epochs at the local default 32 px: the good trials get well above chance (the broken rule's
    # bar) within a few epochs; no race_margin: the hopeless trial is stopped by the always-on rules.
    args = ["local", "--no-serve", "--json", "--root", str(root), "--epochs", "6"]
    sweep = ["--race-warmup", "1", "--sweep", "learning_rate=0.0003,0.003,10"]
    done = trainboard(*args, "--run-name", "night", *sweep, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = last_json_line(done.stdout)
    assert result["trials"] == ["night-t1", "night-t2", "night-t3"]
    assert result["chosen"] in ("night-t1", "night-t2") and result["promoted"], result
    assert done.stderr.count("prepare-data: started") == 1, "data prepared once"
    assert done.stderr.count("evaluate: started") == 1, "only the chosen trial is tested"
    assert all((root / "tensorboard" / t).is_dir() for t in result["trials"]), "every trial on the board"
    tournament = read_tournament(str(root), "night")
    hopeless = next(t for t in tournament.trials if t["run"] == "night-t3")
    assert hopeless["stopped"] and hopeless["epochs"] < 6, tournament.trials
    assert read_outcome(str(root), result["chosen"]).outcome == "promoted"
    assert "night-t3" in Path(result["tournament"]).read_text()
    assert not math.isnan(result["metrics"]["test_accuracy"])

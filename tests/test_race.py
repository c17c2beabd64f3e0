"""The nightly race: the challenger beside the champion while it trains, a losing or broken run
stopped early, and what promote makes of it. The rule itself is a pure function, tested case by case;
train, promote and `trainboard local` run for real."""

from __future__ import annotations

import io
import json
import math
import re
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from tensorboard.compat.proto import summary_pb2

from tests.support.browser import chromium
from tests.support.cli import in_process, last_json_line, trainboard
from tests.support.events import event_files, scalars
from tests.support.promotion import metrics_with_accuracy, model_folder
from tests.support.training import FAST
from trainboard import layout, storage
from trainboard.artifacts.champion import ChampionRecord, write_champion
from trainboard.artifacts.outcome import STOPPED_EARLY, read_outcome
from trainboard.artifacts.training_state import TrainingState, data_settings, started_with, state_uri
from trainboard.component_image import IMAGE
from trainboard.components.fingerprint_source.core import fingerprint_source
from trainboard.components.promote.core import promote
from trainboard.components.promote.report import report
from trainboard.components.promote.trend import SAVED, event_file, trend_dir
from trainboard.components.train.core import train
from trainboard.components.train.race import (
    ACCURACY_GAP,
    BROKEN,
    CANNOT_WIN,
    LOSS_GAP,
    ChampionCurve,
    verdict,
)
from trainboard.config import DataConfig, PromotionRule, TrainingConfig
from trainboard.links import tensorboard_run_url

RULE = TrainingConfig(epochs=10, race_margin=0.1, race_patience=2, race_warmup=2)
STRONG = ChampionCurve("champ", [0.5, 0.7, 0.8, 0.85, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9], [1.0] * 10)


def test_the_champion_is_read_at_the_same_point_of_training():
    assert STRONG.at(3, 10) == (0.8, 1.0), "the same epoch when both run as long"
    assert STRONG.at(1, 5)[0] == 0.7 and STRONG.at(5, 5)[0] == 0.9, "the same fraction: 1/5 is epoch 2"
    assert STRONG.at(7, 20)[0] == 0.85, "7/20 of the way: the champion's epoch 4"


def test_a_nan_or_infinite_loss_stops_at_once_whatever_the_settings():
    off = TrainingConfig(epochs=10)  # race_margin 0: the opt-in rule is off
    for loss in (math.nan, math.inf):
        stop = verdict([0.3], [loss], None, off, classes=4)
        assert stop["rule"] == BROKEN and stop["epoch"] == 1 and "training loss" in stop["reason"]


def test_chance_level_after_the_warm_up_stops_where_the_champion_was_well_above():
    off = TrainingConfig(epochs=10, race_warmup=2)
    assert verdict([0.25, 0.25], [1.4] * 2, STRONG, off, classes=4) is None, "in the warm-up: no verdict"
    stop = verdict([0.25, 0.26, 0.27], [1.4] * 3, STRONG, off, classes=4)
    assert (
        stop["rule"] == BROKEN
        and "chance level" in stop["reason"]
        and "champion champ had 0.8" in stop["reason"]
    )
    weak = ChampionCurve("weak", [0.3] * 10, [1.3] * 10)
    assert verdict([0.25] * 3, [1.4] * 3, weak, off, classes=4) is None, "a champion near chance: no verdict"
    assert verdict([0.25] * 3, [1.4] * 3, None, off, classes=4) is None, (
        "no champion: nothing says what healthy is"
    )


def test_trailing_stops_only_when_opted_in_after_the_warm_up_for_patience_epochs_in_a_row():
    behind = [0.35, 0.5, 0.6, 0.65]  # 0.15 to 0.2 behind STRONG from epoch 1 on
    assert verdict(behind, [1.0] * 4, STRONG, replace(RULE, race_margin=0.0), classes=4) is None, (
        "off by default"
    )
    assert verdict(behind[:3], [1.0] * 3, STRONG, RULE, classes=4) is None, (
        "epochs 2-3: one of them in the warm-up"
    )
    stop = verdict(behind, [1.0] * 4, STRONG, RULE, classes=4)
    assert (stop["rule"], stop["epoch"]) == (CANNOT_WIN, 4) and "2 epochs in a row" in stop["reason"]
    caught_up = [0.35, 0.5, 0.6, 0.8]  # a slow starter: 0.05 behind at epoch 4
    assert verdict(caught_up, [1.0] * 4, STRONG, RULE, classes=4) is None


def write_champion_curve(root: str, accuracy: list[float]) -> None:
    """A champion whose training committed these validation accuracies (its state.json's history)."""
    state = TrainingState(
        len(accuracy), history={"val_accuracy": accuracy, "val_loss": [0.1] * len(accuracy)}
    )
    storage.write_bytes(state_uri(root, "champ"), json.dumps(asdict(state)).encode())
    record = ChampionRecord("champ", "models/champ", {"test_accuracy": 0.99}, "2026-01-01T00:00:00", "first")
    write_champion(root, record, 0)


def test_a_run_that_cannot_win_is_stopped_with_its_curves_and_the_time_it_saved(demo_data, tmp_path):
    root = str(tmp_path / "root")
    write_champion_curve(root, [0.6] * 6)  # not "well above" chance: trailing, not broken, stops it
    config = replace(FAST, epochs=6, race_margin=0.05, race_patience=1, race_warmup=1)
    info = train(demo_data, str(tmp_path / "model"), root, "challenger", config=config)
    assert info.epochs == 2 and info.stopped["rule"] == CANNOT_WIN and info.stopped["epochs"] == 6
    assert info.stopped["seconds_saved"] > 0 and info.stopped["gpus"] == 0
    run_dir = layout.tensorboard_dir(root, "challenger")
    top = [u for u in event_files(run_dir) if "/train/" not in u and "/validation/" not in u]
    gaps = [point for u in top for point in scalars(storage.read_bytes(u), ACCURACY_GAP)]
    assert [step for step, _ in gaps] == [0, 1] and all(gap < -0.05 for _, gap in gaps)
    assert [s for u in top for s, _ in scalars(storage.read_bytes(u), LOSS_GAP)] == [0, 1]
    assert json.loads(storage.read_bytes(state_uri(root, "challenger")))["stopped"]["epoch"] == 2

    # Resumed (a retried task), it stays stopped: no more epochs.
    again = train(demo_data, str(tmp_path / "again"), root, "challenger", config=config)
    assert again.epochs == 2 and again.stopped["rule"] == CANNOT_WIN


def test_a_stopped_run_is_a_result_not_promoted_with_its_saved_time_in_report_outcome_and_trend(
    root, tmp_path
):
    stopped = {
        "rule": CANNOT_WIN,
        "epoch": 3,
        "epochs": 10,
        "reason": "trailed",
        "seconds_saved": 420.0,
        "gpus": 1,
    }
    folder = Path(model_folder(tmp_path, "late"))
    (folder / "trainboard_model.json").write_text(json.dumps({"run": "late", "stopped": stopped}))
    metrics = metrics_with_accuracy(0.9)
    decision = promote(root, "late", str(folder), metrics, rule=PromotionRule())
    assert (
        not decision.promoted and "stopped early: the race stopped it after epoch 3 of 10" in decision.reason
    )
    assert "420 s of training saved on 1 GPU(s)" in decision.reason
    outcome = read_outcome(root, "late")
    assert (outcome.outcome, outcome.stopped["seconds_saved"]) == (STOPPED_EARLY, 420.0)
    assert "420 s of training saved" in report("late", metrics, decision, root, model_dir=str(folder))
    [point] = [
        p for u in storage.list_files(trend_dir(root, "run")) for p in scalars(storage.read_bytes(u), SAVED)
    ]
    assert point[1] == 420.0


def test_a_model_no_better_than_chance_is_never_promoted_not_even_the_first(root, tmp_path):
    at_chance = promote(
        root, "r1", model_folder(tmp_path, "r1"), metrics_with_accuracy(0.25), rule=PromotionRule()
    )
    assert not at_chance.promoted and "no better than chance (0.2500" in at_chance.reason
    assert promote(
        root, "r2", model_folder(tmp_path, "r2"), metrics_with_accuracy(0.3), rule=PromotionRule()
    ).promoted


@pytest.mark.browser
def test_the_link_beside_the_champion_opens_on_both_runs_curves_and_no_other_run_in_the_browser(
    tensorboard_factory, tmp_path
):
    """TensorBoard's own UI (headless Chromium) on the link the run card and the console give: the first
    cards are the learning curves, not the confusion matrix (whose group sorts first unfiltered), of the run
    and the champion only."""
    for run in ("late", "champ", "other"):
        folder = tmp_path / "logs" / run / "validation"
        folder.mkdir(parents=True)
        for epoch in range(3):
            values = [
                summary_pb2.Summary.Value(tag="epoch_loss", simple_value=1.0 / (epoch + 1)),
                summary_pb2.Summary.Value(tag="epoch_accuracy", simple_value=0.3 * epoch),
            ]
            (folder / f"events.out.tfevents.{epoch:010d}.{run}").write_bytes(
                event_file(epoch, 1.0 + epoch, values)
            )
        (tmp_path / "logs" / run / "evaluation").mkdir()
        (tmp_path / "logs" / run / "evaluation" / f"events.out.tfevents.0000000009.{run}").write_bytes(
            event_file(3, 9.0, [_an_image("confusion_matrix")])
        )
    tb = tensorboard_factory(str(tmp_path / "logs"))
    for run in ("late", "champ", "other"):
        tb.wait_for_scalars(f"{run}/validation", "epoch_loss", 3)
    page = tensorboard_run_url(tb.url, "late", "champ").replace("#", "&forceSVG=true#")
    deadline = time.monotonic() + 90
    while True:
        dom = chromium("--dump-dom", page, profile=tmp_path / f"profile-{time.monotonic_ns()}")
        # The filtered view, first on the page: its cards' titles, in order, up to the next group.
        shown = dom.partition(">Tags matching filter<")[2].partition('class="group-title"')[0]
        titles = re.findall(r'class="tag"[^>]*title="([^"]+)"', shown)
        images_loaded = 'title="confusion_matrix"' in dom  # its group, hidden behind the filter
        both = "late/validation" in dom and "champ/validation" in dom
        if (both and images_loaded and len(titles) == 2) or time.monotonic() > deadline:
            break
    assert titles == ["epoch_accuracy", "epoch_loss"], "the learning curves first, no image"
    assert images_loaded, "the confusion matrix is there, behind the tag filter"
    assert both, "the run and the champion, side by side"
    assert "other/validation" not in dom, "no other run"


def _an_image(tag: str) -> summary_pb2.Summary.Value:
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(png, format="PNG")
    return summary_pb2.Summary.Value(
        tag=tag,
        image=summary_pb2.Summary.Image(height=8, width=8, colorspace=3, encoded_image_string=png.getvalue()),
    )


@pytest.mark.parametrize(
    ("change", "said"), [([], True), (["--seed", "7"], False), (["--epochs", "3"], False)]
)
def test_a_rerun_with_the_champions_settings_data_and_seed_says_before_training_it_makes_the_same_model(
    tmp_path, monkeypatch, capsys, change, said
):
    """`make run` twice: the second run starts with all the champion started with and would train the
    same model again, which the gate keeps out ("equal, not better"); it says so, and how to train
    another, before training. Another seed or setting: nothing said."""
    from trainboard.app import local_run

    root = str(tmp_path / "root")
    promote(root, "champ", model_folder(tmp_path, "champ"), metrics_with_accuracy(0.9), rule=PromotionRule())
    first = started_with(
        TrainingConfig(),
        "demo",
        fingerprint="e8da71f9d372f62e",  # the prepared data's, known to a finished run
        data=data_settings(DataConfig()),
        image=IMAGE,
        source_fingerprint=fingerprint_source("demo"),
    )
    state = TrainingState(epoch=8, checkpoint="epoch-8.keras", started_with=first)
    storage.write_bytes(state_uri(root, "champ"), json.dumps(asdict(state)).encode())

    def training_starts(*args, **kwargs):
        raise KeyboardInterrupt  # stopped where the pipeline would run

    monkeypatch.setattr(local_run, "run_local", training_starts)
    code, _, err = in_process(capsys, "local", "--no-serve", "--root", root, "--run-name", "again", *change)
    assert code == 130, err
    line = (
        "trainboard: run again: the same settings, data and seed as champion champ: it trains the same "
        "model again (equal, not better); to train another, change --seed or a setting"
    )
    assert (line in err.splitlines()) == said, err


@pytest.mark.slow
def test_two_local_runs_the_second_cannot_win_and_is_stopped_beside_the_champion(tmp_path):
    """The issue's "done when": the first run is the champion; the second, at a learning rate that cannot
    win, is stopped early with its saved time in the report, and the board has both runs' curves."""
    root = tmp_path / "root"
    common = ["local", "--no-serve", "--json", "--root", str(root), "--epochs", "4", "--image-size", "16"]
    first = trainboard(*common, "--run-name", "champ", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert last_json_line(first.stdout)["promoted"], "a healthy first run is the champion"
    race = ["--race-margin", "0.05", "--race-patience", "1", "--race-warmup", "1", "--learning-rate", "10"]
    second = trainboard(*common, "--run-name", "late", *race, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    result = last_json_line(second.stdout)
    assert (
        not result["promoted"]
        and "stopped early" in result["reason"]
        and "s of training saved" in result["reason"]
    )
    assert "stopped early" in Path(result["report"]).read_text()
    tops = [
        u
        for u in event_files(str(root / "tensorboard" / "late"))
        if "/train/" not in u and "/validation/" not in u
    ]
    assert any(scalars(storage.read_bytes(u), ACCURACY_GAP) for u in tops), "the race's own scalars"
    assert read_outcome(str(root), "late").outcome == STOPPED_EARLY

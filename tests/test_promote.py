"""promote: the gate's decisions, the champion record and model folders, a race of two promotions against
fake-gcs-server and a local root, bad input (thresholds, a corrupt record). TensorFlow-free and fast."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.promotion import champion_folder_run, metrics_with_accuracy, model_folder
from trainboard import layout, storage
from trainboard.artifacts.champion import (
    ChampionRecord,
    ChampionRecordError,
    read_champion,
    read_history,
)
from trainboard.artifacts.evaluation import RescoredChampion
from trainboard.components.evaluate.metrics import compute_metrics
from trainboard.components.promote import chart
from trainboard.components.promote.core import decide, mcnemar_p_value, promote
from trainboard.components.promote.report import report
from trainboard.config import PromotionRule
from trainboard.errors import UsageError


def champion(run: str, accuracy: float) -> ChampionRecord:
    return ChampionRecord(run, f"/models/{run}", {"test_accuracy": accuracy}, "2026-01-01T00:00:00+00:00", "")


@pytest.mark.parametrize(
    ("current", "accuracy", "rule", "promoted", "words"),
    [
        (None, 0.6, PromotionRule(), True, "first model"),
        (None, 0.6, PromotionRule(min_accuracy=0.6), True, "meets min_accuracy 0.6000"),
        (None, 0.5, PromotionRule(min_accuracy=0.6), False, "below min_accuracy 0.6000"),
        (champion("old", 0.8), 0.9, PromotionRule(), True, "better by 0.1000"),
        (champion("old", 0.8), 0.7, PromotionRule(), False, "worse, not better"),
        (champion("old", 0.8), 0.8, PromotionRule(), False, "equal, not better"),
        (champion("old", 0.8), 0.9, PromotionRule(min_improvement=0.1), True, "better by 0.1000"),
        (champion("old", 0.8), 0.85, PromotionRule(min_improvement=0.1), False, "less than min_improvement"),
        (champion("old", 0.8), 0.9, PromotionRule(min_accuracy=0.95), False, "below min_accuracy"),
        (champion("old", 0.8), 0.1, PromotionRule(min_accuracy=0.5, force_promote=True), True, "forced"),
        (champion("new", 0.3), 0.3, PromotionRule(min_accuracy=0.9), True, "already the champion"),
    ],
    ids=[
        "first",
        "first-at-floor",
        "first-below-floor",
        "better",
        "worse",
        "equal",
        "better-by-margin",
        "better-under-margin",
        "better-below-floor",
        "forced",
        "retry-of-the-champion",
    ],
)
def test_gate_decisions(current, accuracy, rule, promoted, words):
    decision = decide(current, "new", accuracy, rule)
    assert decision.promoted is promoted
    assert words in decision.reason
    assert decision.forced is (words == "forced")
    assert decision.champion == ("new" if promoted else current.run if current else "")
    assert decision.previous is current


def test_first_then_worse_then_better(root, tmp_path):
    first = promote(
        root, "r1", model_folder(tmp_path, "r1"), metrics_with_accuracy(0.8), rule=PromotionRule()
    )
    assert (first.promoted, first.champion) == (True, "r1")
    record, _ = read_champion(root)
    assert (record.run, record.model_uri, record.accuracy) == ("r1", "models/r1", 0.8)
    assert record.metrics == metrics_with_accuracy(0.8).headline() and "first model" in record.reason
    assert champion_folder_run(root) == "r1"

    worse = promote(
        root, "r2", model_folder(tmp_path, "r2"), metrics_with_accuracy(0.7), rule=PromotionRule()
    )
    assert (worse.promoted, worse.champion) == (False, "r1")
    assert read_champion(root)[0] == record, "a worse model changes nothing"
    assert not storage.list_files(layout.model_dir(root, "r2")), "nor is its model copied"

    better = promote(
        root, "r3", model_folder(tmp_path, "r3"), metrics_with_accuracy(0.9), rule=PromotionRule()
    )
    assert (better.promoted, better.champion, better.previous) == (True, "r3", record)
    assert read_champion(root)[0].run == "r3"
    assert champion_folder_run(root) == "r3"
    assert storage.list_files(layout.model_dir(root, "r1")), "earlier champions stay, for a rollback"


def test_report_tells_the_decision_the_scores_and_the_confusions(tmp_path):
    root = str(tmp_path / "root")
    promote(root, "r1", model_folder(tmp_path, "r1"), metrics_with_accuracy(0.9), rule=PromotionRule())
    metrics = metrics_with_accuracy(0.5)
    decision = promote(
        root, "r2", model_folder(tmp_path, "r2"), metrics, rule=PromotionRule(force_promote=True)
    )
    text = report("r2", metrics, decision, root)
    assert "Promotion: **promoted** (forced by force_promote: the gate was not applied)" in text
    assert "Champion before: `r1` (test accuracy 0.9000" in text and "champion now: `r2`" in text
    assert "| test_accuracy | 0.5000 |" in text
    assert "| circle | 0.5000 | 0.6000 | 0.5455 | 5 |" in text  # 3 of 5 right; 3 of 6 circle guesses
    assert "- circle -> square: 2" in text


def report_picture(text: str) -> np.ndarray:
    [encoded] = re.findall(r"\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"))


def test_the_report_shows_each_of_102_classes_against_the_champion(tmp_path):
    """caltech101's 102 classes: one picture, a row a class, this run's F1 beside the champion's on the
    same test split, the biggest drop first; the table beside it in the same order."""
    names = [f"class_{i:03d}" for i in range(102)]
    names[7] = "a|b_*c*"
    labels = np.repeat(np.arange(102), 10)
    rng = np.random.default_rng(1)
    predicted = np.where(rng.random(len(labels)) < 0.7, labels, rng.integers(0, 102, len(labels)))
    metrics = compute_metrics(labels, np.eye(102)[predicted], names)
    f1 = [c.f1 for c in metrics.per_class]
    against = [min(score + 0.1, 1.0) for score in f1]  # the champion better on every class...
    against[7], against[40] = max(f1[7] - 0.5, 0.0), f1[40]  # ...but two: one much worse, one the same
    metrics.champion_rescored = RescoredChampion("old", 0.7, against)
    decision = decide(champion("old", 0.7), "new", metrics.accuracy, PromotionRule())
    text = report("new", metrics, decision, str(tmp_path / "root"))
    assert "## Per class against the champion `old`" in text

    picture = report_picture(text)
    assert picture.shape == (chart.TOP + chart.ROW * 102 + 10, chart.PLOT_LEFT + chart.PLOT_WIDTH + 70, 3)
    order = chart.row_order(metrics)
    assert order[-1] == 7, "the class that improved most, last"
    for row, i in enumerate(order):
        dot = tuple(picture[chart.y_of(row), chart.x_of(f1[i])])
        expected = chart.BETTER if i == 7 else chart.SAME if i == 40 else chart.WORSE
        assert dot == expected, (names[i], dot)

    table = [line for line in text.splitlines() if line.startswith("| ") and line.count("|") >= 7]
    assert table[0] == "| class | precision | recall | F1 | support | champion F1 | change |"
    assert [line.split(" | ")[0][2:] for line in table[1:]] == [
        names[i].replace("|", "\\|").replace("_", "\\_").replace("*", "\\*") for i in order
    ]
    assert [line.split(" | ")[-1] for line in table[1:]] == [f"{f1[i] - against[i]:+.4f} |" for i in order]


def model_with(tmp_path: Path, run: str, **info) -> str:
    """A stand-in Model artifact whose trainboard_model.json also holds ``info`` (ModelInfo's fields)."""
    folder = model_folder(tmp_path, run)
    path = Path(folder) / "trainboard_model.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **info}))
    return folder


SETTINGS = {
    "model": "small_cnn",
    "learning_rate": 0.001,
    "batch_size": 32,
    "epochs": 10,
    "dataset": "demo",
    "dataset_fingerprint": "aaa",
}
TRAINED = {
    "settings": SETTINGS,
    "class_names": ["circle", "square", "triangle", "cross"],
    "class_counts": {"train": [10, 10, 10, 10], "test": [5, 5, 5, 5]},
    "image": "registry/trainboard:1",
    "images_per_second": 100.0,
}


def test_the_report_says_what_changed_since_the_champion(tmp_path):
    root = str(tmp_path / "root")

    def night(run: str, accuracy: float, **info) -> str:
        folder, metrics = model_with(tmp_path, run, **{**TRAINED, **info}), metrics_with_accuracy(accuracy)
        return report(
            run, metrics, promote(root, run, folder, metrics, rule=PromotionRule()), root, model_dir=folder
        )

    first = night("r1", 0.6)
    assert "No champion before this run: nothing to compare with." in first
    same = night("r2", 0.7)
    assert "## What changed since the champion `r1`" in same
    assert "- Data: unchanged (fingerprint `aaa`)" in same and "- Hyperparameters: unchanged" in same
    assert "- Examples per class: unchanged" in same
    assert "- Component image: unchanged, `registry/trainboard:1`" in same
    assert "| test_accuracy | 0.6000 | 0.7000 | +0.1000 |" in same
    changed = night(
        "r3",
        0.8,
        settings={**SETTINGS, "learning_rate": 0.01, "epochs": 20, "dataset_fingerprint": "bbb"},
        class_counts={"train": [10, 10, 10, 16], "test": [5, 5, 4, 5]},
        image="registry/trainboard:2",
        images_per_second=50.0,
    )
    assert "## What changed since the champion `r2`" in changed
    assert "- Data: fingerprint `aaa` -> `bbb`" in changed
    assert "- Hyperparameters: 2 changed" in changed
    assert "| epochs | 10 | 20 |" in changed and "| learning\\_rate | 0.001 | 0.01 |" in changed
    assert "batch\\_size" not in changed
    assert "| cross | train | 10 | 16 | +6 |" in changed and "| triangle | test | 5 | 4 | -1 |" in changed
    assert "- Component image: `registry/trainboard:1` -> `registry/trainboard:2`" in changed
    assert "- Training throughput: 100.0 -> 50.0 images/s (-50.0%)" in changed
    assert "| test_accuracy | 0.7000 | 0.8000 | +0.1000 |" in changed


def test_without_a_champion_the_picture_shows_this_run_worst_first(tmp_path):
    metrics = metrics_with_accuracy(0.5)
    text = report("r1", metrics, decide(None, "r1", 0.5, PromotionRule()), str(tmp_path / "root"))
    assert "## Per class\n" in text and "champion F1" not in text
    picture = report_picture(text)
    order = chart.row_order(metrics)
    assert [metrics.per_class[i].f1 for i in order] == sorted(c.f1 for c in metrics.per_class)
    assert tuple(picture[chart.y_of(0), chart.x_of(metrics.per_class[order[0]].f1)]) == chart.SAME


@pytest.mark.parametrize(("accuracy_a", "accuracy_b"), [(0.8, 0.8), (0.7, 0.9), (0.9, 0.7)])
def test_two_promotions_at_once_leave_one_consistent_champion(
    root, tmp_path, monkeypatch, accuracy_a, accuracy_b
):
    """Both runs read "no champion" before either writes: one record write wins, the other run reads the
    new record and decides again. The record, the champion folder and both decisions agree."""
    both_read = threading.Barrier(2, timeout=30)
    first_read = threading.local()
    read_versioned = storage.read_versioned

    def read_then_wait(uri: str):
        result = read_versioned(uri)
        if uri.endswith("champion.json") and not getattr(first_read, "done", False):
            first_read.done = True
            both_read.wait()
        return result

    lost_writes = []
    write_if_generation = storage.write_if_generation

    def counting_write(uri: str, data: bytes, generation: int) -> None:
        try:
            write_if_generation(uri, data, generation)
        except storage.PreconditionFailed:
            lost_writes.append(uri)
            raise

    monkeypatch.setattr(storage, "read_versioned", read_then_wait)
    monkeypatch.setattr(storage, "write_if_generation", counting_write)
    accuracies = {"a": accuracy_a, "b": accuracy_b}
    decisions = {}

    def run(name: str) -> None:
        metrics = metrics_with_accuracy(accuracies[name])
        decisions[name] = promote(root, name, model_folder(tmp_path, name), metrics, rule=PromotionRule())

    threads = [threading.Thread(target=run, args=(name,)) for name in accuracies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(decisions) == ["a", "b"], "a promotion failed"
    monkeypatch.setattr(storage, "read_versioned", read_versioned)
    lost_records = [uri for uri in lost_writes if uri == layout.champion_record(root)]
    assert lost_records == [layout.champion_record(root)], "both wrote on 'no champion': exactly one lost"

    record, _ = read_champion(root)
    best = max(accuracies.values())
    assert record.accuracy == best
    assert champion_folder_run(root) == record.run
    assert decisions[record.run].promoted and decisions[record.run].champion == record.run
    promoted_runs = sorted(name for name, decision in decisions.items() if decision.promoted)
    kept = {
        uri.split("/models/")[1].split("/")[0] for uri in storage.list_files(storage.join(root, "models"))
    }
    assert kept == {"champion", *promoted_runs}, "a run that lost the race leaves no model folder"
    history = read_history(root)
    assert sorted(entry.run for entry in history) == promoted_runs, "one history entry a promotion"
    assert history[-1] == record, "every record written is in the history, the current one last"
    other = "b" if record.run == "a" else "a"
    loser = decisions[other]
    if loser.promoted:  # it won the first write, then the better run replaced it: both were true
        assert accuracies[other] < best and "first model" in loser.reason
        assert decisions[record.run].previous.run == other
    else:  # it lost the write, read the winner's record and was measured against it
        assert loser.previous.run == record.run and loser.champion == record.run
        assert ("equal" if accuracies[other] == best else "worse") in loser.reason


CORRUPT_RECORDS = {
    "not-json": b"{not json",
    "not-an-object": b"[]",
    "fields-missing": b'{"run": "r1"}',
    "accuracy-out-of-range": json.dumps(
        {"run": "r1", "model_uri": "x", "metrics": {"test_accuracy": 7}, "promoted_at": "", "reason": ""}
    ).encode(),
}


@pytest.mark.parametrize("corrupt", CORRUPT_RECORDS.values(), ids=CORRUPT_RECORDS.keys())
def test_a_corrupt_record_is_a_clear_error_and_nothing_is_overwritten(root, tmp_path, corrupt):
    storage.write_bytes(layout.champion_record(root), corrupt)
    with pytest.raises(
        ChampionRecordError, match=r"is not a valid champion record .*nothing was overwritten"
    ):
        promote(root, "r1", model_folder(tmp_path, "r1"), metrics_with_accuracy(0.9), rule=PromotionRule())
    assert storage.read_bytes(layout.champion_record(root)) == corrupt
    assert storage.list_files(storage.join(root, "models")) == []


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        (PromotionRule(min_accuracy=1.5), "min_accuracy"),
        (PromotionRule(min_accuracy=-0.1), "min_accuracy"),
        (PromotionRule(min_improvement=2.0), "min_improvement"),
        (PromotionRule(min_improvement=-0.01), "min_improvement"),
        (PromotionRule(min_significance=1.5), "min_significance"),
        (PromotionRule(min_significance=-0.05), "min_significance"),
    ],
)
def test_thresholds_outside_0_1_are_refused(tmp_path, rule, field):
    with pytest.raises(UsageError, match=r"must be in \[0, 1\] \(an? (accuracy|p-value)") as error:
        promote(
            str(tmp_path / "root"), "r1", model_folder(tmp_path, "r1"), metrics_with_accuracy(0.9), rule=rule
        )
    assert error.value.field == field
    assert not (tmp_path / "root").exists()


def test_the_champion_is_compared_on_the_same_test_split(root, tmp_path):
    # The champion scored 0.95 on its own data; on today's test split it scores 0.80, and the challenger 0.85.
    recorded = champion("old", 0.95)
    assert not decide(recorded, "new", 0.85, PromotionRule()).promoted
    fair = decide(recorded, "new", 0.85, PromotionRule(), champion_accuracy=0.80)
    assert fair.promoted
    assert "champion old's 0.8000 on this run's test split (recorded 0.9500)" in fair.reason

    promote(root, "r1", model_folder(tmp_path, "r1"), metrics_with_accuracy(0.95), rule=PromotionRule())
    stale = metrics_with_accuracy(0.85)
    stale.champion_rescored = RescoredChampion("someone-else", 0.5)  # measured before another promotion
    assert not promote(root, "r2", model_folder(tmp_path, "r2"), stale, rule=PromotionRule()).promoted
    rescored = metrics_with_accuracy(0.85)
    rescored.champion_rescored = RescoredChampion("r1", 0.8)
    decision = promote(root, "r3", model_folder(tmp_path, "r3"), rescored, rule=PromotionRule())
    assert (decision.promoted, read_champion(root)[0].run) == (True, "r3")


@pytest.mark.parametrize(
    ("only_this", "only_champion", "p"),
    [(0, 0, 1.0), (5, 5, 1.0), (10, 0, 2 / 1024), (0, 10, 2 / 1024), (9, 1, 2 * 11 / 1024), (60, 40, 0.0569)],
)
def test_mcnemar_exact_p_value(only_this, only_champion, p):
    # (60, 40): scipy.stats.binomtest(40, 100).pvalue = 0.05688793...
    assert mcnemar_p_value(only_this, only_champion) == pytest.approx(p, abs=5e-5)


def test_min_significance_asks_the_gain_to_be_significant(tmp_path):
    """20 test examples: 0.9 against the champion's 0.8 is 2 more right; 2 against 0 disagreements is
    p = 0.5, not significant at 0.05; 9 against 7 neither; 10 against 0 is (p = 0.002)."""
    rule = PromotionRule(min_significance=0.05)
    recorded = champion("old", 0.8)
    assert decide(
        recorded, "new", 0.9, PromotionRule(), champion_accuracy=0.8, p_value=mcnemar_p_value(2, 0)
    ).promoted, "off by default"
    weak = decide(recorded, "new", 0.9, rule, champion_accuracy=0.8, p_value=mcnemar_p_value(2, 0))
    assert not weak.promoted and "not significant: McNemar p = 0.5 > min_significance 0.05" in weak.reason
    strong = decide(recorded, "new", 0.9, rule, champion_accuracy=0.4, p_value=mcnemar_p_value(10, 0))
    assert strong.promoted and "significant: McNemar p = 0.001953 <= 0.05" in strong.reason
    unmeasured = decide(recorded, "new", 0.9, rule)
    assert (
        not unmeasured.promoted
        and "needs the champion measured on this run's test split" in unmeasured.reason
    )
    assert decide(None, "new", 0.9, rule).promoted, "the first model has nothing to be compared with"
    assert decide(recorded, "new", 0.5, PromotionRule(min_significance=0.05, force_promote=True)).promoted

    root = str(tmp_path / "root")
    promote(root, "r1", model_folder(tmp_path, "r1"), metrics_with_accuracy(0.5), rule=PromotionRule())
    metrics = metrics_with_accuracy(0.9)
    metrics.champion_rescored = RescoredChampion("r1", 0.5, [], only_this_right=9, only_champion_right=1)
    decision = promote(
        root, "r2", model_folder(tmp_path, "r2"), metrics, rule=PromotionRule(min_significance=0.01)
    )
    assert not decision.promoted and decision.p_value == pytest.approx(22 / 1024)
    text = report("r2", metrics, decision, root)
    assert (
        "McNemar's exact): 9 examples only this run got right, 1 only the champion; p-value 0.02148" in text
    )
    assert promote(
        root, "r2", model_folder(tmp_path, "r2"), metrics, rule=PromotionRule(min_significance=0.05)
    ).promoted
    assert read_champion(root)[0].p_value == pytest.approx(22 / 1024), "the p-value is in the record"
    assert read_history(root)[-1].p_value == pytest.approx(22 / 1024), "and in the history"

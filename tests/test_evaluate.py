"""evaluate: the metric math on a hand-computed example, the evaluation in TensorBoard (event files in the
root and a real TensorBoard listing the run), and bad input: wrong classes, an empty test split."""

from __future__ import annotations

import io
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.compat.proto import event_pb2
from tensorboard.util import tensor_util

from tests.support.events import records, scalars
from tests.support.training import FAST
from trainboard import storage
from trainboard.artifacts.evaluation import Evaluation, RescoredChampion
from trainboard.artifacts.model import MODEL_INFO_FILE
from trainboard.charts import colour
from trainboard.components.evaluate.core import evaluate
from trainboard.components.evaluate.metrics import compute_metrics
from trainboard.components.evaluate.summaries import MatrixLayout, write_evaluation_logs
from trainboard.components.promote.core import promote
from trainboard.components.train.core import train
from trainboard.config import PromotionRule
from trainboard.errors import UsageError

RUN = "tiny"


# The tiny stand-in models score about chance, which the gate never promotes unforced.
CHAMPION_WHATEVER_ITS_ACCURACY = PromotionRule(force_promote=True)


def test_metrics_match_a_hand_computed_example():
    labels = [0, 0, 1, 2]
    probabilities = [
        [0.7, 0.2, 0.1],  # a -> a
        [0.4, 0.5, 0.1],  # a -> b
        [0.1, 0.8, 0.1],  # b -> b
        [0.5, 0.25, 0.25],  # c -> a
    ]
    m = compute_metrics(np.array(labels), np.array(probabilities), ["a", "b", "c"])
    assert m.confusion_matrix == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert m.accuracy == 0.5
    assert m.loss == pytest.approx(-(math.log(0.7) + math.log(0.4) + math.log(0.8) + math.log(0.25)) / 4)
    assert m.top5_accuracy is None, "3 classes: top-5 would always be 1"
    # precision: a 1 of 2 predicted, b 1 of 2, c never predicted; recall: a 1 of 2, b 1 of 1, c 0 of 1
    assert [(c.name, c.precision, c.recall, c.support) for c in m.per_class] == [
        ("a", 0.5, 0.5, 2),
        ("b", 0.5, 1.0, 1),
        ("c", 0.0, 0.0, 1),
    ]
    assert [c.f1 for c in m.per_class] == pytest.approx([0.5, 2 / 3, 0.0])
    assert (m.macro.precision, m.macro.recall) == pytest.approx((1 / 3, 0.5))
    assert m.macro.f1 == pytest.approx((0.5 + 2 / 3) / 3)
    # weighted by support 2, 1, 1
    assert (m.weighted.precision, m.weighted.recall) == pytest.approx((0.375, 0.5))
    assert m.weighted.f1 == pytest.approx(0.5 * 0.5 + 0.25 * 2 / 3)
    assert m.worst_confusions() == [("a", "b", 1), ("c", "a", 1)]
    assert m.examples == 4
    assert set(m.headline()) == {
        "test_loss", "test_accuracy", "test_macro_precision", "test_macro_recall", "test_macro_f1",
        "test_weighted_precision", "test_weighted_recall", "test_weighted_f1",
    }  # fmt: skip
    assert type(m).from_json(json.loads(json.dumps(m.to_json()))) == m


def test_top5_accuracy_with_more_than_five_classes():
    probabilities = [
        [0.3, 0.2, 0.15, 0.15, 0.1, 0.06, 0.04],  # true class 6 ranks 7th: a miss
        [0.1, 0.3, 0.2, 0.15, 0.12, 0.08, 0.05],  # true class 0 ranks 5th: a hit
    ]
    m = compute_metrics(np.array([6, 0]), np.array(probabilities), list("abcdefg"))
    assert (m.accuracy, m.top5_accuracy) == (0.0, 0.5)
    assert m.headline()["test_top5_accuracy"] == 0.5


def test_no_examples_is_an_error():
    with pytest.raises(ValueError, match="test split is empty"):
        compute_metrics(np.zeros(0), np.zeros((0, 2)), ["a", "b"])


@pytest.fixture(scope="module")
def tiny_model(demo_data, tmp_path_factory) -> str:
    """A small_cnn trained for two epochs on the demo data, once for this module."""
    out = tmp_path_factory.mktemp("tiny")
    train(demo_data, str(out / "model"), str(out / "root"), RUN, config=FAST)
    return str(out / "model")


def summary_plugins(data: bytes) -> dict[str, str]:
    """{tag: the TensorBoard plugin that shows it} of one event file's summaries."""
    return {
        value.tag: value.metadata.plugin_data.plugin_name
        for payload in records(data)
        for value in event_pb2.Event.FromString(payload).summary.value
    }


def texts(data: bytes, tag: str) -> str:
    [text] = [
        tensor_util.make_ndarray(value.tensor).item().decode()
        for payload in records(data)
        for value in event_pb2.Event.FromString(payload).summary.value
        if value.tag == tag
    ]
    return text


def image(data: bytes, tag: str) -> np.ndarray:
    [encoded] = [
        tensor_util.make_ndarray(value.tensor)[2]  # width, height, then the PNG
        for payload in records(data)
        for value in event_pb2.Event.FromString(payload).summary.value
        if value.tag == tag
    ]
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))


CALTECH = 102


def caltech_sized_evaluation() -> Evaluation:
    """A test split of 102 classes of 30 images each (caltech101's class count), about 60 % right; class 1
    taken for class 2 half of the time. Names as long and odd as real ones."""
    names = [f"class_{i:03d}" for i in range(CALTECH)]
    names[0], names[1], names[2] = "BACKGROUND_Google_and_more_words", "Faces", "Faces|easy"
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(CALTECH), 30)
    predicted = np.where(rng.random(len(labels)) < 0.6, labels, rng.integers(0, CALTECH, len(labels)))
    predicted[np.flatnonzero(labels == 1)[:15]] = 2
    return compute_metrics(labels, np.eye(CALTECH)[predicted], names)


def test_the_evaluation_holds_at_102_classes(tmp_path):
    """caltech101's 102 classes: one per-class table, not 306 single-point charts; a confusion matrix
    normalised per row on a colour scale, every name at a readable size, of a size a screen shows."""
    result = caltech_sized_evaluation()
    target = write_evaluation_logs(str(tmp_path / "run"), result, step=10)
    [events] = storage.list_files(target)
    data = storage.read_bytes(events)
    assert set(summary_plugins(data)) == {*result.headline(), "test_per_class", "confusion_matrix"}

    rows = [line for line in texts(data, "test_per_class").splitlines() if line.startswith("| ")][1:]
    assert len(rows) == CALTECH
    f1 = [float(row.split("|")[-3]) for row in rows]  # from the right: a name may hold an escaped |
    assert f1 == sorted(f1), "the worst first"
    assert any(row.startswith("| Faces\\|easy |") for row in rows), "a | in a name stays in its cell"

    picture = image(data, "confusion_matrix")
    assert picture.shape[0] <= 1500 and picture.shape[1] <= 2000, picture.shape
    layout = MatrixLayout.of(result.class_names)
    assert layout.cell >= 12 and layout.font_size >= 10, "a name as tall as its cell, and readable"
    matrix = np.asarray(result.confusion_matrix)

    def cell(row: int, column: int) -> tuple[int, int, int]:
        x0, y0, x1, y1 = layout.cell_box(row, column)
        return tuple(picture[(y0 + y1) // 2, (x0 + x1) // 2])

    shares = matrix / matrix.sum(axis=1, keepdims=True)
    assert cell(1, 2) == colour(shares[1, 2]) and shares[1, 2] >= 0.5, "Faces taken for Faces|easy"
    assert cell(5, 5) == colour(shares[5, 5]), "the diagonal: recall"
    zero = next(c for c in range(CALTECH) if matrix[5, c] == 0)
    assert cell(5, zero) == (255, 255, 255)
    assert colour(0.03) != (255, 255, 255), "a confusion of 3 % is visible"


def evaluation_events(root: str) -> list[str]:
    return [u for u in storage.list_files(f"{root}/tensorboard/{RUN}/evaluation") if ".tfevents." in u]


def test_evaluation_goes_to_tensorboard_beside_the_curves(
    demo_data, tiny_model, tmp_path, tensorboard_factory
):
    root = str(tmp_path / "root")
    evaluate(demo_data, tiny_model, root, RUN)
    result = evaluate(demo_data, tiny_model, root, RUN)  # a retried task replaces its events, adds none
    (events,) = evaluation_events(root)
    data = storage.read_bytes(events)
    for name, value in result.headline().items():
        assert scalars(data, name) == [(FAST.epochs, pytest.approx(value))], name
    plugins = summary_plugins(data)
    assert plugins == {
        **dict.fromkeys(result.headline(), "scalars"),
        "test_per_class": "text",
        "confusion_matrix": "images",
    }
    table = texts(data, "test_per_class")
    circle = result.per_class[0]
    assert (
        f"| circle | {circle.precision:.3f} | {circle.recall:.3f} | {circle.f1:.3f} | {circle.support} |"
        in table
    )
    assert sum(map(sum, result.confusion_matrix)) == result.examples > 0
    assert 0 <= result.accuracy <= 1 and result.loss > 0

    tb = tensorboard_factory(f"{root}/tensorboard")
    points = tb.wait_for_scalars(f"{RUN}/evaluation", "test_accuracy", 1)
    assert points[0][2] == pytest.approx(result.accuracy)
    assert tb.get("/data/plugin/text/tags")[f"{RUN}/evaluation"] == ["test_per_class"]


def test_a_model_of_other_classes_is_refused(demo_data, tiny_model, tmp_path):
    model = shutil.copytree(tiny_model, tmp_path / "model")
    info = json.loads((model / MODEL_INFO_FILE).read_text())
    (model / MODEL_INFO_FILE).write_text(json.dumps({**info, "class_names": ["cat", "dog", "bird", "fish"]}))
    with pytest.raises(ValueError, match=r"model classes \['cat'.* do not match the dataset's \['circle'"):
        evaluate(demo_data, str(model), str(tmp_path / "root"), RUN)
    assert not (tmp_path / "root").exists(), "nothing is written for a refused model"


def test_an_empty_test_split_is_refused(demo_data, tiny_model, tmp_path):
    data = shutil.copytree(demo_data, tmp_path / "data")
    for shard in Path(data).glob("*-test.tfrecord-*"):
        shard.write_bytes(b"")
    info = json.loads((data / "dataset.json").read_text())
    with pytest.raises(tf.errors.FailedPreconditionError, match="expected to contain 160 elements"):
        evaluate(str(data), tiny_model, str(tmp_path / "root"), RUN)  # records lost: not read as empty
    info["examples"]["test"] = 0
    (data / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="the test split is empty"):
        evaluate(str(data), tiny_model, str(tmp_path / "root"), RUN)
    assert not (tmp_path / "root").exists()


def test_the_champion_is_measured_on_the_same_test_split(demo_data, tiny_model, tmp_path):
    root = str(tmp_path / "root")
    first = evaluate(demo_data, tiny_model, root, "champ")
    assert first.champion_rescored is None, "no champion yet"
    promote(root, "champ", tiny_model, first, rule=CHAMPION_WHATEVER_ITS_ACCURACY)
    again = evaluate(demo_data, tiny_model, root, "champ")
    assert again.champion_rescored is None, "a retry of the champion's own run is no comparison"
    challenger = evaluate(demo_data, tiny_model, root, "next")
    # The champion's model (copied to <root>/models/champ/) on this test split: the same model, same score.
    # The same model: it disagrees with itself on no example (McNemar's counts 0 and 0).
    assert challenger.champion_rescored == RescoredChampion(
        "champ", pytest.approx(challenger.accuracy), pytest.approx([c.f1 for c in challenger.per_class]), 0, 0
    )
    assert type(challenger).from_json(json.loads(json.dumps(challenger.to_json()))) == challenger


@pytest.mark.parametrize("damage", ["missing", "unreadable"])
def test_a_champion_whose_model_is_gone_stops_evaluate_naming_the_record_and_the_way_out(
    demo_data, tiny_model, tmp_path, damage
):
    """Not a temporary path: the record, the model URI it names, and how to get past (rollback, force)."""
    root = str(tmp_path / "root")
    champion = evaluate(demo_data, tiny_model, root, "champ")
    promote(root, "champ", tiny_model, champion, rule=CHAMPION_WHATEVER_ITS_ACCURACY)
    model_uri = storage.join(root, "models", "champ")
    shutil.rmtree(model_uri)
    if damage == "unreadable":
        storage.write_bytes(storage.join(model_uri, MODEL_INFO_FILE), b"{not json")
    with pytest.raises(UsageError) as error:
        evaluate(demo_data, tiny_model, root, "next")
    assert error.value.field == "champion.json"
    message = error.value.problem
    assert (
        f"{root}/champion.json names champion champ whose model {model_uri} is missing or unreadable"
        in message
    )
    assert "trainboard champion rollback" in message and "force_promote=true" in message
    assert "trainboard-champion-" not in message, "no temporary path"
    forced = evaluate(demo_data, tiny_model, root, "next", force_promote=True)
    assert forced.champion_rescored is None, "forced: the champion is replaced, not re-measured"
    decision = promote(root, "next", tiny_model, forced, rule=PromotionRule(force_promote=True))
    assert (
        decision.promoted and evaluate(demo_data, tiny_model, root, "third").champion_rescored.run == "next"
    )


def test_the_examples_on_which_two_models_disagree_are_counted_for_mcnemar(demo_data, tiny_model, tmp_path):
    """A champion trained for one epoch with another seed, the challenger for two: the counts of examples
    only one of them got right differ by exactly the accuracies' difference in examples."""
    root = str(tmp_path / "root")
    other = tmp_path / "other"
    train(
        demo_data, str(other), str(tmp_path / "train-root"), "other", config=replace(FAST, epochs=1, seed=7)
    )
    champion = evaluate(demo_data, str(other), root, "other")
    promote(root, "other", str(other), champion, rule=CHAMPION_WHATEVER_ITS_ACCURACY)
    challenger = evaluate(demo_data, tiny_model, root, "next")
    rescored = challenger.champion_rescored
    assert rescored.run == "other" and rescored.only_this_right is not None
    difference = round((challenger.accuracy - rescored.accuracy) * challenger.examples)
    assert rescored.only_this_right - rescored.only_champion_right == difference
    assert rescored.only_this_right + rescored.only_champion_right > 0, (
        "two different models disagree somewhere"
    )

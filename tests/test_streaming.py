"""StreamingTensorBoard as a team uses it in its own script, and the Keras internals it relies on
(keras/src/callbacks/tensorboard.py: _writers, _close_writers, _global_train_batch): if Keras renames or
changes one of them, a test here fails instead of a run silently losing its live curves."""

from __future__ import annotations

import inspect

import keras
import numpy as np

from tests.support.events import scalars
from trainboard import storage
from trainboard.streaming import StreamingTensorBoard


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


def steps(target: str, split: str, tag: str) -> list[int]:
    files = [u for u in storage.list_files(storage.join(target, split)) if ".tfevents." in u]
    return sorted(step for uri in files for step, _ in scalars(storage.read_bytes(uri), tag))


def test_the_keras_internals_it_relies_on_are_there():
    board = keras.callbacks.TensorBoard(log_dir="unused")
    assert board._writers == {}, "_writers: the lazily created summary writers, by name"
    assert callable(board._close_writers), "_close_writers: what on_train_end calls to close them"
    assert "_close_writers()" in inspect.getsource(keras.callbacks.TensorBoard.on_train_end)
    assert board._global_train_batch == 0, "_global_train_batch: the step of per-batch summaries"
    source = inspect.getsource(keras.callbacks.TensorBoard.on_train_begin)
    assert "self._global_train_batch = 0" in source, "reset by on_train_begin, before ours sets it"


def test_a_teams_own_fit_streams_its_curves_and_continues_a_resumed_step(tmp_path):
    """What the docstring shows: the callback in place of keras.callbacks.TensorBoard, logs in the target
    at the end of fit with no further call; per-batch steps of a resumed run go on from initial_step."""
    x, y = data()
    target = str(tmp_path / "root" / "tensorboard" / "my-run")
    board = StreamingTensorBoard(str(tmp_path / "logs"), target, sync_seconds=60, update_freq=1)
    tiny_model().fit(x, y, validation_split=0.25, epochs=2, batch_size=16, callbacks=[board], verbose=0)
    assert steps(target, "train", "epoch_loss") == [0, 1]
    assert steps(target, "validation", "epoch_loss") == [0, 1]
    assert steps(target, "train", "batch_loss") == list(range(1, 7)), "3 batches an epoch, steps from 1"
    assert board._writers == {}, "closed at the end of fit, under the sync lock"
    board.close()  # again, as after a failure: harmless

    resumed = StreamingTensorBoard(
        str(tmp_path / "logs-2"), target + "-resumed", sync_seconds=60, update_freq=1, initial_step=6
    )
    tiny_model().fit(x, y, epochs=1, batch_size=16, validation_split=0.25, callbacks=[resumed], verbose=0)
    assert steps(target + "-resumed", "train", "batch_loss") == [7, 8, 9], "_global_train_batch honoured"


def test_each_epoch_reaches_the_target_while_training_runs(tmp_path):
    """sync() flushes Keras's writers (_writers): an epoch's scalars are in the target before fit ends."""
    x, y = data()
    target = str(tmp_path / "target")
    board = StreamingTensorBoard(str(tmp_path / "logs"), target, sync_seconds=60)
    seen: list[list[int]] = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            board.sync()
            seen.append(steps(target, "train", "epoch_loss"))

    tiny_model().fit(x, y, epochs=3, batch_size=16, callbacks=[board, Watch()], verbose=0)
    assert seen == [[0], [0, 1], [0, 1, 2]]

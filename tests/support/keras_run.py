"""A real (tiny) Keras training run's TensorBoard logs:
``python tests/support/keras_run.py LOGDIR EPOCHS [INITIAL]``.

Fits a small model with ``keras.callbacks.TensorBoard`` in this process, the way the train component
does, so LOGDIR gets real Keras event files: train/ and validation/, ``epoch_loss`` and
``epoch_accuracy``. Run it again with INITIAL = the epochs done to resume: Keras then adds a second event
file to each folder, as a resumed run does. Runs in a subprocess: it imports TensorFlow.
"""

from __future__ import annotations

import sys

import numpy as np
from tensorflow import keras


def main(logdir: str, epochs: int, initial_epoch: int = 0) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        x,
        y,
        validation_split=0.25,
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=0,
        callbacks=[keras.callbacks.TensorBoard(logdir, histogram_freq=0, write_graph=False, profile_batch=0)],
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)

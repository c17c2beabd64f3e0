"""Keras 3 model.fit under tf.distribute.MultiWorkerMirroredStrategy: the smallest workaround.

keras-team/keras#20585 (open): in keras/src/backend/tensorflow/trainer.py of Keras 3.15.1, fit fails on
every worker in two places (seen with two CPU workers: tests/test_workers.py runs fit without this):
1. TensorFlowTrainer._maybe_symbolic_build reduces the first distributed batch eagerly with
   strategy.reduce("MEAN", batch, axis=None), which MultiWorkerMirroredStrategy cannot do for a
   PerReplica batch ("Attempt to convert a value (PerReplica:...) with an unsupported type"). The batch
   only gives the model its input shapes: one local replica's value serves as well.
2. reduce_per_replica reduces every metric with strategy.reduce("MEAN", v, axis=0) in multi-worker mode,
   and a metric is a scalar ("Invalid reduction dimension 0 for input with 0 dimensions"): a scalar is
   reduced with axis=None (the mean over the replicas), anything else as Keras does.

apply() replaces both, once, in the process (the workers only). tests/test_multiworker_keras.py fails
when either function's source changes (a new Keras: look whether #20585 is fixed, then delete this
module) and when the unpatched fit works.
"""

from __future__ import annotations

import hashlib
import inspect

import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow import trainer

# sha256 of the source of the two functions replaced, as Keras 3.15.1 has them.
REPLACED_SOURCES = {
    "_maybe_symbolic_build": "92a504f5eba9b29f81f1bf26180bdd5bf5186b06b7bda426534b90d2d02bc1c2",
    "reduce_per_replica": "2e7d54b1e6edc29a8c6a7e6b66cd4c8be3ba7842412c93753ac3afe169fa7fb8",
}
_KERAS = {
    "_maybe_symbolic_build": trainer.TensorFlowTrainer._maybe_symbolic_build,
    "reduce_per_replica": trainer.reduce_per_replica,
}
_keras_reduce_per_replica = _KERAS["reduce_per_replica"]


def keras_sources() -> dict[str, str]:
    """sha256 of the source of the functions apply() replaces, as the installed Keras has them."""
    return {name: hashlib.sha256(inspect.getsource(f).encode()).hexdigest() for name, f in _KERAS.items()}


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    if self._distribute_strategy is None:  # as Keras: the build waits for the traced function
        return
    if iterator is not None:
        for _, _, it in iterator:
            data_batch = tree.map_structure(_one_replica, next(it))
            break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _one_replica(value):
    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value


def _reduce_per_replica(values, strategy, reduction):
    if reduction not in ("auto", "mean") or not trainer._collective_all_reduce_multi_worker(strategy):
        return _keras_reduce_per_replica(values, strategy, reduction)

    def reduce(value):
        if strategy.experimental_local_results(value)[0].shape.rank == 0:
            return strategy.reduce("MEAN", value, axis=None)
        return _keras_reduce_per_replica(value, strategy, reduction)

    return tree.map_structure(reduce, values)


def apply() -> None:
    """Make Keras's TensorFlow trainer work under MultiWorkerMirroredStrategy (idempotent)."""
    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    trainer.reduce_per_replica = _reduce_per_replica

"""trainboard: train Keras image classifiers on Kubeflow Pipelines, watch them live in TensorBoard."""

from trainboard.stopping import watch_from_environment

watch_from_environment()  # in a task of `trainboard local`: it ends with the command (stopping.py)

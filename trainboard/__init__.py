"""trainboard: train Keras image classifiers on Kubeflow Pipelines, watch them live in TensorBoard."""

"""Image classifiers by name, each with a head for the dataset's classes. Inputs: RGB pixels in [0, 255];
the model holds its own preprocessing (trainboard.backbones), so serving feeds raw pixels."""

from __future__ import annotations

from pathlib import Path

import keras

from trainboard.backbones import backbone, preprocess
from trainboard.config_checks import check_model


def _small_cnn(inputs):
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        # Fast-moving statistics: the demo trains for a few hundred steps only.
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.MaxPooling2D()(x)
    return keras.layers.GlobalAveragePooling2D()(x)


def build_model(name: str, num_classes: int, image_size: int, weights: Path | None = None) -> keras.Model:
    """``name`` with a softmax head for ``num_classes``. The backbone starts from ``weights`` (a local
    weights file) or untrained: nothing is downloaded here (trainboard.weights fetches)."""
    check_model(name, image_size)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    if name == "small_cnn":
        features = _small_cnn(inputs)
    else:
        base = backbone(name, image_size, weights=str(weights) if weights else None)
        # A pretrained backbone keeps its BatchNorm statistics (inference mode, also when fine-tuned, as
        # Keras's transfer-learning guide does): a few thousand images would only blur ImageNet's.
        features = base(preprocess(name, inputs), training=False if weights else None)
    x = keras.layers.Dropout(0.2)(features)
    # float32 head so the softmax stays stable under mixed precision.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


def backbone_of(model: keras.Model) -> keras.Model | None:
    """The pretrained base inside a model of build_model (None for small_cnn)."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[0] if nested else None


def set_trainable(model: keras.Model, frozen: bool, top_layers: int) -> int:
    """Freeze the backbone (``frozen``), or make its top ``top_layers`` layers with weights trainable (0:
    all), BatchNorm excepted; the head always trains. Returns the number of trainable backbone layers."""
    base = backbone_of(model)
    if base is None:
        return 0
    weighted = [
        layer
        for layer in base.layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    unfrozen = [] if frozen else weighted[-top_layers:] if top_layers else weighted
    base.trainable = True  # per layer below: a frozen parent would override its layers
    for layer in base.layers:
        layer.trainable = layer in unfrozen
    return len(unfrozen)


def synchronize_batch_norm(model: keras.Model) -> None:
    """Every BatchNormalization layer of ``model`` computes its batch statistics over all replicas (the
    global batch; Keras's ``synchronized``, TensorFlow only): with several workers, each worker's own
    statistics would make the workers' moving means and variances drift apart, and the model one worker
    saves would have seen only its share of every batch. Saved in the layers' config, so a checkpoint
    keeps it."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True

"""Image classifiers by name, each with a head for the dataset's classes. Inputs: float pixels in [0, 255]."""

from __future__ import annotations

import keras

from trainboard.config import check_model

# name -> (keras.applications constructor, pixel scaling it needs; None where the
# architecture rescales its inputs itself)
_APPLICATIONS = {
    "vgg16": ("VGG16", (1 / 127.5, -1.0)),
    "resnet50": ("ResNet50", (1 / 127.5, -1.0)),
    "mobilenet_v3_small": ("MobileNetV3Small", None),
    "mobilenet_v3_large": ("MobileNetV3Large", None),
    "efficientnet_b0": ("EfficientNetB0", None),
}


def _small_cnn(inputs):
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        # Fast-moving statistics: the demo trains for a few hundred steps only.
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.MaxPooling2D()(x)
    return keras.layers.GlobalAveragePooling2D()(x)


def build_model(name: str, num_classes: int, image_size: int, weights: str | None = None) -> keras.Model:
    """``name`` with a softmax head for ``num_classes``. The backbone starts from ``weights`` (a local
    weights file) or untrained: nothing is ever downloaded."""
    check_model(name, image_size)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    if name == "small_cnn":
        features = _small_cnn(inputs)
    else:
        constructor, scaling = _APPLICATIONS[name]
        x = keras.layers.Rescaling(*scaling)(inputs) if scaling else inputs
        backbone = getattr(keras.applications, constructor)(
            include_top=False, weights=weights, input_shape=(image_size, image_size, 3), pooling="avg"
        )
        features = backbone(x)
    x = keras.layers.Dropout(0.2)(features)
    # float32 head so the softmax stays stable under mixed precision.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)

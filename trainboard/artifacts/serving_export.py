"""The serving export of a model: a SavedModel any TF Serving or KServe can serve without trainboard.

    <model dir>/serving/1/saved_model.pb   KServe's layout: <storageUri>/<integer version>/ (its
                                           `tensorflow` runtime runs TF Serving, which loads the
                                           highest integer version under the base path)
    <model dir>/serving_example.png|jpg    the first image of the run's test split, as stored: what
                                           `trainboard serve`'s printed curl sends

Its ``serving_default`` takes a batch of encoded images (``image_bytes``, JPEG or PNG; in TF Serving's
REST JSON ``{"b64": "..."}``), decodes and resizes them inside the graph exactly as the test split is read
(trainboard/artifacts/dataset.py, read_split), applies the model (its preprocessing is a layer of it) and
returns ``probabilities`` (batch x classes) and ``classes`` (the class names, one row per image).

Written once, beside the model, when the model is saved; evaluate checks that it predicts what the Keras
model predicts (check_serving_export), so what is promoted and served is what was evaluated.
Keras and TensorFlow are imported when an export is written or checked, not with this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trainboard import storage

if TYPE_CHECKING:
    import keras
    import numpy as np

SERVING_DIR = "serving"
SERVING_VERSION = 1
EXAMPLE_IMAGE = "serving_example"
INPUT_NAME = "image_bytes"  # TF Serving's REST API: a string input whose JSON values are {"b64": ...}
# The largest difference of any class probability between the export and the Keras model on the test
# split that evaluate accepts: the same float32 graph run by another caller differs by rounding only
# (about 1e-6 measured on this project's models); a wrong resize or a lost preprocessing layer moves
# probabilities by far more than this.
TOLERANCE = 1e-4


class ServingExportMismatch(Exception):
    """The serving export does not predict what the Keras model predicts: it must not be promoted."""


def serving_dir(model_dir: str) -> str:
    """The export's base path (a KServe storageUri): ``<model dir>/serving``."""
    return storage.join(model_dir, SERVING_DIR)


def write_serving_export(model: keras.Model, class_names: list[str], image_size: int, out: Path) -> Path:
    """Write the export under ``out/serving/<version>``; the version folder."""
    import keras
    import tensorflow as tf

    names = tf.constant(class_names)

    def decode(encoded: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        image = tf.image.resize(image, (image_size, image_size))
        return tf.cast(tf.cast(tf.round(image), tf.uint8), tf.float32)  # as read_split feeds training

    def serve(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        images = tf.map_fn(
            decode, image_bytes, fn_output_signature=tf.TensorSpec((image_size, image_size, 3), tf.float32)
        )
        probabilities = tf.cast(model(images, training=False), tf.float32)
        classes = tf.tile(names[tf.newaxis, :], [tf.shape(image_bytes)[0], 1])
        return {"probabilities": probabilities, "classes": classes}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, [tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
    version_dir = out / SERVING_DIR / str(SERVING_VERSION)
    archive.write_out(str(version_dir), verbose=False)
    return version_dir


def write_example_image(dataset_dir: str, out: Path) -> Path:
    """The first test image of ``dataset_dir`` as its file (PNG or JPEG), beside the export."""
    from trainboard.artifacts.dataset import read_encoded

    encoded = read_encoded(dataset_dir, "test", limit=1)[0]
    path = out / (EXAMPLE_IMAGE + (".png" if encoded.startswith(b"\x89PNG") else ".jpg"))
    path.write_bytes(encoded)
    return path


def example_image(model_dir: str) -> str | None:
    """Where the model's example image is (local or gs://), or None (a model from before it was kept)."""
    for suffix in (".png", ".jpg"):
        uri = storage.join(model_dir, EXAMPLE_IMAGE + suffix)
        if storage.exists(uri):
            return uri
    return None


def check_serving_export(model_dir: str | Path, encoded_images: list[bytes], expected: np.ndarray) -> float:
    """Run the export of the (local) ``model_dir`` on ``encoded_images`` and compare its probabilities
    with ``expected`` (the Keras model's on the same images); the largest difference, or
    ServingExportMismatch naming the first image that differs by more than TOLERANCE."""
    import numpy as np
    import tensorflow as tf

    version_dir = Path(model_dir) / SERVING_DIR / str(SERVING_VERSION)
    if not (version_dir / "saved_model.pb").is_file():
        raise ServingExportMismatch(f"{version_dir} holds no saved_model.pb: the model has no serving export")
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    batches = [
        serve(**{INPUT_NAME: tf.constant(encoded_images[start : start + 64])})["probabilities"].numpy()
        for start in range(0, len(encoded_images), 64)
    ]
    served = np.concatenate(batches) if batches else np.zeros_like(expected)
    if served.shape != expected.shape:
        raise ServingExportMismatch(
            f"{version_dir} returned probabilities of shape {served.shape}, the Keras model {expected.shape}"
        )
    difference = np.abs(served - expected).max(axis=1) if len(served) else np.zeros(0)
    worst = float(difference.max()) if len(difference) else 0.0
    if worst > TOLERANCE:
        first = int(np.argmax(difference > TOLERANCE))
        raise ServingExportMismatch(
            f"{version_dir} predicts differently from the Keras model: test image {first} differs by "
            f"{difference[first]:.2g} in a class probability (tolerance {TOLERANCE:g}); not promotable"
        )
    return worst

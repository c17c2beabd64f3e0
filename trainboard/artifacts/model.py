"""The Model artifact: written by train, read by evaluate (this run's model and the champion's).

    <dir>/model.keras             the Keras model (architecture, weights, optimizer state)
    <dir>/saved_model/            a SavedModel of the Keras model (float pixels at the model's size)
    <dir>/serving/1/              the serving export: encoded images in, probabilities and class names out
                                  (trainboard/artifacts/serving_export.py)
    <dir>/trainboard_model.json   ModelInfo: architecture, image size, class names, epochs, run

Keras is imported when a model is saved or loaded, not with this module: ModelInfo reads without it.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trainboard import storage
from trainboard.artifacts.serving_export import write_serving_export

if TYPE_CHECKING:
    import keras

MODEL_FILE = "model.keras"
MODEL_INFO_FILE = "trainboard_model.json"
SAVED_MODEL_DIR = "saved_model"


@dataclass
class ModelInfo:
    model: str
    image_size: int
    class_names: list[str]
    epochs: int  # epochs trained, resumed attempts included
    best_val_accuracy: float
    run: str
    log_bytes: int = 0  # TensorBoard log bytes this attempt wrote
    log_bytes_uploaded: int = 0  # and sent to the root: close to log_bytes, however often it synced
    # What the promotion report compares with the champion's, and the trend plots (0 / empty in a model
    # trained before they were recorded):
    images_per_second: float = 0.0  # training throughput of the steady-state epochs
    settings: dict = field(default_factory=dict)  # what the run was started with: hyperparameters, data
    class_counts: dict[str, list[int]] = field(default_factory=dict)  # split -> examples per class
    image: str = ""  # the component image it was trained in
    # Why the race stopped it early, as RaceStop.to_json() writes it (race_stop.py); empty: it was not.
    stopped: dict = field(default_factory=dict)


def steady_images_per_second(train_examples: int, epoch_seconds: list[float]) -> float:
    """Training throughput: the examples of an epoch over the median training time of the epochs after the
    first (which also traces and fills caches; the median passes over a phase's first epoch too)."""
    steady = epoch_seconds[1:] or epoch_seconds
    seconds = statistics.median(steady) if steady else 0.0
    return train_examples / seconds if seconds > 0 else 0.0


def save_model(model: keras.Model, info: ModelInfo, out: Path) -> None:
    """The Model artifact: ``model.keras``, its SavedModel, the serving export and trainboard_model.json."""
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / MODEL_FILE)
    model.export(str(out / SAVED_MODEL_DIR), verbose=False)
    write_serving_export(model, info.class_names, info.image_size, out)
    (out / MODEL_INFO_FILE).write_text(json.dumps(asdict(info), indent=2))


def read_model_info(model_dir: str | Path) -> ModelInfo:
    return ModelInfo(**json.loads((Path(model_dir) / MODEL_INFO_FILE).read_text()))


def model_metadata(model_dir: str) -> dict:
    """What ``model_dir``'s trainboard_model.json holds, as it is (a model from before a field was added
    lacks it), local or in a bucket; {} when it is missing or unreadable. For reports, not decisions."""
    uri = storage.join(model_dir, MODEL_INFO_FILE)
    try:
        data = json.loads(storage.read_bytes(uri)) if storage.exists(uri) else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_trained(model_dir: str | Path) -> tuple[keras.Model, ModelInfo]:
    """The trained model, for inference: not compiled (its optimizer state is of no use there, and a
    mixed_float16 model's loss-scale optimizer would not load outside that policy)."""
    import keras

    return keras.models.load_model(Path(model_dir) / MODEL_FILE, compile=False), read_model_info(model_dir)

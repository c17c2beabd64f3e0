"""The Kubeflow Model Registry: a promotion registers its model as a version, a rollback moves the champion.

With the ``model_registry`` parameter (the registry's URL), a promotion registers, with the
``model-registry`` client (0.3.8: API /api/model_registry/v1alpha3 of kubeflow/hub v0.3.8), the version
``<run>`` of the registered model named after the pipeline and the team's root, whose artifact is the
serving export (``models/<run>/serving``, a KServe storageUri) where there is one, else the model folder;
format ``tensorflow`` at the TensorFlow version of this image (the one train ran in). Custom properties:
the test accuracy, the data's fingerprint, the KFP run, the TensorBoard link, and ``champion`` (true on
the champion's version, false on the one it replaced; a rollback moves it back the same way).

Never at the promotion's expense: everything runs in one background thread given REGISTRY_SECONDS in all;
a failure or a registry that does not answer in time is one line for the promotion's report and the
notification, and the promotion stands. The token is a secret, as the webhook URL is: from the
environment (``trainboard local``), else the Kubernetes Secret SECRET_NAME mounted on the promote task.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
import urllib.parse
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainboard import layout, storage
from trainboard.artifacts.champion import ChampionRecord
from trainboard.artifacts.serving_export import SERVING_DIR
from trainboard.config import PromotionRule
from trainboard.links import kfp_run_url, tensorboard_run_url

TOKEN_ENV = "TRAINBOARD_MODEL_REGISTRY_TOKEN"
SECRET_NAME, SECRET_DIR, TOKEN_KEY = "trainboard-model-registry", "/etc/trainboard-model-registry", "token"
REGISTRY_SECONDS = 20.0
CHAMPION = "champion"
AUTHOR = "trainboard"
MODEL_FORMAT = "tensorflow"
API_PATH = "/api/model_registry/v1alpha3"  # the client's (model-registry 0.3.8) and the server's v0.3.8
KFP_URL_ENV = "TRAINBOARD_KFP_URL"  # the notification's (components/notify)


@dataclass(frozen=True)
class Registration:
    """What a promoted run's version says of it."""

    run: str
    test_accuracy: float
    data_fingerprint: str = ""
    kfp_run: str = ""
    tensorboard: str = ""
    replaced: str = ""  # the champion it replaced: its version's champion mark goes false

    @classmethod
    def of(
        cls, run: str, accuracy: float, model: dict, *, job_id: str, tensorboard_url: str, replaced: str
    ) -> Registration:
        """``model``: the model's metadata (trainboard_model.json); the KFP run as a link where the
        notification's KFP URL is set here, else its id."""
        kfp_url = os.environ.get(KFP_URL_ENV, "")
        return cls(
            run,
            accuracy,
            data_fingerprint=str(model.get("settings", {}).get("dataset_fingerprint", "")),
            kfp_run=kfp_run_url(kfp_url, job_id) if kfp_url and job_id else job_id,
            tensorboard=tensorboard_run_url(tensorboard_url, run) if tensorboard_url else "",
            replaced=replaced,
        )


def registered_model_name(root: str) -> str:
    """One registered model per team: the pipeline's name and the team's root."""
    return f"trainboard {root}"


def model_uri(root: str, run: str) -> str:
    """The serving export of the promoted model where it has one, else the model folder."""
    export = storage.join(layout.model_dir(root, run), SERVING_DIR)
    return export if storage.list_files(export) else layout.model_dir(root, run)


def tensorflow_version() -> str:
    """The TensorFlow of this image (train's image: the same component image), without importing it."""
    for distribution in ("tensorflow", "tensorflow-cpu"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def register_promotion(url: str, root: str, registration: Registration) -> str:
    """Register the promoted run's version; "" when done (or no registry), else one line saying why not."""
    if not url:
        return ""
    properties: dict[str, Any] = {
        "test_accuracy": registration.test_accuracy,
        "data_fingerprint": registration.data_fingerprint,
        "kfp_run": registration.kfp_run,
        "tensorboard": registration.tensorboard,
        CHAMPION: True,
    }

    def register(client: Any) -> None:
        client.register_model(
            registered_model_name(root),
            model_uri(root, registration.run),
            version=registration.run,
            model_format_name=MODEL_FORMAT,
            model_format_version=tensorflow_version(),
            metadata={name: value for name, value in properties.items() if value != ""},
        )
        _set_champion(client, root, registration.replaced, False)

    return _bounded(url, register, f"version {registration.run} not registered")


def mark_champion(url: str, root: str, champion: str, replaced: str) -> str:
    """After a rollback: ``champion``'s version marked champion again, ``replaced``'s no longer; "" when
    done (or no registry), else one line saying why not."""
    if not url:
        return ""

    def mark(client: Any) -> None:
        _set_champion(client, root, champion, True)
        _set_champion(client, root, replaced, False)

    return _bounded(url, mark, f"champion mark not moved to {champion}")


def _set_champion(client: Any, root: str, run: str, champion: bool) -> None:
    """The champion mark of ``run``'s version (a run promoted before the registry was set has none)."""
    if not run:
        return
    version = client.get_model_version(registered_model_name(root), run)
    if version is not None:
        version.custom_properties = {**(version.custom_properties or {}), CHAMPION: champion}
        client.update(version)


def token() -> str:
    value = os.environ.get(TOKEN_ENV, "")
    if not value:
        try:
            value = Path(SECRET_DIR, TOKEN_KEY).read_text()
        except OSError:
            value = ""
    return value.strip()


def _client(url: str) -> Any:
    from model_registry import ModelRegistry  # only where a registry is configured

    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "https"
    with warnings.catch_warnings():
        # Without a token it warns "User access token is missing" each time: a registry without auth is
        # a setup this supports, and one that wants a token refuses in the report's line.
        warnings.filterwarnings("ignore", message="User access token is missing", category=UserWarning)
        return ModelRegistry(
            f"{parts.scheme}://{parts.hostname}",
            parts.port or (443 if secure else 80),
            author=AUTHOR,
            is_secure=secure,
            user_token=token() or None,
            log_level=logging.ERROR,  # its port hints are noise here: a failure is reported as one line
        )


def _bounded(url: str, work: Callable[[Any], None], failed: str) -> str:
    """``work`` on a client of ``url`` in a background thread, waited for REGISTRY_SECONDS at most."""
    outcome: list[str] = []

    def run() -> None:
        try:
            work(_client(url))
            outcome.append("")
        except Exception as e:  # whatever the registry or its client does, the caller goes on
            outcome.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")

    thread = threading.Thread(target=run, name="trainboard-model-registry", daemon=True)
    thread.start()
    thread.join(REGISTRY_SECONDS)
    problem = outcome[0] if outcome else f"no answer in {REGISTRY_SECONDS:g} s"
    return f"Model Registry at {url}: {failed}: {problem}" if problem else ""


def register_promoted(
    root: str,
    run: str,
    rule: PromotionRule,
    links: tuple[str, str],
    *,
    model: dict,
    accuracy: float,
    previous: ChampionRecord | None,
) -> str:
    """promote's one call: the promoted ``run`` registered at ``rule.model_registry``, taking the champion
    mark from ``previous``; ``links``: the KFP job id and the team TensorBoard's URL; ``model``: the
    model's metadata."""
    job_id, tensorboard_url = links
    registration = Registration.of(
        run,
        accuracy,
        model,
        job_id=job_id,
        tensorboard_url=tensorboard_url,
        replaced=previous.run if previous else "",
    )
    return register_promotion(rule.model_registry, root, registration)

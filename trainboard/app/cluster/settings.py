"""Where trainboard finds the team's Kubeflow Pipelines and TensorBoard: flags, then environment, then
a config file, then defaults.

The config file is TOML, ``$TRAINBOARD_CONFIG`` or ``~/.config/trainboard/config.toml``
(``$XDG_CONFIG_HOME`` honoured)::

    endpoint = "https://kubeflow.example.com/pipeline"
    token = "..."            # or KF_PIPELINES_TOKEN; keep this file chmod 600
    namespace = "team-vision"  # multi-user Kubeflow: the profile namespace
    experiment = "trainboard"
    service_account = "trainboard-runner"
    tensorboard_url = "https://tensorboard.example.com"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from trainboard.checks import check_http_url
from trainboard.errors import UsageError

# The environment variable kfp's own Client and CLI read for the endpoint; the others are trainboard's.
ENVIRONMENT = {
    "endpoint": "KF_PIPELINES_ENDPOINT",
    "token": "KF_PIPELINES_TOKEN",
    "tensorboard_url": "TRAINBOARD_TENSORBOARD_URL",
    "namespace": "TRAINBOARD_NAMESPACE",
}
CONFIG_ENV = "TRAINBOARD_CONFIG"


@dataclass(frozen=True)
class ClusterSettings:
    endpoint: str = ""
    token: str = ""
    experiment: str = "trainboard"
    service_account: str = ""
    tensorboard_url: str = ""
    namespace: str = ""  # multi-user Kubeflow; kfp's saved context namespace when not set
    # The config file the token came from (for the warning when others can read it); not a setting.
    token_file: str = field(default="", metadata={"internal": True})
    skip_version_check: bool = field(default=False, metadata={"internal": True})  # a flag only


def setting_names() -> list[str]:
    return [f.name for f in fields(ClusterSettings) if not f.metadata.get("internal")]


def config_path(given: str | None = None) -> tuple[Path, str]:
    """``given`` (--config), else ``$TRAINBOARD_CONFIG``, else the per-user file; with the field that
    named it ("" for the per-user file, which may be missing)."""
    if given:
        return Path(given), "config"
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]), CONFIG_ENV
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home) / "trainboard" / "config.toml", ""


def _read_config(path: Path, named_by: str) -> dict[str, str]:
    """The settings in ``path``; ``named_by``: the field that named it (config, TRAINBOARD_CONFIG), when
    the file must exist, or "" for the per-user file, which may be missing."""
    field = named_by or "config"
    if path.is_dir():
        raise UsageError(field, f"{path} is a folder; expected a TOML file")
    if not path.is_file():
        if named_by:
            raise UsageError(field, f"{path} does not exist; expected a TOML file")
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise UsageError(field, f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(field, f"{path} is not valid TOML: {e}") from None
    known = setting_names()
    for key, value in values.items():
        if key not in known:
            raise UsageError(field, f"{path}: unknown setting {key!r}; allowed: {', '.join(known)}")
        if not isinstance(value, str):
            raise UsageError(field, f"{path}: {key} must be a string, got {value!r}")
    return values


def load_settings(config_file: str | None = None, **flags: str | None) -> ClusterSettings:
    """Each setting from its flag (None when not given), else its environment variable, else the config
    file (``config_file`` must exist when given), else the default. The endpoint is required; URLs are
    checked."""
    path, named_by = config_path(config_file)
    config = _read_config(path, named_by)
    values: dict[str, Any] = {}  # ClusterSettings' fields by name: the settings found, all str
    for name in setting_names():
        for candidate in (flags.get(name), os.environ.get(ENVIRONMENT.get(name, "")), config.get(name)):
            if candidate:
                values[name] = candidate
                break
    if values.get("token") and values["token"] == config.get("token"):
        values["token_file"] = str(path)
    if not values.get("namespace"):
        from trainboard.app.cluster.auth import kfp_context

        values["namespace"] = str(kfp_context().get("namespace") or "")
    settings = ClusterSettings(**values)
    if not settings.endpoint:
        raise UsageError(
            "endpoint",
            f"no Kubeflow Pipelines endpoint; pass --endpoint URL, set {ENVIRONMENT['endpoint']}, "
            f'or put endpoint = "URL" in {path}',
        )
    return replace(
        settings,
        endpoint=check_http_url("endpoint", settings.endpoint),
        tensorboard_url=settings.tensorboard_url
        and check_http_url("tensorboard_url", settings.tensorboard_url),
    )

"""How trainboard authenticates to Kubeflow Pipelines, as kfp.Client does, with the same credentials for
its own health check and for the client.

In order: a user and password in the endpoint URL (https://USER:PASSWORD@HOST, sent as HTTP basic
auth and never shown: every message and link shows the URL without them); a token given as a setting
(--token, KF_PIPELINES_TOKEN, the config file; refused beside the URL's user and password: which one is
meant?); the in-cluster service-account token (``KF_PIPELINES_SA_TOKEN_PATH``, else kfp's default path, as
kfp.client.ServiceAccountTokenVolumeCredentials reads it); the session cookie kfp's own CLI saved in
``~/.config/kfp/context.json`` (kfp-sdk sdk/python/kfp/client/client.py, 2.x); else none.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import stat
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainboard.errors import UsageError

SA_TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
SA_TOKEN_DEFAULT = "/var/run/secrets/kubeflow/pipelines/token"


def kfp_context_path() -> Path:
    return Path.home() / ".config" / "kfp" / "context.json"


def kfp_context() -> dict:
    """kfp's saved context (namespace, client_authentication_cookie); {} when absent or unreadable."""
    try:
        context = json.loads(kfp_context_path().read_text())
    except (OSError, ValueError):
        return {}
    return context if isinstance(context, dict) else {}


@dataclass(frozen=True)
class Credentials:
    source: str  # what the credentials came from, for messages (never the secret itself)
    token: str = ""
    cookies: str = ""
    basic: str = ""  # base64 of USER:PASSWORD, from the endpoint URL

    def headers(self) -> dict[str, str]:
        if self.basic:
            return {"Authorization": f"Basic {self.basic}"}
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        return {"Cookie": self.cookies} if self.cookies else {}

    def client_arguments(self) -> dict[str, Any]:
        """kfp.Client's keyword arguments for the same credentials."""
        if self.basic:
            return {"credentials": _BasicAuth(self.basic)}
        if self.token:
            return {"existing_token": self.token}
        return {"cookies": self.cookies} if self.cookies else {}


@dataclass(frozen=True)
class _BasicAuth:
    """Basic auth for kfp.Client, which sends ``existing_token`` as ``Bearer`` only: the ``credentials``
    hook (kfp 2.17.3 kfp/client/client.py, Client._load_config) is called by the generated client before
    each request, its own health check in the constructor included (kfp_server_api/configuration.py,
    get_api_key_with_prefix), and sets the header's value and prefix."""

    basic: str

    def refresh_api_key_hook(self, config: Any) -> None:
        config.api_key["authorization"] = self.basic
        config.api_key_prefix["authorization"] = "Basic"


def credentials(token: str, endpoint: str = "") -> Credentials:
    parts = urllib.parse.urlsplit(endpoint)
    if parts.username is not None or parts.password is not None:
        if token:
            raise UsageError(
                "token",
                f"{without_userinfo(endpoint)}: the endpoint URL carries a user and password (basic auth) "
                "and a token is set too; keep one",
            )
        pair = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
        return Credentials(
            "the endpoint URL's user and password", basic=base64.b64encode(pair.encode()).decode()
        )
    if token:
        return Credentials("the token setting", token=token)
    path = Path(os.environ.get(SA_TOKEN_ENV) or SA_TOKEN_DEFAULT)
    if path.is_file():
        return Credentials(f"the service-account token {path}", token=path.read_text().strip())
    cookie = kfp_context().get("client_authentication_cookie")
    if cookie:
        return Credentials(f"kfp's saved session ({kfp_context_path()})", cookies=cookie)
    return Credentials("none")


def without_userinfo(url: str) -> str:
    """``url`` with any user:password@ removed: what messages and links may show."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warnings(endpoint: str, creds: Credentials, token_file: Path | None) -> list[str]:
    """Where the credentials are exposed: sent in clear text off this machine, or in a file others read."""
    found = []
    parts = urllib.parse.urlsplit(endpoint)
    if (
        (creds.token or creds.cookies or creds.basic)
        and parts.scheme == "http"
        and not _is_loopback(parts.hostname or "")
    ):
        found.append(
            f"credentials ({creds.source}) go to {without_userinfo(endpoint)} over plain http://; "
            "anyone on the path can read them: use https://"
        )
    if token_file is not None and token_file.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        found.append(f"{token_file} holds a token and others can read it: chmod 600 {token_file}")
    return found

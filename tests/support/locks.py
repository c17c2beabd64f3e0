"""The exact versions of requirements/runtime.lock and test.lock, by canonical name (PEP 503)."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements"


def locked_versions() -> dict[str, str]:
    versions = {}
    for lock in ("runtime.lock", "test.lock"):
        for line in (REQUIREMENTS / lock).read_text().splitlines():
            name, _, version = line.partition("==")
            versions[canonicalize_name(name)] = version
    return versions

"""Custom resources' schemas from tests/crd_schemas/, strict: refusing the fields a CRD does not declare,
which the API server would prune without a word (a field renamed between releases would vanish)."""

from __future__ import annotations

from pathlib import Path

import yaml

CRD_SCHEMAS = Path(__file__).parents[1] / "crd_schemas"


def strict(schema: object) -> object:
    """``schema`` with additionalProperties false wherever it lists properties and does not keep
    unknown fields (x-kubernetes-preserve-unknown-fields)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


def strict_schema(name: str) -> dict:
    """The strict openAPIV3Schema of tests/crd_schemas/NAME.yaml (e.g. trainjobs.trainer.kubeflow.org);
    metadata is the API server's ObjectMeta, not checked here."""
    doc = yaml.safe_load((CRD_SCHEMAS / f"{name}.yaml").read_text())
    schema = strict(doc["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    return schema

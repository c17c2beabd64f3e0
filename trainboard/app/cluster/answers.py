"""What is wrong with an answer of the Kubeflow Pipelines API, read before anything trusts it: bytes that
are not UTF-8, text that is not JSON, JSON of another shape than the route's model in the generated client
(kfp_server_api 2.17.3, ``openapi_types`` of each model in kfp_server_api/models/). Each check returns
what is wrong in words, never the answer itself (it may hold anything, escape codes included), or ""."""

from __future__ import annotations

import json
import re
from typing import Any

# The JSON the generated client's primitive type names (ApiClient.NATIVE_TYPES_MAPPING) take: the
# client types int64 fields (max_concurrency) as str, and they come as JSON strings (proto3's JSON
# mapping) or numbers (an echo of what the client sent), so a number for a str and a string for a number.
_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str, int, float),
    "int": (int, str),
    "long": (int, str),
    "float": (int, float, str),
    "bool": (bool,),
    "date": (str,),
    "datetime": (str,),
}


def not_a_json_object(data: bytes | str) -> str:
    """Every v2beta1 route answers a JSON object (an empty one for a delete)."""
    if isinstance(data, bytes):
        try:
            data = data.decode()
        except UnicodeDecodeError:
            return "bytes that are not UTF-8 text"
    try:
        answer = json.loads(data)
    except ValueError:
        return "text that is not JSON (a login page?)"
    if not isinstance(answer, dict):
        return f"a JSON {_kind(answer).split()[-1]} where an object belongs"
    return ""


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )


def shape_problem(data: Any, model: str, where: str = "") -> str:
    """Where ``data`` (parsed JSON) is not of the generated client's type ``model`` (``V2beta1Run``,
    ``list[V2beta1Experiment]``, ...): a list where a list belongs, an object where a model belongs,
    a scalar where a scalar belongs, recursively; fields the model does not know are left alone."""
    import kfp_server_api.models

    if data is None or model == "object":
        return ""
    items: list[tuple[str, Any, str]]  # (where, value, its type) to check in turn
    wanted: type
    if match := re.fullmatch(r"list\[(.*)\]", model):
        wanted, items = list, [(f"{where}[{i}]", item, match[1]) for i, item in enumerate(data)]
    elif match := re.fullmatch(r"dict\(([^,]*), (.*)\)", model):
        wanted, items = dict, [(_at(where, k), v, match[2]) for k, v in _pairs(data)]
    elif model in _PRIMITIVES:
        return (
            "" if isinstance(data, _PRIMITIVES[model]) else f"{_named(where)} is {_kind(data)}, not a {model}"
        )
    elif (fields := getattr(kfp_server_api.models, model, None)) is None or not fields.openapi_types:
        # an enum's model (a string), or a type this client does not know: anything but a list or object
        return f"{_named(where)} is {_kind(data)}, not a {model}" if isinstance(data, dict | list) else ""
    else:
        names = {json_name: name for name, json_name in fields.attribute_map.items()}
        wanted = dict
        items = [(_at(where, k), v, fields.openapi_types[names[k]]) for k, v in _pairs(data) if k in names]
    if not isinstance(data, wanted):
        return f"{_named(where)} is {_kind(data)}, not {'a list' if wanted is list else 'an object'}"
    return next((problem for item in items if (problem := shape_problem(item[1], item[2], item[0]))), "")


def _pairs(data: Any) -> list[tuple[str, Any]]:
    return list(data.items()) if isinstance(data, dict) else []


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _named(where: str) -> str:
    return f"`{where}`" if where else "the answer"

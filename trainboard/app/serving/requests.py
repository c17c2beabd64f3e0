"""What a predict request asks for: the encoded images of a V1 (TF Serving's REST body) or a V2 (Open
Inference Protocol) request, checked before anything runs, with one line for each way it can be wrong."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

MAX_BODY_BYTES = 8 * 1024 * 1024  # a request body larger than this is refused before it is read whole
MAX_INSTANCES = 256  # images in one request: enough for any batch, small enough to answer in seconds
INPUT_NAME = "image_bytes"  # the serving export's input (trainboard/artifacts/serving_export.py)
_JPEG, _PNG = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


class BadRequest(ValueError):
    """A request the server refuses with a 400: one line saying what is wrong and what is allowed."""


def v1_images(body: Any) -> list[bytes]:
    """The images of ``{"instances": [{"b64": "..."}, ...]}`` (or TF Serving's columnar ``{"inputs":
    ...}`` form with one input). A body sent without Content-Type: application/json (curl -d's default)
    arrives as bytes from KServe (kserve/protocol/dataplane.py, decode): read as JSON here, as TF Serving
    would."""
    if isinstance(body, bytes):
        try:
            body = json.loads(body)
        except ValueError as e:
            raise BadRequest(f"the body is not JSON ({e})") from None
    if not isinstance(body, dict) or not ({"instances", "inputs"} & body.keys()):
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise BadRequest(f'expected a JSON object with "instances": [{{"b64": "..."}}, ...]; got {keys}')
    field = "instances" if "instances" in body else "inputs"
    instances = body[field]
    if isinstance(instances, dict) and set(instances) == {INPUT_NAME}:  # {"inputs": {"image_bytes": [...]}}
        instances = instances[INPUT_NAME]
    if not isinstance(instances, list):
        raise BadRequest(f'"{field}" must be a list of {{"b64": "..."}} objects')
    _check_count(field, instances)
    return [_v1_image(field, i, instance) for i, instance in enumerate(instances)]


def _v1_image(field: str, index: int, instance: Any) -> bytes:
    if isinstance(instance, dict) and set(instance) == {INPUT_NAME}:  # {"image_bytes": {"b64": ...}}
        instance = instance[INPUT_NAME]
    if not isinstance(instance, dict) or set(instance) != {"b64"} or not isinstance(instance["b64"], str):
        raise BadRequest(
            f'{field}[{index}] must be {{"b64": "<base64 of a JPEG or PNG file>"}}, not {_brief(instance)}'
        )
    return image_bytes(f"{field}[{index}].b64", instance["b64"])


def v2_images(inputs: list) -> list[bytes]:
    """The images of a V2 request's one BYTES input (named image_bytes), each element the base64 of a
    JPEG or PNG file (JSON cannot carry raw bytes)."""
    names = [i.name for i in inputs]
    if len(inputs) != 1 or inputs[0].datatype != "BYTES":
        raise BadRequest(f'expected one input "{INPUT_NAME}" of datatype BYTES; got {names or "none"}')
    data = inputs[0].data
    data = data.tolist() if hasattr(data, "tolist") else list(data)
    _check_count(f"inputs[0] ({names[0]})", data)
    images = []
    for i, element in enumerate(data):
        text = element.decode("ascii", "replace") if isinstance(element, bytes) else element
        if not isinstance(text, str):
            raise BadRequest(
                f"inputs[0].data[{i}] must be the base64 of a JPEG or PNG file, not {_brief(text)}"
            )
        images.append(image_bytes(f"inputs[0].data[{i}]", text))
    return images


def _check_count(field: str, instances: list) -> None:
    if not instances:
        raise BadRequest(f"{field} is empty: send 1 to {MAX_INSTANCES} images")
    if len(instances) > MAX_INSTANCES:
        raise BadRequest(f"{field} has {len(instances)} images; at most {MAX_INSTANCES} per request")


def image_bytes(where: str, text: str) -> bytes:
    """The file ``text`` is the base64 of, if it begins as a JPEG or PNG file does; a truncated or damaged
    one is found when it is decoded."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where} is not valid base64") from None
    if not data.startswith((_JPEG, _PNG)):
        raise BadRequest(f"{where} is not a JPEG or PNG image (it begins {data[:8]!r})")
    return data


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

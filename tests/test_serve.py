"""`trainboard serve`: the champion's serving export behind KServe's real model server, queried over HTTP
on loopback: the printed curl answers, V1 and V2, a promotion and a rollback are served without a restart
or a failed request, bad requests get a 400 with one line and the server keeps answering."""

from __future__ import annotations

import base64
import io
import json
import shlex
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.support.cli import in_process
from tests.support.promotion import metrics_with_accuracy
from tests.support.serving import free_port, post, start_serve, stop, two_models
from trainboard.admin.rollback import rollback
from trainboard.app.serving.requests import MAX_BODY_BYTES, MAX_INSTANCES
from trainboard.artifacts.model import load_trained
from trainboard.artifacts.serving_export import example_image
from trainboard.components.promote.core import promote
from trainboard.config import PromotionRule


@pytest.fixture(scope="module")
def served(demo_data, tmp_path_factory):
    """A root whose champion is model a, and `trainboard serve` on it: (root, models, port, printed)."""
    out = tmp_path_factory.mktemp("serve")
    a, b = two_models(demo_data, out)
    root = str(out / "root")
    promote(root, "a", a, metrics_with_accuracy(0.5), rule=PromotionRule())
    port = free_port()
    proc, printed = start_serve(root, port, out / "serve.log")
    yield root, {"a": a, "b": b}, port, printed
    stop(proc)


def keras_probabilities(model_dir: str, image: bytes) -> list[float]:
    model, info = load_trained(model_dir)
    pixels = tf.image.resize(
        tf.io.decode_image(image, channels=3, expand_animations=False), [info.image_size] * 2
    )
    batch = tf.cast(tf.round(pixels), tf.uint8)[tf.newaxis]
    return model.predict_on_batch(tf.cast(batch, tf.float32))[0].tolist()


def v1(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/models/champion:predict"


def png(size: int = 1) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.slow
def test_the_printed_curl_answers_with_the_champions_probabilities_and_class_names(served):
    _, models, port, printed = served
    [curl] = [line.strip() for line in printed if line.strip().startswith("curl ")]
    assert any(v1(port) in line for line in printed), printed
    answer = json.loads(subprocess.run(shlex.split(curl), capture_output=True, check=True, timeout=60).stdout)
    [prediction] = answer["predictions"]
    image = open(example_image(models["a"]), "rb").read()  # noqa: SIM115 (read whole)
    np.testing.assert_allclose(
        prediction["probabilities"], keras_probabilities(models["a"], image), atol=1e-4
    )
    assert prediction["classes"] == ["circle", "square", "triangle", "cross"]
    assert answer["model_version"] == "a"
    log = (Path(served[0]).parent / "serve.log").read_text()  # its stderr: quiet unless --verbose
    assert "INFO" not in log and "kserve.trace" not in log and "Warning" not in log, log[-2000:]


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on at ``port`` (/proc/net/tcp: hex address:port, state 0A)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


@pytest.mark.slow
def test_serve_listens_on_this_machine_only_unless_told(served):
    """KServe's own server binds every address; `trainboard serve` binds --host, loopback by default: a
    model with no authentication in front is not offered to the network by a laptop command."""
    _, _, port, _ = served
    assert listening_addresses(port) == {"127.0.0.1"}


@pytest.mark.slow
def test_v2_takes_the_images_as_base64_bytes_and_returns_probabilities_and_classes(served):
    _, models, port, _ = served
    image = base64.b64encode(png(40)).decode()
    body = {"inputs": [{"name": "image_bytes", "shape": [2], "datatype": "BYTES", "data": [image, image]}]}
    status, answer = post(f"http://127.0.0.1:{port}/v2/models/champion/infer", json.dumps(body).encode())
    assert status == 200, answer
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["probabilities"]["shape"] == [2, 4] and outputs["classes"]["shape"] == [2, 4]
    expected = keras_probabilities(models["a"], png(40))
    np.testing.assert_allclose(outputs["probabilities"]["data"][:4], expected, atol=1e-4)
    assert outputs["classes"]["data"][:4] == ["circle", "square", "triangle", "cross"]


@pytest.mark.slow
def test_v2_sent_without_a_json_content_type_gets_a_400_saying_to_send_one(served):
    import urllib.error
    import urllib.request

    _, _, port, _ = served
    url = f"http://127.0.0.1:{port}/v2/models/champion/infer"
    image = base64.b64encode(png(40)).decode()
    one = {"name": "image_bytes", "shape": [1], "datatype": "BYTES", "data": [image]}
    body = json.dumps({"inputs": [one]})
    # urllib, like curl -d, sends a body as a form unless told otherwise.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, body.encode()), timeout=60)
    assert refused.value.code == 400
    error = json.loads(refused.value.read())["error"]
    assert error == (
        "a V2 request is JSON: send it with Content-Type: application/json "
        "(got application/x-www-form-urlencoded)"
    )
    assert post(url, body.encode())[0] == 200


def bad_requests() -> dict[str, tuple[bytes, str]]:
    whole = png(40)
    b64 = base64.b64encode

    def instances(*items: object) -> bytes:
        return json.dumps({"instances": list(items)}).encode()

    return {
        "not an image": (instances({"b64": b64(b"GIF89a not a png").decode()}), "is not a JPEG or PNG image"),
        "truncated": (instances({"b64": b64(whole).decode()}, {"b64": b64(whole[:60]).decode()}), "image 1"),
        "bad base64": (instances({"b64": "not base64!"}), "instances[0].b64 is not valid base64"),
        "wrong field": (
            json.dumps({"images": [{"b64": "x"}]}).encode(),
            'expected a JSON object with "instances"',
        ),
        "wrong instance": (instances({"data": "x"}), 'instances[0] must be {"b64"'),
        "empty list": (instances(), "instances is empty"),
        "not json": (b"{not json", "Unrecognized request format"),  # KServe's own 400
        "too large": (b" " * (MAX_BODY_BYTES + 1), f"at most {MAX_BODY_BYTES}"),
        "10,000 instances": (instances(*[{"b64": b64(png()).decode()}] * 10_000), f"at most {MAX_INSTANCES}"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", list(bad_requests()))
def test_a_bad_request_gets_a_400_with_one_line_and_the_server_keeps_answering(served, case):
    _, _, port, _ = served
    body, says = bad_requests()[case]
    status, answer = post(v1(port), body)
    assert status == 400, answer
    assert says in answer["error"] and "\n" not in answer["error"], answer
    ok = json.dumps({"instances": [{"b64": base64.b64encode(png(40)).decode()}]}).encode()
    assert post(v1(port), ok)[0] == 200


@pytest.mark.slow
def test_a_promotion_and_a_rollback_are_served_without_a_restart_or_a_failed_request(served):
    root, models, port, _ = served
    body = json.dumps({"instances": [{"b64": base64.b64encode(png(40)).decode()}]}).encode()
    answers: list[tuple[int, str]] = []
    done = threading.Event()

    def client() -> None:
        while not done.is_set():
            status, answer = post(v1(port), body)
            answers.append((status, answer.get("model_version", answer.get("error"))))

    clients = [threading.Thread(target=client) for _ in range(4)]
    for c in clients:
        c.start()
    try:
        promote(root, "b", models["b"], metrics_with_accuracy(0.9), rule=PromotionRule())
        wait_for(lambda: answers and answers[-1][1] == "b")
        rollback(root, "a", reason="test")
        wait_for(lambda: answers and answers[-1][1] == "a")
    finally:
        done.set()
        for c in clients:
            c.join()
    assert {status for status, _ in answers} == {200}, [a for a in answers if a[0] != 200][:3]
    runs = [run for _, run in answers]
    assert runs[0] == "a" and "b" in runs and runs[-1] == "a"
    _, answer = post(v1(port), body)
    expected_b = keras_probabilities(models["b"], png(40))
    assert not np.allclose(answer["predictions"][0]["probabilities"], expected_b, atol=1e-3), "b differs"


def wait_for(condition, seconds: float = 60) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the new champion was not served in time"
        time.sleep(0.2)


def test_serve_on_a_root_without_a_champion_exits_2_with_one_line(capsys, tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "models").mkdir()
    code, out, err = in_process(capsys, "serve", "--root", str(tmp_path / "root"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "has no champion yet: nothing to serve" in err, err


def test_serve_on_a_port_in_use_exits_2_naming_it(capsys, tmp_path):
    import socket

    from tests.support.promotion import model_folder

    root = str(tmp_path / "root")
    promote(root, "a", model_folder(tmp_path, "a"), metrics_with_accuracy(0.5), rule=PromotionRule())
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = in_process(capsys, "serve", "--root", root, "--port", str(port))
    assert code == 2 and out == ""
    says = f"--port: {port} cannot be listened on (Address already in use); give another"
    assert err == f"trainboard serve: error: {says}\n"


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("192.0.2.1", "--host: 192.0.2.1 cannot be listened on (Cannot assign requested address)"),
        ("no-such-host.invalid", "--host: 'no-such-host.invalid' is not an address of this machine"),
    ],
)
def test_serve_on_an_address_not_of_this_machine_exits_2_naming_it(capsys, tmp_path, host, says):
    from tests.support.promotion import model_folder

    root = str(tmp_path / "root")
    promote(root, "a", model_folder(tmp_path, "a"), metrics_with_accuracy(0.5), rule=PromotionRule())
    code, out, err = in_process(capsys, "serve", "--root", root, "--host", host, "--port", str(free_port()))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"trainboard serve: error: {says}"), err

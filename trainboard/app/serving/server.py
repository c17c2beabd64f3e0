"""The champion behind KServe's model server: V1 (TF Serving's REST body) and V2 (Open Inference
Protocol) predict; a new champion (promotion or rollback) is loaded beside the old one and swapped in,
so no request fails and none waits for the load."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.errors import InvalidInput
from kserve.model_server import app

from trainboard import storage
from trainboard.app.serving.requests import MAX_BODY_BYTES, BadRequest, v1_images, v2_images
from trainboard.artifacts.champion import ChampionRecordError, read_champion
from trainboard.artifacts.serving_export import INPUT_NAME, SERVING_DIR, SERVING_VERSION

log = logging.getLogger(__name__)

MODEL_NAME = "champion"
DISCARD_BYTES = 64 * 1024 * 1024  # of a body over the limit, read and dropped before the 400; past it, closed
POLL_SECONDS = 1.0  # how often the champion record is read: a promotion is served about this much later


@dataclass(frozen=True)
class Served:
    """One champion's export, loaded: the run it is from and its serving_default."""

    run: str
    loaded: Any  # the SavedModel object: its signature's variables live as long as it does
    signature: Any

    def predict(self, images: list[bytes]) -> tuple[list[list[float]], list[str]]:
        """(probabilities per image, the class names); a truncated or damaged image is a BadRequest naming
        it (found by decoding each alone, only when the batch failed)."""
        import tensorflow as tf

        try:
            out = self.signature(**{INPUT_NAME: tf.constant(images)})
        except tf.errors.InvalidArgumentError:
            raise BadRequest(f"image {_undecodable(self.signature, images)} {_DAMAGED}") from None
        classes = [c.decode() for c in out["classes"].numpy()[0]]
        return out["probabilities"].numpy().tolist(), classes


_DAMAGED = "(counting from 0) cannot be decoded: a truncated or damaged JPEG or PNG file"


def _undecodable(signature: Any, images: list[bytes]) -> int:
    import tensorflow as tf

    for i, image in enumerate(images):
        try:
            signature(**{INPUT_NAME: tf.constant([image])})
        except tf.errors.InvalidArgumentError:
            return i
    return 0


def load_served(run: str, model_dir: str) -> Served:
    """The export of the model in ``model_dir`` (local or gs://), loaded and called once."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="trainboard-serve-") as local:
        storage.download_dir(storage.join(model_dir, SERVING_DIR), local)
        loaded = tf.saved_model.load(f"{local}/{SERVING_VERSION}")
    served = Served(run, loaded, loaded.signatures["serving_default"])
    # Called once before it answers (its graph traced, its first call's setup done), so the first
    # request after a swap is as fast as any.
    served.predict([tf.io.encode_png(tf.zeros((8, 8, 3), tf.uint8)).numpy()])
    return served


class ChampionModel(Model):
    """KServe's model: each request is answered by the champion loaded when it arrived."""

    def __init__(self, served: Served) -> None:
        super().__init__(MODEL_NAME)
        self.served = served  # replaced whole by ChampionWatch: one assignment, atomic
        self.ready = True

    def load(self) -> bool:
        self.ready = True
        return True

    async def predict(
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: Any = None
    ) -> dict | InferResponse:
        served = self.served
        v2 = isinstance(payload, InferRequest)
        try:
            images = v2_images(payload.inputs) if v2 else v1_images(payload)
            # In a thread: the event loop goes on taking requests while TensorFlow works.
            probabilities, classes = await asyncio.to_thread(served.predict, images)
        except BadRequest as e:
            raise InvalidInput(str(e)) from None
        if not v2:
            rows = [{"probabilities": p, "classes": classes} for p in probabilities]
            return {"predictions": rows, "model_version": served.run}
        flat = [p for row in probabilities for p in row]
        outputs = [
            InferOutput("probabilities", [len(probabilities), len(classes)], "FP32", flat),
            InferOutput("classes", [len(probabilities), len(classes)], "BYTES", classes * len(probabilities)),
        ]
        return InferResponse(payload.id or str(uuid.uuid4()), MODEL_NAME, outputs, model_version=served.run)


class ChampionWatch(threading.Thread):
    """Reads the champion record every POLL_SECONDS; a new champion is loaded while the old one answers,
    then swapped in. One that cannot be loaded is logged (once) and the old one goes on answering."""

    def __init__(self, model: ChampionModel, root: str) -> None:
        super().__init__(name="champion-watch", daemon=True)
        self.model, self.root = model, root
        self.failed = ""  # the run whose model last failed to load: said once, tried again each poll

    def run(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            self.check()

    def check(self) -> None:
        try:
            record, _ = read_champion(self.root)
        except (ChampionRecordError, OSError) as e:
            log.warning("champion record unreadable (%s): still serving %s", e, self.model.served.run)
            return
        served_run = self.model.served.run
        if record is None or record.run == served_run:
            return
        try:
            served = load_served(record.run, record.model_in(self.root))
        except Exception as e:  # whatever keeps it from loading, the old champion goes on answering
            if self.failed != record.run:
                log.warning(
                    "champion %s cannot be served (%s): still serving %s",
                    record.run,
                    e,
                    self.model.served.run,
                )
            self.failed = record.run
            return
        self.model.served = served
        log.warning("now serving champion %s", record.run)


class BodyLimit:
    """A request body over ``limit`` bytes is refused with a 400 before it is read whole (by its
    Content-Length, or while a chunked one arrives)."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if int(length or 0) > self.limit:
            await _discard(receive, DISCARD_BYTES)
            return await _refuse(send, f"the request body has {int(length)} bytes; at most {self.limit}")
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise InvalidInput(f"the request body is over {self.limit} bytes")
            return message

        return await self.app(scope, counted, send)


class V2NeedsJson:
    """A V2 infer request sent without ``Content-Type: application/json`` (curl -d's default is a form) is
    refused with a 400 saying so: KServe reads such a body as the binary extension's and answers that an
    ``inference-header-content-length`` header is missing (kserve 0.21.0, protocol/dataplane.py,
    decode_inference_request), which tells a JSON client nothing."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and _is_v2_infer(scope["path"]):
            headers = dict(scope["headers"])
            media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if media != b"application/json" and b"inference-header-content-length" not in headers:
                await _discard(receive, DISCARD_BYTES)
                named = media.decode("latin-1") or "none"
                return await _refuse(
                    send, f"a V2 request is JSON: send it with Content-Type: application/json (got {named})"
                )
        return await self.app(scope, receive, send)


def _is_v2_infer(path: str) -> bool:
    return path.startswith("/v2/models/") and path.endswith("/infer")


async def _discard(receive: Any, most: int) -> None:
    """Read (and drop) up to ``most`` bytes of a refused body: a client that sends its whole body before
    it reads the answer (urllib, requests) would see the connection reset instead of the 400."""
    seen, more = 0, True
    while more and seen <= most:
        message = await receive()
        seen += len(message.get("body", b""))
        more = message.get("more_body", False)


async def _refuse(send: Any, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _malformed_v2(_: Any, exc: RequestValidationError) -> JSONResponse:
    """FastAPI answers a V2 body its model refuses with a 422 and a list; a 400 and one line here."""
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return JSONResponse({"error": f"{where}: {first.get('msg', 'not an inference request')}"}, 400)


def serve_forever(
    root: str, served: Served, listening: tuple[str, int], on_listening: Callable[[], None]
) -> None:
    """Serve ``served`` on ``listening`` (host, port) until stopped, following the champion record of
    ``root``; ``on_listening`` is called once the port takes connections (what it prints then works at
    once)."""
    host, port = listening
    model = ChampionModel(served)
    app.add_middleware(V2NeedsJson)
    app.add_middleware(BodyLimit)
    app.add_exception_handler(RequestValidationError, _malformed_v2)
    ChampionWatch(model, root).start()
    reached = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    threading.Thread(target=_when_listening, args=(reached, port, on_listening), daemon=True).start()
    _rest_server_on(host)
    server = ModelServer(http_port=port, enable_grpc=False, workers=1)
    # kserve/logging.py gives uvicorn's loggers INFO whatever KSERVE_LOGLEVEL says: they follow it here.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(os.environ.get("KSERVE_LOGLEVEL", "INFO").upper())
    server.start([model])


def _rest_server_on(host: str) -> None:
    """KServe 0.21.0's RESTServer binds every address (kserve/protocol/rest/server.py: uvicorn.Config(
    host="0.0.0.0")), and ModelServer.start builds it by its name in kserve/model_server.py: that name
    becomes a RESTServer whose uvicorn config binds ``host`` (read when uvicorn starts listening)."""
    from kserve import model_server
    from kserve.protocol.rest.server import RESTServer

    class RESTServerOnHost(RESTServer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = host

    model_server.RESTServer = RESTServerOnHost


def _when_listening(host: str, port: int, then: Callable[[], None]) -> None:
    """``then()`` once ``host``:``port`` accepts a connection (uvicorn's own start is in its loop)."""
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            time.sleep(0.1)
            continue
        return then()

"""A webhook receiver on 127.0.0.1 for the notification tests: it answers as Slack does (200 ``ok``), or
with an error status, or a redirect (3xx to ``/moved``, answered 200 to any method), or not at all (it
hangs), and keeps every JSON body it got and the path of every GET."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.support.loopback import JSONHandler, LoopbackServer


@dataclass
class Receiver:
    url: str
    status: int = 200  # 0: read the request, then never answer
    bodies: list[dict] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)  # ends a hang at the test's end


@contextlib.contextmanager
def receiver(status: int = 200) -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(JSONHandler):
        def do_POST(self) -> None:
            got = box[0]
            length = int(self.headers.get("Content-Length") or 0)
            got.bodies.append(json.loads(self.rfile.read(length)) if length else {})
            if got.status == 0:
                got.release.wait(60)
                return
            if self.path.endswith("/moved") or got.status == 200:
                self.answer(200, b"ok")
            elif 300 <= got.status < 400:
                self.answer(got.status, b"", location=f"{self.path}/moved")
            else:
                self.answer(got.status, b"internal_error")

        def do_GET(self) -> None:  # where a followed redirect would turn the POST into
            box[0].gets.append(self.path)
            self.answer(200, b"ok")

        def answer(self, status: int, text: bytes, location: str = "") -> None:
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

    server = LoopbackServer(Handler)
    box.append(Receiver(f"{server.url}/services/T000/B000/secret-token", status))
    try:
        yield box[0]
    finally:
        box[0].release.set()
        server.stop()

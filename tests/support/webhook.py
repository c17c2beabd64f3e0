"""A webhook receiver on 127.0.0.1 for the notification tests: it answers as Slack does (200 ``ok``), or
with an error status, or not at all (it hangs), and keeps every JSON body it got."""

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
    release: threading.Event = field(default_factory=threading.Event)  # ends a hang at the test's end


@contextlib.contextmanager
def receiver(status: int = 200) -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(JSONHandler):
        def do_POST(self) -> None:
            got = box[0]
            got.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            if got.status == 0:
                got.release.wait(60)
                return
            answer = b"ok" if got.status == 200 else b"internal_error"
            self.send_response(got.status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = LoopbackServer(Handler)
    box.append(Receiver(f"{server.url}/services/T000/B000/secret-token", status))
    try:
        yield box[0]
    finally:
        box[0].release.set()
        server.stop()

"""A webhook receiver on 127.0.0.1 for the notification tests: it answers as Slack does (200 ``ok``), or
with an error status, or not at all (it hangs), and keeps every JSON body it got."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Receiver:
    url: str
    status: int = 200  # 0: read the request, then never answer
    bodies: list[dict] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)  # ends a hang at the test's end


@contextlib.contextmanager
def receiver(status: int = 200) -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(http.server.BaseHTTPRequestHandler):
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

        def log_message(self, *args: object) -> None:  # quiet: the tests read the bodies
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.append(Receiver(f"http://127.0.0.1:{server.server_port}/services/T000/B000/secret-token", status))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        box[0].release.set()
        server.shutdown()
        server.server_close()

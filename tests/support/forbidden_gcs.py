"""A GCS API on 127.0.0.1 that refuses everything with 403, as GCS answers credentials without access to
a bucket (fake-gcs-server has no permissions to refuse with)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_BODY = json.dumps(
    {
        "error": {
            "code": 403,
            "message": "reader@example.iam.gserviceaccount.com does not have storage.objects.list access "
            "to the Google Cloud Storage bucket.",
            "errors": [{"reason": "forbidden", "domain": "global", "message": "Forbidden"}],
        }
    }
).encode()


class _Refuse(BaseHTTPRequestHandler):
    def _refuse(self) -> None:
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(_BODY)))
        self.end_headers()
        self.wfile.write(_BODY)

    do_GET = do_POST = do_PUT = do_DELETE = _refuse

    def log_message(self, format: str, *args: object) -> None:
        pass


class ForbiddenGCS:
    """Started on a free port; ``url`` is its STORAGE_EMULATOR_HOST. A context manager: stopped at exit."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def __enter__(self) -> ForbiddenGCS:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

"""A GCS API on 127.0.0.1 that refuses everything with 403, as GCS answers credentials without access to
a bucket (fake-gcs-server has no permissions to refuse with)."""

from __future__ import annotations

import json

from tests.support.loopback import JSONHandler, LoopbackServer

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


class _Refuse(JSONHandler):
    def _refuse(self) -> None:
        self.send_json(403, _BODY)

    do_GET = do_POST = do_PUT = do_DELETE = _refuse


class ForbiddenGCS(LoopbackServer):
    """Started on a free port; ``url`` is its STORAGE_EMULATOR_HOST. A context manager: stopped at exit."""

    def __init__(self) -> None:
        super().__init__(_Refuse)

    def __enter__(self) -> ForbiddenGCS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

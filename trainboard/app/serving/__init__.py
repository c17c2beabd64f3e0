"""`trainboard serve`'s server: the champion's serving export behind KServe's Python model server.

Imported only when the command runs: it brings in kserve (and its modules TensorFlow when a model loads).
kserve's model_server parses sys.argv when imported (``args, _ = parser.parse_known_args()``,
kserve/model_server.py, kserve 0.21.0), so it is imported here with trainboard's own options hidden.
"""

import sys

_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve  # noqa: F401
finally:
    sys.argv = _argv

"""TensorFlow's start-up lines kept out of the console, so that a command that loads TensorFlow to check
its input (a weights file, a TFDS dataset) still refuses in one line. Their errors still show; `--verbose`
does not call this and shows everything.

Two kinds of lines, two ways:
- TensorFlow's C++ logging reads TF_CPP_MIN_LOG_LEVEL (2: errors only) as it is loaded: the CPU's
  instruction sets (cpu_feature_guard), a missing dataset_info.json. kfp.local's tasks inherit it (their
  output goes to the run's log file).
- Two lines ignore it, written to file descriptor 2 while `import tensorflow` runs on a CPU where oneDNN's
  custom operations are on by default (AVX-512 machines): tensorflow/core/util/port.cc's oneDNN notice
  (an INFO line), and absl's "before InitializeLog" warning that its first line brings (TF 2.21). They
  are written by C++ to the descriptor, past sys.stderr, so the first `import tensorflow` of the command
  runs with descriptor 2 in a file, and what it holds goes back to stderr without INFO lines and absl's
  notice (warnings and errors pass).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType

# absl's notice, and an INFO line in absl's prefix (abseil-cpp absl/log/internal/log_format.cc,
# FormatLogPrefix): I<mmdd> <time> <thread> <file>:<line>]. Before absl is initialised TF 2.21.0 writes the
# date as 0000 and the time as 00:00:<seconds since the epoch>, as seen on this project's machines.
START_UP_LINE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
)


def quiet_tensorflow() -> None:
    """Before TensorFlow is imported: its C++ INFO and WARNING lines off, absl's Python warnings off, and
    the start-up lines of its first import filtered (the module's docstring says which and why)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("absl").setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


@contextlib.contextmanager
def start_up_lines_filtered() -> Iterator[None]:
    """File descriptor 2 into a file meanwhile; then its lines back to stderr but START_UP_LINE's."""
    sys.stderr.flush()
    kept = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(kept, 2)
            os.close(kept)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not START_UP_LINE.match(line)))
            sys.stderr.flush()


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` on sys.path, its module to run under start_up_lines_filtered; leaves
    sys.meta_path once it has run (a find_spec alone, as a check whether TensorFlow is installed, is no
    import: it stays for the real one)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)  # on sys.path, as pip installs it
        if spec is None or spec.loader is None:
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            with contextlib.suppress(ValueError):  # gone already
                sys.meta_path.remove(self)
            with start_up_lines_filtered():
                run_module(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

"""The fixtures: real parts started per test (a fake-gcs-server, TensorBoard, a loopback KFP API), the
demo dataset per session. The helpers behind them are in tests/support/, shared with bench/."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM
from tests.support.gcs import BUCKET, GCSServer, fake_gcs_command, free_port, wait_for_http
from tests.support.image_env import image_venv
from tests.support.kfp_server import KFPServer
from tests.support.tensorboard_http import TensorBoard
from trainboard.storage import gcs as gcs_backend

LEFT_OUT_BROWSER_TESTS = pytest.StashKey[list[str]]()

# A suite started in the background by a non-interactive shell (`make test &`, `nohup bash -c ... &`)
# inherits SIGINT ignored, and every process a test starts would too: Ctrl-C's tests would then time out.
# A terminal gives a command SIGINT as Python's default; so do the tests.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A browser test without Chromium fails in one line saying what to do: skipped quietly, CI would pass
    without ever looking at the UI."""
    if item.get_closest_marker("browser") and not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} not found: `make test` installs it as root (apt-get install --no-install-recommends "
            "chromium); or leave the browser tests out: make test BROWSER=no, or pytest -m 'not browser'",
            pytrace=False,
        )


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Remembers the browser tests that `-m "not browser"` leaves out, to name them at the end."""
    if items and "browser" in (items[0].config.option.markexpr or ""):
        names = [item.nodeid for item in items if item.get_closest_marker("browser")]
        items[0].config.stash.setdefault(LEFT_OUT_BROWSER_TESTS, []).extend(names)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    left_out = config.stash.get(LEFT_OUT_BROWSER_TESTS, [])
    if left_out:
        terminalreporter.write_line(f"{len(left_out)} browser tests not run (-m 'not browser'):")
        for name in left_out:
            terminalreporter.write_line(f"  {name}")


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> str:
    """The demo dataset artifact (four classes of drawn shapes), prepared once per session."""
    from trainboard.components.prepare_data.core import prepare_data
    from trainboard.config import DataConfig

    out = tmp_path_factory.mktemp("demo") / "data"
    prepare_data(DataConfig("demo"), str(out))
    return str(out)


@pytest.fixture(scope="session")
def image_python(tmp_path_factory) -> str:
    """The team image's Python (manifests/image/Dockerfile's packages, no TensorFlow), once per session."""
    return image_venv(tmp_path_factory.mktemp("image") / "venv")


@pytest.fixture(params=["local", "gcs"])
def root(request, tmp_path) -> str:
    """A storage root, once a local folder and once gs://BUCKET/team on a fake-gcs-server."""
    if request.param == "gcs":
        request.getfixturevalue("gcs")
        return f"gs://{BUCKET}/team"
    return str(tmp_path / "root")


@pytest.fixture
def kfp() -> Iterator[KFPServer]:
    """A loopback Kubeflow Pipelines API (v2beta1 routes), recording every request."""
    server = KFPServer()
    yield server
    server.stop()


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[GCSServer]:
    """A fake-gcs-server (in memory) on a free port, with bucket BUCKET, and STORAGE_EMULATOR_HOST set."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(fake_gcs_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"{url}/storage/v1/b", proc=proc)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        gcs_backend.set_client(None)
        gcs_backend.client().create_bucket(BUCKET)
        yield GCSServer(url, proc)
    finally:
        proc.terminate()
        proc.wait(10)
        gcs_backend.set_client(None)


@pytest.fixture
def tensorboard_factory() -> Iterator:
    started: list[TensorBoard] = []

    def start(logdir: str, env: dict | None = None, port: int = 0) -> TensorBoard:
        started.append(TensorBoard(logdir, env, port))
        return started[-1]

    yield start
    for tb in started:
        tb.stop()

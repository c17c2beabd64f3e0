"""`trainboard submit`: one run of the compiled pipeline, its arguments checked first, and the wait for its
final state. TensorFlow-free."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from trainboard import layout
from trainboard.app.cluster.auth import without_userinfo
from trainboard.app.cluster.connection import API, connect, ensure_experiment, identified
from trainboard.app.cluster.params import check_root_records, checked_arguments
from trainboard.app.cluster.pipeline_spec import pipeline_package
from trainboard.app.cluster.settings import ClusterSettings
from trainboard.checks import check_run_name
from trainboard.errors import UsageError
from trainboard.links import kfp_run_url, tensorboard_run_url

# KFP v2 run states after which a run does not change any more.
FINAL_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")
WAIT_POLL_SECONDS = 10


@dataclass(frozen=True)
class Submitted:
    run: str
    run_id: str
    run_url: str
    tensorboard_url: str
    notes: tuple[str, ...] = ()  # what the checks could not look at from here


def submit(settings: ClusterSettings, pairs: list[str], run_name: str | None = None) -> Submitted:
    """One run of the pipeline; its KFP name is its run name under the root, unique unless given."""
    arguments, notes = checked_arguments(pairs, settings)
    if "run_name" in arguments:
        raise UsageError("param", "run_name is set with --run-name (the KFP run carries the same name)")
    run = layout.new_run_name() if run_name is None else run_name  # "" given is refused, not generated
    check_run_name(run)
    check_root_records(arguments["root"], run)
    arguments["run_name"] = run
    with connect(settings) as client, pipeline_package() as package:
        created = client.run_pipeline(
            experiment_id=ensure_experiment(client, settings),
            job_name=run,
            pipeline_package_path=package,
            params=arguments,
            service_account=settings.service_account or None,
        )
        run_id = identified(created, "run_id", f"POST {API}/runs", without_userinfo(settings.endpoint))
    tensorboard_url = arguments.get("tensorboard_url", "")
    return Submitted(
        run=run,
        run_id=run_id,
        run_url=kfp_run_url(without_userinfo(settings.endpoint), run_id),
        tensorboard_url=tensorboard_url and tensorboard_run_url(tensorboard_url, run),
        notes=tuple(notes),
    )


class WaitTimeout(RuntimeError):
    """The run had not finished when --timeout ran out (it goes on); the CLI exits 4."""


def wait(settings: ClusterSettings, run_id: str, timeout: float = 0) -> str:
    """Poll the run until it reaches a final state; return that state. WaitTimeout after ``timeout``
    seconds (0: no limit); Unreachable when the API stops answering."""
    deadline = time.monotonic() + timeout if timeout else math.inf
    with connect(settings, total=math.inf) as client:  # each poll has its deadline; --timeout bounds all
        route, endpoint = f"GET {API}/runs/{run_id}", without_userinfo(settings.endpoint)
        while (state := identified(client.get_run(run_id), "state", route, endpoint)) not in FINAL_STATES:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(f"the run is still {state} after {timeout:g} s; it goes on")
            time.sleep(min(WAIT_POLL_SECONDS, left))
    return state

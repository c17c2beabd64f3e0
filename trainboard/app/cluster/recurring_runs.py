"""`trainboard schedule create|list|pause|resume|delete`: the pipeline's recurring runs in the experiment,
created (or replaced without a gap), listed, paused, resumed and deleted. TensorFlow-free."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from trainboard.app.cluster.auth import without_userinfo
from trainboard.app.cluster.connection import (
    API,
    WrongAnswer,
    connect,
    ensure_experiment,
    identified,
)
from trainboard.app.cluster.cron import check_cron
from trainboard.app.cluster.params import check_root_records, checked_arguments
from trainboard.app.cluster.pipeline_spec import pipeline_package, sent_pipeline_spec
from trainboard.app.cluster.settings import ClusterSettings
from trainboard.checks import check_visible
from trainboard.errors import UsageError
from trainboard.links import kfp_recurring_run_url


@dataclass(frozen=True, kw_only=True)
class Scheduled:
    name: str
    recurring_run_id: str
    url: str
    unchanged: bool = False  # an identical schedule of that name was there: nothing created or deleted
    status: str = "ENABLED"
    notes: tuple[str, ...] = ()  # what the checks could not look at from here


@dataclass(frozen=True, kw_only=True)
class Schedule:
    name: str
    recurring_run_id: str
    status: str
    cron: str
    parameters: dict[str, Any]
    created_at: str = ""
    max_concurrency: int = 1
    catchup: bool = False
    service_account: str = ""
    pipeline: dict[str, Any] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        parameters = json.dumps(self.parameters, sort_keys=True)
        return f"cron '{self.cron}', {self.status.lower()}, parameters {parameters}"

    def same_as(self, other: Schedule) -> bool:
        """Whether both run the same thing at the same times: cron, parameters, max concurrency,
        catch-up and pipeline (spec and platform spec) are compared, as the server returns them for the
        existing one and as kfp.Client would send them for the other; the service account only where
        both name one (a server may fill in its default); the status (paused or not), the id and the
        creation time are not."""
        fields = ("cron", "parameters", "max_concurrency", "catchup", "pipeline")
        accounts = {self.service_account, other.service_account} - {""}
        return all(getattr(self, name) == getattr(other, name) for name in fields) and len(accounts) < 2


def check_schedule_name(name: str) -> None:
    """A name `schedule pause|resume|delete NAME` finds again as typed: not empty, no spaces at either end
    (' nightly' and 'nightly' would both run), no control or invisible formatting characters (a
    right-to-left mark makes a name read as another)."""
    if not name.strip():
        raise UsageError("name", f"{name!r} is empty; name the schedule, e.g. --name nightly")
    if name != name.strip():
        raise UsageError("name", f"{name!r} starts or ends with a space; did you mean {name.strip()!r}?")
    check_visible("name", name)


def _schedules(client: Any, experiment_id: str, endpoint: str) -> list[Schedule]:
    """Every recurring run of the experiment, oldest first; each has an id and a name (pause, resume and
    delete find them by name and act by id), or the answer is WrongAnswer."""
    found, token, seen, route = [], "", {""}, f"GET {API}/recurringruns"
    while True:
        page = client.list_recurring_runs(page_token=token, page_size=100, experiment_id=experiment_id)
        for r in page.recurring_runs or []:
            identified(r, "recurring_run_id", route, endpoint)
            identified(r, "display_name", route, endpoint)
            cron = r.trigger.cron_schedule.cron if r.trigger and r.trigger.cron_schedule else ""
            parameters = (r.runtime_config.parameters if r.runtime_config else None) or {}
            found.append(
                Schedule(
                    name=r.display_name,
                    recurring_run_id=r.recurring_run_id,
                    status=str(r.status),
                    cron=cron,
                    parameters=parameters,
                    created_at=str(r.created_at),
                    max_concurrency=int(r.max_concurrency or 0),  # an int64: a string in the API's JSON
                    catchup=not r.no_catchup,
                    service_account=r.service_account or "",
                    pipeline=r.pipeline_spec or {},
                )
            )
        if page.next_page_token in seen:  # the same page again: a loop, not a listing
            raise WrongAnswer(f"{endpoint}: {route} answered the page token {token!r} twice")
        token = page.next_page_token
        if not token:
            return found
        seen.add(token)


def schedule(
    settings: ClusterSettings,
    pairs: list[str],
    name: str,
    cron: str,
    *,
    max_concurrency: int = 1,
    catchup: bool = False,
    replace: bool = False,
) -> Scheduled:
    """An enabled recurring run; each execution names its own run (start_run, from the KFP job id). A
    schedule of the same name in the experiment is left as it is when identical (Schedule.same_as),
    refused when not, or with ``replace`` deleted once the new one exists (never a moment with no nightly
    run)."""
    check_schedule_name(name)
    cron = check_cron(cron)
    if max_concurrency < 1:
        raise UsageError("max_concurrency", f"must be at least 1, got {max_concurrency}")
    arguments, notes = checked_arguments(pairs, settings)
    if arguments.get("run_name"):
        raise UsageError(
            "param", "run_name cannot be fixed for a schedule: every execution gets its own unique run name"
        )
    check_root_records(arguments["root"])  # a damaged record would fail every night's first task
    mine = Schedule(
        name=name,
        recurring_run_id="",
        status="ENABLED",
        cron=cron,
        parameters=arguments,
        max_concurrency=max_concurrency,
        catchup=catchup,
        service_account=settings.service_account,
        pipeline=sent_pipeline_spec(),
    )
    endpoint = without_userinfo(settings.endpoint)
    with connect(settings) as client, pipeline_package() as package:
        experiment_id = ensure_experiment(client, settings)
        existing = [s for s in _schedules(client, experiment_id, endpoint) if s.name == name]
        if existing and all(s.same_as(mine) for s in existing):
            first = existing[0]
            url = kfp_recurring_run_url(endpoint, first.recurring_run_id)
            return Scheduled(
                name=name,
                recurring_run_id=first.recurring_run_id,
                url=url,
                unchanged=True,
                status=first.status,
                notes=tuple(notes),
            )
        if existing and not replace:
            raise UsageError(
                "name",
                f"schedule {name} exists in experiment {settings.experiment}: {existing[0].describe()}; "
                f"yours: {mine.describe()}. Replace it with --replace, or choose another --name",
            )
        created = client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=name,
            cron_expression=cron,
            max_concurrency=max_concurrency,
            no_catchup=not catchup,
            params=arguments,
            pipeline_package_path=package,
            enabled=True,
            service_account=settings.service_account or None,
        )
        created_id = identified(created, "recurring_run_id", f"POST {API}/recurringruns", endpoint)
        for old in existing:  # only now that the new one exists
            client.delete_recurring_run(old.recurring_run_id)
    return Scheduled(name=name, recurring_run_id=created_id, url=kfp_recurring_run_url(endpoint, created_id))


def list_schedules(settings: ClusterSettings) -> list[Schedule]:
    with connect(settings) as client:
        return _schedules(client, ensure_experiment(client, settings), without_userinfo(settings.endpoint))


def change_schedule(settings: ClusterSettings, name: str, action: str) -> list[Schedule]:
    """Pause (disable), resume (enable) or delete every schedule called ``name`` in the experiment;
    returns them. UsageError when there is none."""
    with connect(settings) as client:
        endpoint = without_userinfo(settings.endpoint)
        schedules = _schedules(client, ensure_experiment(client, settings), endpoint)
        targets = [s for s in schedules if s.name == name]
        if not targets:
            names = ", ".join(sorted({s.name for s in schedules})) or "none"
            raise UsageError(
                "NAME", f"no schedule {name!r} in experiment {settings.experiment}; it has: {names}"
            )
        change = {
            "pause": client.disable_recurring_run,
            "resume": client.enable_recurring_run,
            "delete": client.delete_recurring_run,
        }[action]
        for target in targets:
            change(target.recurring_run_id)
    return targets

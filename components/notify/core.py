"""notify: tell the team how a run ended, with one webhook POST (Slack incoming webhooks and generic JSON
receivers): the run, its outcome (promoted / not promoted and why / stopped early / failed at a step with
its error's first line), the headline test metrics, and links to the team TensorBoard (this run beside the
champion) and to the KFP run.

Optional and harmless: no webhook URL, no notification; a receiver that is down, refuses or hangs costs
the run at most POST_SECONDS and never changes its outcome (nothing here raises). The URL is a secret:
it is never printed, and an error is reported by its kind only (urllib's messages can hold the URL).
TensorFlow-free.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainboard.artifacts.champion import read_champion
from trainboard.artifacts.outcome import PROMOTED, STOPPED_EARLY, RunOutcome, read_outcome
from trainboard.artifacts.tournament import Tournament, read_tournament
from trainboard.errors import UsageError
from trainboard.job_runs import take_job
from trainboard.links import kfp_run_url, tensorboard_run_url

# Where the URLs come from: this environment (`trainboard local`: kfp.local's tasks and the CLI share it),
# else the Kubernetes Secret SECRET_NAME mounted at SECRET_DIR on the cluster's exit task, one file a key.
WEBHOOK_ENV, KFP_URL_ENV = "TRAINBOARD_WEBHOOK_URL", "TRAINBOARD_KFP_URL"
SECRET_NAME, SECRET_DIR = "trainboard-notify", "/etc/trainboard-notify"
WEBHOOK_KEY, KFP_URL_KEY = "webhook-url", "kfp-url"
# The whole POST, connection included: a hung receiver delays the run's end by this much, no more.
POST_SECONDS = 5.0
# The headline numbers the message's text shows; the JSON carries them all.
SHOWN_METRICS = ("test_accuracy", "test_loss", "test_top5_accuracy")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


@dataclass(frozen=True)
class Failure:
    """What is known of a failed run: the step, and its error's first line ("" where not known)."""

    step: str = ""
    error: str = ""


def setting(env: str, key: str, secret_dir: str = "") -> str:
    """The environment's value, else the mounted Secret's key (its file is absent when the Secret or the
    key is: the volume is optional), in ``secret_dir`` (default: SECRET_DIR)."""
    value = os.environ.get(env, "")
    if not value:
        try:
            value = Path(secret_dir or SECRET_DIR, key).read_text()
        except OSError:
            value = ""
    return value.strip()


def first_error_line(lines: list[str]) -> str:
    """The error's first line in the last lines of a failed step's output (the last line that names an
    exception, e.g. ``ValueError: ...``); else the last line."""
    lines = [line.strip() for line in lines if line.strip()]
    return next((line for line in reversed(lines) if _EXCEPTION_LINE.match(line)), lines[-1] if lines else "")


def outcome_line(outcome: RunOutcome | None, failure: Failure | None) -> str:
    if outcome is None:
        failure = failure or Failure()
        at = f" at step {failure.step}" if failure.step else ""
        if not (at or failure.error):  # the cluster's backend does not tell the exit task which step
            return "failed before promote decided (which step: see the KFP run)"
        return f"failed{at}" + (f": {failure.error}" if failure.error else "")
    if outcome.outcome == PROMOTED:
        return f"promoted, now the champion: {outcome.reason}"
    if outcome.outcome == STOPPED_EARLY:  # promote's reason says where, by which rule, and what it saved
        return outcome.reason
    return f"not promoted, the champion is still {outcome.champion or 'none'}: {outcome.reason}"


def message(
    run: str,
    outcome: RunOutcome | None,
    failure: Failure | None = None,
    *,
    champion: str = "",
    tensorboard_url: str = "",
    kfp_run: str = "",
) -> dict[str, Any]:
    """The POST's JSON: ``text`` (what Slack shows) and the same as fields for other receivers."""
    shown_run = run or "(not named yet)"
    state = outcome.outcome if outcome else "failed"
    metrics = outcome.metrics if outcome else {}
    champion = (outcome.champion if outcome else "") or champion
    links = {}
    if tensorboard_url and run:
        links["tensorboard"] = tensorboard_run_url(tensorboard_url, *filter(None, (run, champion)))
    if kfp_run:
        links["kfp_run"] = kfp_run
    lines = [f"trainboard run {shown_run}: {outcome_line(outcome, failure)}"]
    if shown := [
        f"{name.replace('_', ' ')} {metrics[name]:.4f}" for name in SHOWN_METRICS if name in metrics
    ]:
        lines.append(", ".join(shown))
    if outcome and outcome.registry:  # the promotion stands; the Model Registry did not take it
        lines.append(outcome.registry)
    lines += [f"{'TensorBoard' if k == 'tensorboard' else 'KFP run'}: {url}" for k, url in links.items()]
    body = {"text": "\n".join(lines), "run": run, "outcome": state, "metrics": metrics, "links": links}
    if outcome:
        body |= {"reason": outcome.reason, "champion": champion, "stopped": outcome.stopped}
        body |= {"registry": outcome.registry}
    else:
        body |= {"step": (failure or Failure()).step, "error": (failure or Failure()).error}
    return body


def url_problem(url: str) -> str:
    """Why ``url`` cannot take the POST, or "": it must be http:// or https:// with a host. urllib would
    open file://, ftp:// and data: URLs too, with no POST made, and call that a success. Never the URL,
    nor its scheme (a URL pasted without one starts with whatever came first)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "is not an http:// or https:// URL"
    return "" if host else "has no host"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: urllib would resend the POST as a GET without its body (301, 302, 303:
    urllib/request.py, redirect_request), which a receiver may answer 200 with nothing delivered. Not
    followed, the 3xx is an HTTPError like any answer that is not 2xx."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post(url: str, body: dict[str, Any], seconds: float = POST_SECONDS) -> str:
    """POST ``body`` as JSON, for ``seconds`` at most in all (a thread: urllib's timeout bounds each
    socket wait, not a receiver that trickles bytes); returns what happened, never the URL, never raises.
    "sent" only for a 2xx answer to the POST itself."""
    if problem := url_problem(url):
        return f"not sent: the webhook URL {problem}"
    given_up = f"no answer within {seconds:g} s; given up"
    result = [given_up]

    def send() -> None:
        try:
            request = urllib.request.Request(
                url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.build_opener(_NoRedirects).open(request, timeout=seconds) as response:
                result[0] = f"sent (HTTP {response.status})"
        except urllib.error.HTTPError as e:
            result[0] = (
                f"not sent: the receiver redirected it (HTTP {e.code}); set the webhook URL to where it "
                "redirects"
                if 300 <= e.code < 400
                else f"refused by the receiver (HTTP {e.code})"
            )
        except Exception as e:  # any failure, reported by its kind only: never the URL
            timed_out = isinstance(e, TimeoutError) or isinstance(getattr(e, "reason", None), TimeoutError)
            result[0] = given_up if timed_out else f"not sent ({type(e).__name__})"

    thread = threading.Thread(target=send, daemon=True)  # a hung receiver does not keep the process
    thread.start()
    thread.join(seconds)
    return result[0]


def check_webhook_setting(env: str = WEBHOOK_ENV) -> None:
    """UsageError naming ``env`` when it holds a URL the notification cannot POST to: `trainboard local`
    refuses it before any work, as the run's end would only log it."""
    url = os.environ.get(env, "").strip()
    if url and (problem := url_problem(url)):
        raise UsageError(
            env,
            f"{problem} (the value is not shown: it is a secret); e.g. https://hooks.slack.com/services/...",
        )


def _with_tournament(body: dict[str, Any], tournament: Tournament, tensorboard_url: str) -> dict[str, Any]:
    """A sweep's message: the table of trials, a line each, and the board on every trial beside the
    champion (the night's own name has no TensorBoard run: its trials have)."""
    lines = body["text"].split("\n")
    if tensorboard_url:
        old = body["links"].get("tensorboard", "")
        runs = [t["run"] for t in tournament.trials] + ([body["champion"]] if body.get("champion") else [])
        body["links"]["tensorboard"] = tensorboard_run_url(tensorboard_url, *runs)
        lines = [line.replace(old, body["links"]["tensorboard"]) if old else line for line in lines]
    return body | {"text": "\n".join([*lines, *tournament.lines()]), "trials": tournament.trials}


def notify_run(
    root: str, run_name: str, job_id: str, tensorboard_url: str, *, failure: Failure | None = None
) -> str:
    """Find the run (``run_name``, else the record start_run left for ``job_id``, taken in any case), its
    outcome (promote's outcome.json; none: the run failed before promote), and tell the webhook. Returns
    one line saying what was done, for the task's log."""
    try:
        run = (take_job(root, job_id) if job_id else "") or run_name
        url = setting(WEBHOOK_ENV, WEBHOOK_KEY)
        if not url:
            return f"no webhook ({WEBHOOK_ENV} or the Secret {SECRET_NAME}): nothing sent"
        if problem := url_problem(url):  # read from the Secret on a cluster: the task's log says so
            return f"nothing sent: the webhook URL ({WEBHOOK_ENV} or the Secret {SECRET_NAME}) {problem}"
        # A sweep's outcome is its chosen trial's (the run evaluate and promote judged).
        tournament = read_tournament(root, run) if run else None
        # A failure known here (`trainboard local`'s) is the run's state, whatever promote wrote.
        outcome = (
            read_outcome(root, tournament.chosen if tournament else run) if run and not failure else None
        )
        record = None if outcome else read_champion(root)[0]
        kfp_url = setting(KFP_URL_ENV, KFP_URL_KEY)
        body = message(
            run,
            outcome,
            failure,
            champion=record.run if record else "",
            tensorboard_url=tensorboard_url,
            kfp_run=kfp_run_url(kfp_url, job_id) if kfp_url and job_id else "",
        )
        if tournament:
            body = _with_tournament(body, tournament, tensorboard_url)
    except Exception as e:  # telling the team must never fail the run it tells about
        return f"nothing sent: the run's records could not be read ({type(e).__name__}: {e})"
    return f"{post(url, body)}: run {run or '(not named)'}, {body['outcome']}"

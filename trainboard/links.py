"""Links a person clicks: a run in the KFP UI, a run's curves in the team TensorBoard.

TensorFlow-free and KFP-free: the CLI prints them after submit, start_run writes them into the run card.
"""

from __future__ import annotations

import urllib.parse


def tensorboard_run_url(tensorboard_url: str, *runs: str) -> str:
    """The team TensorBoard showing only ``runs``' curves (one run, or this run beside the champion's).

    TensorBoard 2.21.0 reads the ``runFilter`` query parameter as the run selector's regular expression
    over run names (tensorboard/webapp/routes/dashboard_deeplink_provider.ts, in the package's
    webfiles.zip index.js: ``runFilter`` -> ``runs.regexFilter``; tests/test_race.py checks the two-run
    filter in headless Chromium on a real TensorBoard);
    a run's TensorBoard runs are ``<run>/train``, ``<run>/validation``, ``<run>/evaluation`` and ``<run>``
    itself (hyperparameters, sample images, phase notes), so ``^<run>(/|$)`` selects exactly them, and
    ``^(<a>|<b>)(/|$)`` two runs' (run names hold letters, digits, '.', '_', '-': only '.' needs escaping).
    """
    names = [run.replace(".", r"\.") for run in dict.fromkeys(runs)]  # the same run twice: once
    run_filter = "^" + (names[0] if len(names) == 1 else f"({'|'.join(names)})") + "(/|$)"
    return f"{tensorboard_url.rstrip('/')}/?{urllib.parse.urlencode({'runFilter': run_filter})}#timeseries"


def kfp_run_url(endpoint: str, run_id: str) -> str:
    return f"{endpoint.rstrip('/')}/#/runs/details/{run_id}"


def kfp_recurring_run_url(endpoint: str, recurring_run_id: str) -> str:
    return f"{endpoint.rstrip('/')}/#/recurringrun/details/{recurring_run_id}"

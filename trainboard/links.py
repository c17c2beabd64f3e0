"""Links a person clicks: a run in the KFP UI, a run's curves in the team TensorBoard.

TensorFlow-free and KFP-free: the CLI prints them after submit, start_run writes them into the run card.
"""

from __future__ import annotations

import urllib.parse

# The cards a TensorBoard link opens on: the curves (Keras's epoch_* scalars, the race's gaps to the
# champion, the trend over runs), not the images (tags confusion_matrix, training_samples). Unfiltered,
# TensorBoard 2.21.0's Time Series page groups cards by the tag's part before its first "/", sorts the
# groups by name and expands the first two only (index.js in the package's webfiles.zip: "tagGroupExpanded"):
# confusion_matrix and epoch_accuracy, so the first screen is confusion matrices. With a tag filter it
# shows one group, "Tags matching filter", its cards sorted by tag: epoch_accuracy, epoch_learning_rate,
# epoch_loss first. Clearing the page's tag filter box shows every card again.
CURVES = "^(epoch_|race/|trend/)"


def tensorboard_run_url(tensorboard_url: str, *runs: str) -> str:
    """The team TensorBoard opened on the curves (CURVES) of only ``runs`` (one run, or this run beside the
    champion's), of every run when none is given.

    TensorBoard 2.21.0 reads the ``runFilter`` query parameter as the run selector's regular expression
    over run names and ``tagFilter`` as the Time Series page's tag filter
    (tensorboard/webapp/routes/dashboard_deeplink_provider.ts, in the package's webfiles.zip index.js:
    ``runFilter`` -> ``runs.regexFilter``, ``tagFilter`` -> ``metrics.tagFilter``; tests/test_race.py
    checks both in headless Chromium on a real TensorBoard);
    a run's TensorBoard runs are ``<run>/train``, ``<run>/validation``, ``<run>/evaluation`` and ``<run>``
    itself (hyperparameters, sample images, phase notes), so ``^<run>(/|$)`` selects exactly them, and
    ``^(<a>|<b>)(/|$)`` two runs' (run names hold letters, digits, '.', '_', '-': only '.' needs escaping).
    """
    query = {}
    if runs:
        names = [run.replace(".", r"\.") for run in dict.fromkeys(runs)]  # the same run twice: once
        query["runFilter"] = "^" + (names[0] if len(names) == 1 else f"({'|'.join(names)})") + "(/|$)"
    query["tagFilter"] = CURVES
    return f"{tensorboard_url.rstrip('/')}/?{urllib.parse.urlencode(query)}#timeseries"


def kfp_run_url(endpoint: str, run_id: str) -> str:
    return f"{endpoint.rstrip('/')}/#/runs/details/{run_id}"


def kfp_recurring_run_url(endpoint: str, recurring_run_id: str) -> str:
    return f"{endpoint.rstrip('/')}/#/recurringrun/details/{recurring_run_id}"

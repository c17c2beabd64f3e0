"""The README's sample output stays what a run prints: its lines compare with a real run's as line kinds
(tests/support/readme_sample.py); the real run is tests/test_local_pipeline.py's first run on a terminal,
which checks its screen against the sample. These tests hold the sample's form and the comparison."""

from __future__ import annotations

from tests.support.readme_sample import CUT, PREFIX, kind, kinds, misplaced_cuts, sample_lines, stale_sample

RUN_A = [
    "trainboard: run 20261207-020513-510bb8: the logs of every step in .../trainboard-runs/logs/x.log",
    "trainboard: train: epoch 1/8: loss 1.7105, accuracy 0.2969, val_accuracy 0.2625 (6.0 s)",
    "trainboard: train: epoch 2/8: loss 1.4042, accuracy 0.3458, val_accuracy 0.3125 (2.9 s)",
    "trainboard: dataset card:     .../trainboard-runs/reports/20261207-020513-510bb8/dataset-card.md",
    "trainboard: TensorBoard over .../tensorboard at http://127.0.0.1:6006/ (Ctrl-C to stop)",
    "trainboard: this run only: http://127.0.0.1:6006/?runFilter=%5E20261207-020513-510bb8%28#timeseries",
]
RUN_B = [  # another run, named by its user, on another machine, at another time
    "trainboard: run nightly: the logs of every step in /home/ana/trainboard-runs/logs/nightly.log",
    "trainboard: train: epoch 10/20: loss 0.25, accuracy 0.9, val_accuracy 0.875 (31.5 s)",
    "trainboard: dataset card: /home/ana/trainboard-runs/reports/nightly/dataset-card.md",
    "trainboard: TensorBoard over /home/ana/runs/tensorboard at http://127.0.0.1:6011/ (Ctrl-C to stop)",
    "trainboard: this run only: http://127.0.0.1:6011/?runFilter=%5Enightly%28#timeseries",
]


def test_the_readme_sample_is_a_runs_lines_with_only_repeated_lines_cut():
    lines = sample_lines()
    assert [x for x in lines if not x.startswith(PREFIX) and x != CUT] == []
    assert misplaced_cuts(lines) == [], "a `...` line stands only between two lines of one kind"
    assert len(kinds(lines)) > 10, "the whole run: each step, the summary, TensorBoard"
    assert len(set(kinds(lines))) == len(kinds(lines))


def test_line_kinds_leave_out_run_names_paths_numbers_and_urls_but_not_words():
    assert kinds(RUN_A) == kinds(RUN_B)
    assert kinds(RUN_B) == [
        "run <run>: the logs of every step in <path>",
        "train: epoch <n>/<n>: loss <n>, accuracy <n>, val_accuracy <n> (<n> s)",
        "dataset card: <path>",
        "TensorBoard over <path> at <url> (Ctrl-C to stop)",
        "this run only: <url>",
    ]
    assert kind("trainboard: start-run: started at 02:05:14") == "start-run: started at <t>"
    assert kind("trainboard: prepare-data: done in 9.8 s (1280/1280 images checked)") == (
        "prepare-data: done in <n> s (<n>/<n> images checked)"
    )
    promoted, not_promoted = "promoted, now the champion: x", "not promoted, the champion: x"
    assert kind(f"trainboard: {promoted}") != kind(f"trainboard: {not_promoted}")


def test_a_stale_sample_names_the_kinds_missing_on_each_side():
    printed = [*RUN_A[:3], "trainboard: beside champion 20261206-010101-abcdef: http://127.0.0.1:6006/?x"]
    sample = [RUN_A[0], RUN_A[1], CUT, *RUN_A[3:]]
    assert stale_sample(printed, sample).splitlines()[1:] == [
        "printed by the run, not in the README:",
        "  + beside champion <run>: <url>",
        "in the README, not printed by the run:",
        "  - dataset card: <path>",
        "  - TensorBoard over <path> at <url> (Ctrl-C to stop)",
        "  - this run only: <url>",
    ]
    assert stale_sample(RUN_B, sample) == "", "a run's repeated lines, cut in the sample, are one kind"
    assert "another order" in stale_sample(RUN_B[::-1], sample)

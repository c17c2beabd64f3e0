"""The README's sample output (Quick start: "A run prints") as line kinds, to compare with a real run's.

A line's kind is what it says after `trainboard: `, with what differs from run to run taken out: the
run's name and other runs' default names -> <run>, URLs -> <url>, `n/m` -> <n>/<n>, any other word with
a `/` (a path, shortened to `...` or not) -> <path>, times of day -> <t>, numbers -> <n>, and runs of
spaces (the summary's alignment) -> one. So `train: epoch 3/8: loss 0.51, ... (3.4 s)` and every other
epoch line are one kind, while a changed word in a line or a new line is a new kind.

When a run's kinds and the sample's differ, regenerate the sample from a real run of `make run` on a
fresh root, from a shell where this environment is not on PATH (as a newcomer's, so the suggested
commands name the program by its path), and paste its lines with the paths shortened to `...` and the
middle epochs cut to one `...` line:

    repo=$PWD && cd "$(mktemp -d)" && "$repo/.venv/bin/trainboard" local --root trainboard-runs

from the repository, .venv not activated (it ends serving TensorBoard: after `this run only: ...`, Ctrl-C).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
PREFIX = "trainboard: "
CUT = "..."  # the sample's one line for the repeated lines it leaves out
DEFAULT_RUN_NAME = r"\d{8}-\d{6}-[0-9a-f]{6}"  # trainboard.app's run names: date-time-random


def sample_lines(readme: str | None = None) -> list[str]:
    """The lines of the README's sample output: the fenced block whose first line is a `trainboard: `."""
    text = README.read_text(encoding="utf-8") if readme is None else readme
    block: list[str] | None = None  # the lines of the fenced block we are in
    for line in text.splitlines():
        if not line.startswith("```"):
            if block is not None:
                block.append(line)
        elif block is None:
            block = []
        elif block and block[0].startswith(PREFIX):
            return block
        else:
            block = None
    raise AssertionError("README.md has no sample output (a ``` block of `trainboard: ` lines)")


def kind(line: str, runs: Iterable[str] = ()) -> str:
    """``line``'s kind: its text after `trainboard: ` with ``runs`` (names), URLs, paths, times and numbers
    normalised away."""
    text = line.removeprefix(PREFIX)
    for run in sorted(runs, key=len, reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(run)}(?![\w-])", "<run>", text)
    text = re.sub(rf"(?<![\w-]){DEFAULT_RUN_NAME}(?![\w-])", "<run>", text)
    text = re.sub(r"\bhttps?://\S+", "<url>", text)
    text = re.sub(r"(?<![\w/.])\d+/\d+(?![\w/])", "<n>/<n>", text)
    text = " ".join("<path>" if "/" in word and "<n>/<n>" not in word else word for word in text.split())
    text = re.sub(r"\b\d\d:\d\d:\d\d\b", "<t>", text)
    return re.sub(r"(?<![\w.<])\d+(?:\.\d+)?(?![\w<])", "<n>", text)


def run_names(lines: Iterable[str]) -> set[str]:
    """The run names the lines say (a name given with --run-name, too): the line `run NAME: ...`, and
    `champion NAME:` (beside champion, the champion is still)."""
    said = re.compile(rf"^(?:{PREFIX})?run ([^\s:]+):|(?<= champion )([^\s:]+):")
    return {name for line in lines for match in said.finditer(line) for name in match.groups() if name}


def kinds(lines: list[str]) -> list[str]:
    """The kinds of ``lines`` in the order they first appear, each once; blank lines and cuts skipped."""
    runs = run_names(lines)
    seen: dict[str, None] = {}
    for line in lines:
        if line.strip() and line != CUT:
            seen.setdefault(kind(line, runs), None)
    return list(seen)


def misplaced_cuts(lines: list[str]) -> list[int]:
    """The indexes of the sample's `...` lines that do not stand between two lines of one kind."""
    runs = run_names(lines)
    return [
        i
        for i, line in enumerate(lines)
        if line == CUT
        and not (0 < i < len(lines) - 1 and kind(lines[i - 1], runs) == kind(lines[i + 1], runs))
    ]


def stale_sample(printed: list[str], sample: list[str] | None = None) -> str:
    """Why the README's sample (or ``sample``) is not what a run printed (``printed``, its screen's lines):
    the kinds missing on each side, or their order; "" when it is true."""
    shown, ran = kinds(sample_lines() if sample is None else sample), kinds(printed)
    lacking = [k for k in ran if k not in shown]
    extra = [k for k in shown if k not in ran]
    if not lacking and not extra:
        if shown == ran:
            return ""
        return "\n".join(["README's sample shows the kinds in another order; a run's:", *ran])
    report = ["README's sample output is not what `trainboard local` prints (tests/support/readme_sample.py)"]
    if lacking:
        report += ["printed by the run, not in the README:", *(f"  + {k}" for k in lacking)]
    if extra:
        report += ["in the README, not printed by the run:", *(f"  - {k}" for k in extra)]
    return "\n".join(report)

"""The nightly tournament's races: a sweep with the races on vs the same sweep trained to the end.

    .venv/bin/python bench/tournament.py [--sweep 'learning_rate=...'] [--epochs 6] [--parallelism 1]

Runs `trainboard local --sweep` twice on the demo data, each into a fresh root (no champion: the races
are the siblings'): once with the races on (race_margin, patience 1, warm-up 1), once trained to the end
(race_warmup = epochs: neither race may stop a trial, only a NaN loss, which ends a trial's training in
both). Prints, for each, the chosen trial, its test accuracy, the epochs trained of those planned and
the training seconds the stops saved: what the races cost in the chosen model's quality and save in GPU
time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trainboard.artifacts.tournament import read_tournament

SWEEP = "learning_rate=0.0001,0.001,0.003,0.03,1,10"  # six trials, from too slow to hopeless


def run(work: Path, sweep: str, epochs: int, parallelism: int, race: list[str]) -> dict:
    root = work / "root"
    command = [
        *(sys.executable, "-c", "import sys; from trainboard.app.cli import main; sys.exit(main())"),
        *("local", "--no-serve", "--json", "--root", str(root), "--run-name", "bench"),
        *("--epochs", str(epochs), "--sweep", sweep, "--parallelism", str(parallelism)),
        *race,
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, cwd=work, check=False)
    if done.returncode:
        raise SystemExit(f"trainboard local failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    tournament = read_tournament(str(root), "bench")
    assert tournament is not None
    return {
        "chosen": result["chosen"],
        "test_accuracy": result["metrics"]["test_accuracy"],
        "epochs": sum(t["epochs"] for t in tournament.trials),
        "planned": sum(t["planned"] for t in tournament.trials),
        "seconds_saved": sum(t["seconds_saved"] for t in tournament.trials),
        "wall_seconds": time.monotonic() - started,
        "trials": tournament.lines(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sweep", default=SWEEP)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--race-margin", default="0.1")
    args = parser.parse_args()
    modes = {
        "races on": ["--race-margin", args.race_margin, "--race-patience", "1", "--race-warmup", "1"],
        "trained to the end": ["--race-warmup", str(args.epochs)],
    }
    for mode, race in modes.items():
        with tempfile.TemporaryDirectory(prefix="trainboard-bench-") as work:
            r = run(Path(work), args.sweep, args.epochs, args.parallelism, race)
        saved = 1 - r["epochs"] / r["planned"]
        print(
            f"tournament {mode}: chosen {r['chosen']} test accuracy {r['test_accuracy']:.4f}; epochs "
            f"{r['epochs']}/{r['planned']} ({saved:.0%} saved, {r['seconds_saved']:.1f} s of training); "
            f"wall {r['wall_seconds']:.0f} s",
            flush=True,
        )
        for line in r["trials"]:
            print(f"  {line}", flush=True)


if __name__ == "__main__":
    main()

"""Every benchmark behind one command (`make bench`), printed as one table.

    .venv/bin/python bench/run_all.py [--only e2e,memory,prepare_data,tensorboard_bucket,...]

Its own measurements:
  e2e          wall time of `trainboard local` on the demo data over the sum of the three heavy components
               run alone, each in its own fresh process as a KFP task runs it (imports, work, exit): what
               the orchestration adds. Goal <= 1.2. Also over the core calls alone (imports and exit
               excluded). Fastest of two alternating repeats of each.
  memory       peak RSS of training on the demo data (the train core alone, in its own process).
and, in quick settings (QUICK) so that the whole command stays under about 20 minutes on 2 cores, the
other scripts in bench/ (bench/train.py is run when it exists). Their own lines become rows of the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]  # tests.support and the other benchmarks

from tests.support.training import train_command  # noqa: E402

Row = tuple[str, str, str]  # measurement, value, goal
DEMO_CONFIG = {"model": "small_cnn", "epochs": 8, "batch_size": 32, "image_size": 32}
QUICK = {  # name[@variant]: the arguments of bench/<name>.py
    "prepare_data": "--images 2000 --repeats 5",
    # TensorBoard over 50 runs: reading gs:// itself against the pod of manifests/.
    "tensorboard_bucket": "--runs 50 --model small_cnn --epochs 30 --ways gcsfs,mirror --samples 2 "
    "--idle-seconds 10",
    # The pod over a year of nightly runs (the script's own default also times the other ways: 25 minutes).
    "tensorboard_bucket@year": "--runs 365 --ways mirror --samples 3 --idle-seconds 60",
    "train": "--pairs 4",
}
# One component's core, alone in a fresh Python process (imports, work, exit), as a KFP task runs it;
# prints the seconds of the core call itself.
COMPONENT_SCRIPT = """
import json, sys, time
from trainboard.components.prepare_data.core import prepare_data
from trainboard.components.train.core import train
from trainboard.components.evaluate.core import evaluate
from trainboard.config import DataConfig, TrainingConfig
name, work, config = sys.argv[1], sys.argv[2], TrainingConfig(**json.loads(sys.argv[3]))
call = {
    "prepare_data": lambda: prepare_data(DataConfig("demo"), f"{work}/data"),
    "train": lambda: train(f"{work}/data", f"{work}/model", f"{work}/root", "bench", config=config),
    "evaluate": lambda: evaluate(f"{work}/data", f"{work}/model", f"{work}/root", "bench"),
}[name]
started = time.perf_counter()
call()
print(time.perf_counter() - started)
"""
COMPONENTS = ("prepare_data", "train", "evaluate")
E2E_REPEATS = 2


def run_measured(command: list[str], env: dict | None = None) -> tuple[str, float, int]:
    """(stdout, wall seconds, peak RSS in MiB) of a child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{command[:3]} exited {proc.returncode}")
    return stdout, time.perf_counter() - started, usage.ru_maxrss // 1024


def bench_e2e(work: Path) -> list[Row]:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in DEMO_CONFIG.items()]
    trainboard = str(Path(sys.executable).parent / "trainboard")
    command = [trainboard, "local", "--no-serve", "--json", *flags]
    # Twice each, alternating, keeping the fastest: on this shared VM a stall adds seconds to either.
    total, process, core = float("inf"), {}, {}
    for repeat in range(E2E_REPEATS):
        total = min(total, run_measured([*command, f"--root={work / f'root{repeat}'}"])[1])
        for name in COMPONENTS:
            script = [
                sys.executable,
                "-c",
                COMPONENT_SCRIPT,
                name,
                str(work / f"cores{repeat}"),
                json.dumps(DEMO_CONFIG),
            ]
            out, seconds, _ = run_measured(script)
            process[name] = min(process.get(name, seconds), seconds)
            core[name] = min(core.get(name, float("inf")), float(out.strip().splitlines()[-1]))
    parts = lambda seconds: ", ".join(f"{name} {s:.1f}" for name, s in seconds.items())  # noqa: E731
    return [
        ("e2e: `trainboard local` demo, wall time", f"{total:.1f} s", ""),
        (
            f"e2e: components alone, each its own process ({parts(process)})",
            f"{sum(process.values()):.1f} s",
            "",
        ),
        (
            "e2e: wall / components alone (what kfp.local adds)",
            f"{total / sum(process.values()):.2f}",
            "<= 1.2",
        ),
        (f"e2e: the core calls alone, no import or exit ({parts(core)})", f"{sum(core.values()):.1f} s", ""),
        (
            "e2e: wall / core calls (adds the processes: 3 TF imports)",
            f"{total / sum(core.values()):.2f}",
            "",
        ),
    ]


def bench_memory(work: Path) -> list[Row]:
    data = work / "cores0" / "data"
    if not data.exists():  # e2e prepared it already when it ran
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from trainboard.components.prepare_data.core import prepare_data; "
                "from trainboard.config import DataConfig; "
                f"prepare_data(DataConfig('demo'), {str(data)!r})",
            ],
            check=True,
            capture_output=True,
        )
    command = train_command(str(data), work / "mem-model", str(work / "mem-root"), "mem", DEMO_CONFIG)
    _, seconds, rss = run_measured(command)
    return [("memory: peak RSS, training on demo data (8 epochs, 32 px)", f"{rss} MiB ({seconds:.0f} s)", "")]


def bench_script(name: str) -> Callable[[Path], list[Row]]:
    """Another script of bench/, quick settings; each line it prints becomes a row."""

    def run(_: Path) -> list[Row]:
        script = BENCH / f"{name.split('@')[0]}.py"
        if not script.exists():
            return [(f"{name}: skipped", f"bench/{name}.py is not in this checkout", "")]
        arguments = QUICK[name].split()
        out, seconds, _ = run_measured([sys.executable, str(script), *arguments])
        rows = [(f"{name}: {' '.join(arguments)}", f"({seconds:.0f} s)", "")]
        return rows + [(f"{name}: {line.strip()}", "", "") for line in out.splitlines() if line.strip()]

    return run


BENCHES: dict[str, Callable[[Path], list[Row]]] = {
    "e2e": bench_e2e,
    "memory": bench_memory,
    **{name: bench_script(name) for name in QUICK},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated (default: all)")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    work = Path(tempfile.mkdtemp(prefix="trainboard-bench-"))
    try:
        for name in args.only.split(","):
            started = time.perf_counter()
            rows += BENCHES[name](work)
            print(f"bench {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measurement':{width}}  {'value':{value_width}}  goal")
    for measurement, value, goal in rows:
        print(f"{measurement:{width}}  {value:{value_width}}  {goal}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())

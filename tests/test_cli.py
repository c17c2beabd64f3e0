"""The CLI: bad input gets a clear error and exit code 2 before anything is written; fast start."""

from __future__ import annotations

import argparse
import getpass
import importlib.metadata
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.cli import BIN, trainboard
from tests.support.gcs import BUCKET, free_port, wait_for_http
from trainboard import layout, storage
from trainboard.app.cli import build_parser, main, schedule
from trainboard.app.cli.output import JSON_HELP
from trainboard.app.cli.root_option import DEFAULT_ROOT, ROOT_HELP
from trainboard.app.local_run import LocalRunResult, readable_copy
from trainboard.config import MODELS
from trainboard.links import tensorboard_run_url

BAD_LOCAL_INPUT = [
    # (arguments, the option named, words the message must hold)
    (["--model", "alexnet"], "--model", ["invalid choice: 'alexnet'", "'small_cnn'", "'vgg16'"]),
    (["--lr-schedule", "step"], "--lr-schedule", ["invalid choice: 'step'", "'constant', 'cosine'"]),
    (["--epochs", "0"], "--epochs", ["greater than 0"]),
    (["--epochs", "-3"], "--epochs", ["greater than 0"]),
    (["--batch-size", "0"], "--batch-size", ["greater than 0"]),
    (["--learning-rate", "0"], "--learning-rate", ["greater than 0"]),
    (["--model", "vgg16", "--image-size", "16"], "--image-size", ["vgg16 accepts: 32 to 512"]),
    (["--image-size", "4096"], "--image-size", ["small_cnn accepts: 16 to 512"]),
    (["--root", "s3://bucket/x"], "--root", ["s3:// is not supported", "gs://BUCKET"]),
    (["--root", "http://example.com/x"], "--root", ["http:// is not supported"]),
    (["--root", "gs://"], "--root", ["no valid bucket name"]),
    (["--root", "gs://B_/x"], "--root", ["no valid bucket name"]),
    (["--root", "gs://bucket/../x"], "--root", ["'..'"]),
    (["--root", ""], "--root", ["empty"]),
    (["--run-name", "a/b"], "--run-name", ["no slashes"]),
    (
        ["--dataset", "imagenet"],
        "--dataset",
        ["unsupported source 'imagenet'", "demo, tfds:NAME", "folder:URI"],
    ),
    (["--dataset", "tfds:caltech10"], "--dataset", ["did you mean tfds:caltech101"]),
    (["--dataset", "folder:missing-folder"], "--dataset", ["no files found"]),
    (["--validation-fraction", "1.5"], "--validation-fraction", ["between 0 and 1"]),
    (["--test-fraction", "0"], "--test-fraction", ["between 0 and 1"]),
    (["--min-accuracy", "1.5"], "--min-accuracy", ["must be in [0, 1]", "got 1.5"]),
    (["--min-accuracy", "-0.1"], "--min-accuracy", ["must be in [0, 1]"]),
    (["--min-improvement", "2"], "--min-improvement", ["must be in [0, 1]"]),
    (["--min-significance", "1.5"], "--min-significance", ["must be in [0, 1] (a p-value", "got 1.5"]),
    (["--run-name", "champion"], "--run-name", ["'champion' is reserved", "models/champion/"]),
]


@pytest.mark.parametrize(
    ("args", "option", "words"), BAD_LOCAL_INPUT, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_bad_local_input_exits_2_and_writes_nothing(tmp_path, args, option, words):
    result = trainboard(
        "local", "--no-serve", *(["--root", "root"] if "--root" not in args else []), *args, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"trainboard local: error: {option}: "), message
    for word in words:
        assert word in message
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == [], "nothing may be written before the input is checked"


def test_bad_input_with_gcs_root_sends_nothing(gcs, tmp_path):
    result = trainboard("local", "--no-serve", "--root", f"gs://{BUCKET}/x", "--epochs", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert storage.list_files(f"gs://{BUCKET}") == []


def test_argparse_type_errors_exit_2_with_one_line(tmp_path):
    result = trainboard("local", "--epochs", "many", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "trainboard local: error: --epochs: invalid int value: 'many'\n"


def test_no_command_prints_the_help_and_version_prints_the_version():
    alone = trainboard()
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout == trainboard("--help").stdout and "COMMAND" in alone.stdout
    version = trainboard("--version")
    assert version.returncode == 0
    assert version.stdout == f"trainboard {importlib.metadata.version('trainboard')}\n"
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert version.stdout.split()[1] == pyproject["project"]["version"]


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, ``weights fetch`` included."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{parser.prog.removeprefix('trainboard').strip()} {name}".strip()] = sub
                found.update(_commands(sub))
    return found


def test_help_shows_choices_and_defaults_as_written():
    """Closed sets are argparse choices (listed in the help, refused by argparse); a default is shown as
    a person writes it: none for an empty string (no "(default: )"), 10 for ten, not 10.0."""
    commands = _commands(build_parser())
    options = {
        (name, option): action
        for name, sub in commands.items()
        for action in sub._actions
        for option in action.option_strings
    }
    assert options["local", "--model"].choices == tuple(MODELS)
    assert options["local", "--lr-schedule"].choices == ("constant", "cosine")
    assert options["local", "--precision"].choices == ("auto", "float32", "mixed_float16", "mixed_bfloat16")
    assert options["manifests", "--overlay"].choices == ("gke", "kubeflow", "basic")
    for name in commands:
        text = trainboard(*name.split(), "--help").stdout
        assert "(default: )" not in text, name
        for shown in re.findall(r"\(default: ([^)]*)\)", " ".join(text.split())):
            assert not re.fullmatch(r"-?\d+\.0", shown), (name, shown)
    local_help = " ".join(trainboard("local", "--help").stdout.split())
    assert "--lr-schedule {constant,cosine}" in local_help
    assert "training. (default: 10)" in local_help, "sync_seconds, 10.0"
    assert "prefix on a cluster). --max-image-pixels" in local_help, "tfds_data_dir: no empty default"


def _option_by_command(flag: str) -> dict[str, argparse.Action]:
    """{command: its option ``flag``} over every command and action of the CLI that has it."""
    return {
        name: action
        for name, sub in _commands(build_parser()).items()
        for action in sub._actions
        if flag in action.option_strings
    }


def test_every_root_option_is_the_one_declaration():
    """--root reads the same on every command that takes one (declared once, in cli/root_option.py), with
    the one default, also the root under tensorboard's --logdir default: what `local` writes, the others
    read without being told."""
    roots = _option_by_command("--root")
    assert set(roots) == {
        "local",
        "weights fetch",
        "champion show",
        "champion history",
        "champion rollback",
        "champion repair",
        "gc",
        "serve",
        "doctor",
    }
    for name, action in roots.items():
        assert action.help.startswith(ROOT_HELP), name
        assert (action.required, action.default) == (False, DEFAULT_ROOT), name
    logdir = _option_by_command("--logdir")["tensorboard"]
    assert logdir.default == layout.tensorboard_root(DEFAULT_ROOT)


def test_every_command_that_prints_records_takes_the_one_json_option():
    """Readable by default; --json, the same name and words everywhere (cli/output.py), on each command
    whose stdout is records, and on no other."""
    jsons = _option_by_command("--json")
    assert set(jsons) == {
        "local",
        "weights fetch",
        "champion show",
        "champion history",
        "champion rollback",
        "gc",
        "schedule list",
        "doctor",
    }
    for name, action in jsons.items():
        assert (action.help, action.default) == (JSON_HELP, False), name


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["champion", "show", "--jsno"], "trainboard champion show: error: unrecognized arguments: --jsno"),
        (["gc", "--keep", "2", "extra"], "trainboard gc: error: unrecognized arguments: extra"),
        (
            ["champion", "rollback"],
            "trainboard champion rollback: error: the following arguments are required: --to",
        ),
        (["champion", "shw"], "trainboard champion: error: ACTION: invalid choice: 'shw' (choose from "),
        (["schedule", "list", "--json", "x"], "trainboard schedule list: error: unrecognized arguments: x"),
        (["--bogus"], "trainboard: error: unrecognized arguments: --bogus"),
        (["schedule"], "trainboard schedule: error: the following arguments are required: ACTION"),
    ],
    ids=" ".join,
)
def test_every_error_names_the_command_it_refused(tmp_path, monkeypatch, capsys, args, line):
    """One prefix for every refusal, `trainboard COMMAND [ACTION]: error: `, argparse's own included:
    an option a subcommand does not know is that subcommand's error, not `trainboard: error:`."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(args)
    out, err = capsys.readouterr()
    assert (exit_.value.code, out) == (2, "")
    assert err.startswith(line) and len(err.splitlines()) == 1, err


def test_help_lists_commands():
    result = trainboard("--help")
    assert result.returncode == 0
    for command in ("local", "compile", "tensorboard", "submit", "schedule"):
        assert command in result.stdout
    # One noun and its verbs, as kfp's `recurring-run create|list|...`: no second `schedules` command.
    top = [name for name in _commands(build_parser()) if " " not in name]
    assert top.count("schedule") == 1 and "schedules" not in top and "schedules" not in result.stdout
    assert [name for name in _commands(build_parser()) if name.startswith("schedule ")] == [
        "schedule create",
        "schedule list",
        "schedule pause",
        "schedule resume",
        "schedule delete",
    ]
    local_help = trainboard("local", "--help").stdout
    for option in (
        "--dataset",
        "--model",
        "--epochs",
        "--batch-size",
        "--image-size",
        "--min-accuracy",
        "--min-improvement",
        "--min-significance",
        "--force-promote",
        "--root",
        "--no-serve",
        "--json",
    ):
        assert option in local_help
    shared = ["--endpoint", "--token", "--experiment", "--param", "--service-account", "--tensorboard-url"]
    for command, options in (("submit", ["--run-name", "--wait"]), ("schedule create", ["--name", "--cron"])):
        command_help = trainboard(*command.split(), "--help").stdout
        for option in shared + options:
            assert option in command_help, (command, option)


def test_cli_and_pipeline_do_not_import_tensorflow():
    code = (
        "import sys, trainboard.app.cli, trainboard.app.local_run, trainboard.pipelines.training_pipeline;"
        "import trainboard.app.cluster.runs, trainboard.app.cluster.recurring_runs;"
        "import trainboard.sources.folder, trainboard.sources.tfds;"
        "import trainboard.app.cluster.pipeline_spec as spec; spec.compiled_pipeline();"
        # the promote task needs no TensorFlow
        "import trainboard.components.promote.core, trainboard.artifacts.model;"
        "heavy = [m for m in ('tensorflow', 'keras', 'tensorflow_datasets', 'kserve') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_starts_without_kfp():
    """`trainboard --help` stays fast: kfp (about a second to import) loads only when a command runs."""
    code = (
        "import sys, trainboard.app.cli; trainboard.app.cli.build_parser(); assert 'kfp' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tensorboard_rejects_bad_logdir(tmp_path):
    result = trainboard("tensorboard", "--logdir", "ftp://x/y", cwd=tmp_path)
    assert result.returncode == 2
    assert "trainboard tensorboard: error: --logdir: scheme ftp:// is not supported" in result.stderr


def test_tensorboard_keeps_its_own_output_in_a_log_until_it_fails(tmp_path):
    """Quiet by default: TensorBoard's start-up notes and the C++ logging of what its plugins load go to a
    log file, not after trainboard's lines; when TensorBoard fails, its last lines and the log are shown."""
    logdir = tmp_path / "root" / "tensorboard"
    logdir.mkdir(parents=True)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("trainboard")), "tensorboard", "--logdir", str(logdir),
         "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/data/runs", proc=server)
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert out == "" and err.splitlines() == [
        f"trainboard: TensorBoard over {logdir} at {tensorboard_run_url(f'http://127.0.0.1:{port}/')} "
        "(Ctrl-C to stop)",
        "trainboard: the links open on the curves; the confusion matrix and sample images: clear "
        "TensorBoard's tag filter, or its IMAGES tab",
    ]
    log = (tmp_path / f"trainboard-tensorboard-{getpass.getuser()}.log").read_text()
    assert f"TensorBoard {importlib.metadata.version('tensorboard')} at http://127.0.0.1:{port}/" in log

    with socket.socket() as taken:  # bound, not listening: the port check passes, TensorBoard cannot bind
        taken.bind(("127.0.0.1", 0))
        failed = trainboard(
            "tensorboard", "--logdir", str(logdir), "--port", str(taken.getsockname()[1]), env=env
        )
    assert failed.returncode == 1
    assert "in use by another program" in failed.stderr and "Traceback" not in failed.stderr
    assert (
        "trainboard tensorboard: error: TensorBoard stopped with exit code 1; its last lines are above, "
        f"the whole log is {tmp_path}"
    ) in failed.stderr


def test_weights_fetch_without_network_fails_saying_what_it_needs(tmp_path):
    """Here, where storage.googleapis.com cannot be reached: exit 1 in one line, before TensorFlow loads;
    nothing cached. Where the host answers but Keras's download fails, the same exit and one line."""
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras")}
    done = trainboard(
        "weights", "fetch", "vgg16", "--image-size", "32", "--root", str(tmp_path / "root"), env=env
    )
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("trainboard weights fetch: error: storage.googleapis.com cannot be reached")
    assert "has no cached copy; run this on a machine with network" in line
    assert not (tmp_path / "root" / "weights").exists()


def test_output_cut_short_by_a_pipe_ends_quietly(tmp_path):
    """`trainboard champion history --json | head -1`: the reader leaves, the command stops, no traceback."""
    from trainboard.artifacts.champion import ChampionRecord, record_history

    root = str(tmp_path / "root")
    for night in range(300):  # more than a pipe's buffer holds
        stamp = f"2026-01-01T00:{night // 60:02d}:{night % 60:02d}+00:00"
        record_history(
            root, ChampionRecord(f"r{night}", f"models/r{night}", {"test_accuracy": 0.5}, stamp, "x")
        )
    proc = subprocess.Popen(
        [str(BIN / "trainboard"), "champion", "history", "--json", "--root", root],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert json.loads(proc.stdout.readline())["run"] == "r0"
    proc.stdout.close()
    assert proc.wait(60) == 141 and "Traceback" not in proc.stderr.read()


def test_weights_fetch_of_a_cached_copy_says_where_it_is_readable_or_as_json(tmp_path, monkeypatch, capsys):
    """Already cached (its checksum there): nothing downloaded; the model, size and copy a line each, or
    (--json) one object. No --root: the default root, the one `local` reads its cache from."""
    monkeypatch.chdir(tmp_path)
    uri = layout.imagenet_weights(str(tmp_path / DEFAULT_ROOT), "vgg16", 32)
    storage.write_bytes(uri + ".sha256", b"0" * 64)
    assert main(["weights", "fetch", "vgg16", "--image-size", "32"]) == 0
    out, err = capsys.readouterr()
    assert out == f"model:      vgg16\nimage size: 32\ncached at:  {uri}\n" and "cached already" in err
    assert main(["weights", "fetch", "vgg16", "--image-size", "32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"model": "vgg16", "image_size": 32, "uri": uri}


def _without_this_environment() -> dict:
    """A new shell's environment where this environment's scripts are not on PATH (no venv activated)."""
    path = [p for p in os.environ["PATH"].split(os.pathsep) if Path(p).resolve() != BIN.resolve()]
    return {**os.environ, "PATH": os.pathsep.join(path)}


def _runs_with_help(suggested: str, env: dict) -> subprocess.CompletedProcess:
    """The suggested command pasted into a shell, ``--help`` added: it exists and takes these words."""
    return subprocess.run(["bash", "-c", f"{suggested} --help"], capture_output=True, text=True, env=env)


def test_a_suggested_command_names_the_program_as_a_new_shell_finds_it(tmp_path):
    """Run as `.venv/bin/trainboard` with no venv on PATH, a command trainboard suggests starts with its
    absolute path; with the venv on PATH (activated), with `trainboard`. Either runs as printed."""
    bare = _without_this_environment()
    on_path = {**bare, "PATH": f"{BIN}{os.pathsep}{bare['PATH']}"}
    for env, program in ((bare, str(BIN / "trainboard")), (on_path, "trainboard")):
        missing = trainboard("tensorboard", "--logdir", "nowhere", env=env, cwd=tmp_path)
        assert missing.returncode == 2
        [suggested] = re.findall(r"`([^`]*local --root ROOT)`", missing.stderr)
        assert suggested == f"{program} local --root ROOT"
        helped = _runs_with_help(suggested, env)
        assert helped.returncode == 0 and helped.stdout.startswith("usage: trainboard local"), helped.stderr

        offline = {**env, "TRAINBOARD_OFFLINE": "1"}
        imagenet = ["--model", "mobilenet_v3_small", "--weights", "imagenet", "--root", "root"]
        refused = trainboard("local", "--no-serve", *imagenet, env=offline, cwd=tmp_path)
        assert refused.returncode == 2
        fetch = refused.stderr.strip().split("seed the cache on a machine with network: ")[1]
        assert fetch == f"{program} weights fetch mobilenet_v3_small --image-size 224 --root {tmp_path}/root"
        helped = _runs_with_help(fetch, env)
        assert helped.returncode == 0 and helped.stdout.startswith("usage: trainboard weights fetch")


def _a_finished_run(root: Path, run: str, *, promoted: bool) -> LocalRunResult:
    from trainboard import layout

    return LocalRunResult(
        run=run,
        root=str(root),
        logdir=layout.tensorboard_dir(str(root), run),
        metrics={"test_accuracy": 0.9, "test_loss": 0.3},
        model_uri=f"{root}/pipeline-root/trainboard-x/train/trained_model",
        promoted=promoted,
        champion=run if promoted else "older",
        champion_model_uri=layout.champion_model_dir(str(root)),
        reason="first model" if promoted else "not better",
        card=str(root / "reports" / run / "dataset-card.md"),
        report=str(root / "reports" / run / "promotion-report.md"),
    )


@pytest.mark.parametrize("promoted", [True, False], ids=["promoted", "not promoted"])
def test_a_local_run_prints_a_watch_command_that_runs_and_says_what_each_path_is(
    tmp_path, monkeypatch, capsys, promoted
):
    """The run's first lines and its summary (the pipeline itself stood in for): the watch command runs
    pasted into a new shell; the card and report are .md files; `model:` is always the run's own model,
    and the champion's model has its own line when this run became it."""
    from tests.support.cli import in_process
    from trainboard.app import local_run

    root = tmp_path / "root"
    monkeypatch.setattr(sys, "argv", [str(BIN / "trainboard")])  # started as .venv/bin/trainboard
    monkeypatch.setenv("PATH", _without_this_environment()["PATH"])
    monkeypatch.setattr(
        local_run, "run_local", lambda *a, **k: _a_finished_run(root, "r1", promoted=promoted)
    )
    code, _, err = in_process(capsys, "local", "--no-serve", "--root", str(root), "--run-name", "r1")
    assert code == 0, err
    [watch] = re.findall(r"^trainboard: watch it live: (.*)$", err, re.MULTILINE)
    assert watch == f"{BIN / 'trainboard'} tensorboard --logdir {root / 'tensorboard'}"
    helped = _runs_with_help(watch, _without_this_environment())
    assert helped.returncode == 0 and helped.stdout.startswith("usage: trainboard tensorboard")

    summary = err.splitlines()[-6 if promoted else -5 :]
    labels = [line.split(": ", 2)[1] for line in summary[1:]]
    paths = ["dataset card", "promotion report", "model", "champion's model"][: len(labels) - 1]
    assert labels == [*paths, "serve the champion"]
    assert len({line.index("/") for line in summary[1:-1]}) == 1, "the paths start in one column"
    assert f"dataset card:     {root}/reports/r1/dataset-card.md\n" in err
    assert f"promotion report: {root}/reports/r1/promotion-report.md (both Markdown" in err
    assert f"model:            {root}/pipeline-root/trainboard-x/train/trained_model (this run's)\n" in err
    assert (f"champion's model: {root}/models/champion (a copy of this run's)" in err) == promoted


def test_a_markdown_artifact_is_copied_as_a_md_file_with_its_images_beside_it(tmp_path):
    """The dataset card inlines its sample grid (a 45 KB line): the copy a person opens links the image,
    written beside it, so that it reads in a terminal and shows the same in a Markdown viewer."""
    from trainboard import markdown

    jpeg, png = b"\xff\xd8\xff" + bytes(40_000), b"\x89PNG\r\n" + bytes(100)
    artifact = tmp_path / "pipeline-root" / "card"
    artifact.parent.mkdir()
    artifact.write_text(
        f"# Dataset demo\n\n| a | b |\n\n{markdown.image('Samples [1]', jpeg, 'image/jpeg')}\n\n"
        f"{markdown.image('Chart', png, 'image/png')}\n"
    )
    copy = Path(readable_copy(str(artifact), tmp_path / "reports" / "r1" / "dataset-card.md"))
    assert copy == tmp_path / "reports" / "r1" / "dataset-card.md"
    text = copy.read_text()
    assert text == (
        "# Dataset demo\n\n| a | b |\n\n![Samples \\[1\\]](dataset-card-1.jpg)\n\n"
        "![Chart](dataset-card-2.png)\n"
    )
    assert (copy.parent / "dataset-card-1.jpg").read_bytes() == jpeg
    assert (copy.parent / "dataset-card-2.png").read_bytes() == png


def test_a_run_on_several_workers_says_so_as_training_starts():
    """`--workers 2`: the train step's line says two workers train, and how (the task's `workers` event)."""
    import io

    from trainboard.app.cli.local import RunConsole

    screen = io.StringIO()
    console = RunConsole(screen)
    console.on_event({"kind": "task_started", "task": "train"})
    console.on_event(
        {"kind": "workers", "workers": 2, "how": "a process each on this machine", "task": "train"}
    )
    assert screen.getvalue().splitlines()[1] == "trainboard: train: 2 workers, a process each on this machine"


def test_the_docs_schedule_commands_are_spelled_as_the_cli_parses_them(capsys):
    """Every `trainboard schedule` line of the README and docs/cluster.md (they need a cluster to run):
    the current spelling, no old one a notice would name, and options the action takes."""
    repo = Path(__file__).resolve().parent.parent
    found = []
    for page in (repo / "README.md", repo / "docs" / "cluster.md"):
        for block in re.findall(r"```sh\n(.*?)```", page.read_text(), re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                if match := re.search(r"\btrainboard (schedules?\b.*)", line):
                    args = shlex.split(match[1], comments=True)
                    assert schedule.new_spelling(args) == args, f"{page.name}: {line}"
                    build_parser().parse_args(args)  # exits 2 on an option the action does not take
                    found.append(args[:2])
    assert capsys.readouterr().err == ""
    assert ["schedule", "create"] in found and ["schedule", "list"] in found, found


def test_the_docs_cluster_commands_that_run_here_run_as_printed(tmp_path):
    """The README's and docs/cluster.md's `trainboard compile` and `manifests` lines (the cluster commands
    that need no cluster), pasted into a shell after the page's lines that set its values, the venv
    activated: each exits 0 (a placeholder like gs://BUCKET would stop it)."""
    repo = Path(__file__).resolve().parent.parent
    ran = []
    for page in (repo / "README.md", repo / "docs" / "cluster.md"):
        blocks = "".join(re.findall(r"```sh\n(.*?)```", page.read_text(), re.DOTALL))
        lines = blocks.replace("\\\n", " ").splitlines()  # a command continued with \ as one line
        settings = [line for line in lines if re.match(r"(export )?[A-Z_]+=\S+\s*(#.*)?$", line)]
        for command in lines:
            if re.search(r"\btrainboard (compile|manifests)\b", command):
                shell = "\n".join([*settings, command.split(" | ")[0]])
                done = subprocess.run(
                    ["bash", "-c", shell],
                    capture_output=True,
                    text=True,
                    cwd=tmp_path,
                    env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
                )
                assert done.returncode == 0, f"{page.name}: {command}\n{done.stderr}"
                ran.append(command)
    assert len(ran) >= 3, ran


def test_a_task_of_a_local_run_suggests_commands_as_its_cli_was_started(monkeypatch):
    """kfp.local's task processes are no `trainboard`: they name the program the CLI handed them."""
    from trainboard import invocation
    from trainboard.artifacts.training_state import TrainingState, check_same_start
    from trainboard.errors import UsageError

    monkeypatch.setenv(invocation.ENV, "/home/me/project/.venv/bin/trainboard")
    started = TrainingState(epoch=1, started_with={"epochs": 1})
    with pytest.raises(
        UsageError, match=r"\(/home/me/project/\.venv/bin/trainboard local --restart --run-name r1\)"
    ):
        check_same_start(started, {"epochs": 2}, "root", "r1")

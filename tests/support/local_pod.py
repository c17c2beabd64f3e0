"""Run a rendered Deployment's pod on this machine: each container's command, args and env as written in
the manifest, with only what a laptop lacks mapped: volumes become local folders, the containerPort a free
local port, 0.0.0.0 the loopback address, the image's `python` this interpreter or the one given."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command, args and env values."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def container_argv(
    container: dict, volume_dirs: dict[str, Path], port: int, python: str = sys.executable
) -> tuple[list[str], dict[str, str]]:
    """The container's argv and env, with mount paths, port and host mapped to this machine, and the
    image's `python` to ``python``."""
    mounts = {m["mountPath"]: str(volume_dirs[m["name"]]) for m in container.get("volumeMounts", [])}
    mount_re = re.compile(rf"(^|=)({'|'.join(map(re.escape, sorted(mounts, key=len, reverse=True)))})(?=/|$)")

    def local(value: str) -> str:
        return mount_re.sub(lambda m: m.group(1) + mounts[m.group(2)], value) if mounts else value

    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" not in var:
            raise ValueError(f"{container['name']}: env {var['name']} has no literal value")
        env[var["name"]] = local(expand(var["value"], env))
    argv = [local(expand(a, env)) for a in container["command"] + container.get("args", [])]
    for container_port in container.get("ports", []):
        argv = [a.replace(f"--port={container_port['containerPort']}", f"--port={port}") for a in argv]
    argv = [a.replace("--host=0.0.0.0", "--host=127.0.0.1") for a in argv]
    if argv[0] == "python":
        argv[0] = python
    return argv, env


class LocalPod:
    """The pod template of ``deployment`` as local processes; ``port`` serves its HTTP container port;
    ``python`` stands for the image's (default: this interpreter)."""

    def __init__(
        self,
        deployment: dict,
        workdir: Path,
        port: int,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ):
        spec = deployment["spec"]["template"]["spec"]
        volume_dirs = {v["name"]: workdir / v["name"] for v in spec.get("volumes", [])}
        for d in volume_dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        for container in spec["containers"]:
            argv, container_env = container_argv(container, volume_dirs, port, python)
            self.logs[container["name"]] = log = workdir / f"{container['name']}.log"
            with log.open("w") as out:
                self.processes[container["name"]] = subprocess.Popen(
                    argv, env={**os.environ, **(env or {}), **container_env}, stdout=out, stderr=out
                )

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(10)

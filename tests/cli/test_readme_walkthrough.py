"""The README's vendor walkthrough, run as written against the quickstart's demo district served
over real HTTP: the credentials command, the token request and each curl call, with the README's
``# `` lines after a command as that command's expected output ("..." stands for anything)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from served import Served

README = Path(__file__).resolve().parents[2] / "README.md"
WALKTHROUGH_START = "To try it on the demo district"


def walkthrough() -> list[tuple[str, list[str]]]:
    """The README's walkthrough commands (continuation lines joined), each with the ``# `` lines
    that follow it."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(WALKTHROUGH_START):]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)[:2]
    commands: list[tuple[str, list[str]]] = []
    pending = ""
    for line in "".join(blocks).splitlines():
        if line.startswith("# "):
            commands[-1][1].append(line[2:])
        elif line.strip():
            pending += line.rstrip("\\") + (" " if line.endswith("\\") else "")
            if not line.endswith("\\"):
                commands.append((pending, []))
                pending = ""
    return commands


def _matches(expected: str, output: str) -> bool:
    """Whether a whole line of ``output`` is ``expected``, "..." standing for anything."""
    pattern = re.compile(".*".join(re.escape(part) for part in expected.split("...")))
    return any(pattern.fullmatch(line.rstrip("\r")) for line in output.splitlines())


@pytest.mark.slow
def test_the_readme_walkthrough_works_as_written(database_url, tmp_path):
    if shutil.which("curl") is None:
        pytest.fail("curl is needed: the README's walkthrough uses it")
    commands = walkthrough()
    assert [c.split()[0] for c, _ in commands] == ["eval", "TOKEN=$(curl", "curl", "curl", "curl"]
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url,
               GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"))
    server = Served(env, ["quickstart"], timeout=120)
    port = server.port
    try:
        # Run as a reader of the README would, at the port this test serves on, with this
        # interpreter's gateway where the README names the virtual environment's.
        script = ["set -euo pipefail"]
        for index, (command, _) in enumerate(commands):
            command = command.replace("localhost:5000", f"localhost:{port}").replace(
                ".venv/bin/gateway", f"{sys.executable} -m gateway")
            script += [f"echo '@@ {index}'", command, "echo"]
        ran = subprocess.run(["bash", "-c", "\n".join(script)], env=env, capture_output=True,
                             text=True, timeout=120)
    finally:
        server.stop()
    assert ran.returncode == 0, ran.stderr
    outputs = re.split(r"^@@ \d+\n", ran.stdout, flags=re.M)[1:]
    assert len(outputs) == len(commands)
    for (command, expected), output in zip(commands, outputs):
        output = output.replace(f"localhost:{port}", "localhost:5000")
        for line in expected:
            assert _matches(line, output), (command, line, output[:2000])
    # Every curl call answered something: the token worked and each read returned people.
    assert all('"users":[{' in output for output in outputs[2:])

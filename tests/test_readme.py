"""The README is a contract: every command and the Python snippet it shows run as written.

The two that run them are slow (minutes: they run the Quickstart's searches, sweep and report). The install steps (``pip install``)
and the test command itself are skipped: this test runs inside the environment they make.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SKIPPED_STEPS = ("pip install", "python -m pytest")


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def shell_commands(text: str) -> list[str]:
    """Each command line of the README's bash blocks, comments and install/test steps removed."""
    commands = []
    for block in fenced_blocks(text, "bash"):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if not line or line.startswith("#"):
                continue
            steps = [s.strip() for s in line.split("&&")]
            kept = [s for s in steps if not s.startswith(SKIPPED_STEPS)]
            if kept:
                commands.append(" && ".join(kept))
    return commands


def test_the_readme_shows_commands():
    commands = shell_commands(README.read_text())
    assert any(c.startswith("hwqnn search --target jetson") for c in commands)
    assert len(commands) >= 8


def _run(argv: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path):
    """In order, in one fresh folder (later commands use the run directories of earlier ones)."""
    hwqnn = Path(sys.executable).with_name("hwqnn")
    for command in shell_commands(README.read_text()):
        argv = shlex.split(command)
        if argv[0] == "hwqnn":
            argv[0] = str(hwqnn) if hwqnn.exists() else "hwqnn"
        done = _run(argv, tmp_path, timeout=1800)
        assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, command


@pytest.mark.slow
def test_the_readme_python_snippet_runs(tmp_path):
    for snippet in fenced_blocks(README.read_text(), "python"):
        done = _run([sys.executable, "-c", snippet], tmp_path, timeout=1800)
        assert done.returncode == 0, done.stderr[-3000:]

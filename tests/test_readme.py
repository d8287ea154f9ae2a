"""The README is a contract: every command and the Python snippet it shows run as written.

The two that run them are slow (minutes: they run the Quickstart's searches, sweep and report). The install steps (``pip install``)
and the test command itself are skipped: this test runs inside the environment they make.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SKIPPED_STEPS = ("pip install", "python -m pytest")


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def shell_commands(text: str) -> list[str]:
    """Each bash block of the README as one script: comments and install/test steps removed, here-documents
    kept as written."""
    scripts = []
    for block in fenced_blocks(text, "bash"):
        lines, heredoc_end = [], None
        for line in block.splitlines():
            if heredoc_end is not None:
                lines.append(line)
                heredoc_end = None if line.strip() == heredoc_end else heredoc_end
                continue
            start = re.search(r"<<'?(\w+)'?", line)
            heredoc_end = start[1] if start else None
            line = re.sub(r"\s+#.*$", "", line).strip()
            if not line or line.startswith("#"):
                continue
            steps = [s.strip() for s in line.split("&&")]
            kept = [s for s in steps if not s.startswith(SKIPPED_STEPS)]
            if kept:
                lines.append(" && ".join(kept))
        if lines:
            scripts.append("\n".join(lines))
    return scripts


def test_the_readme_shows_commands():
    scripts = shell_commands(README.read_text())
    assert any(s.startswith("hwqnn search --target jetson") for s in scripts)
    assert sum(s.count("hwqnn ") for s in scripts) >= 10


def _run(argv: list[str], cwd: Path, timeout: int, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"PATH": path} if path else {})}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path):
    """Block by block, in order, in one fresh folder (later commands use the run directories of earlier
    ones), with the venv of this interpreter first on PATH (where ``hwqnn`` is installed)."""
    env_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    for script in shell_commands(README.read_text()):
        done = _run(["bash", "-euo", "pipefail", "-c", script], tmp_path, timeout=3000, path=env_path)
        assert done.returncode == 0, f"{script!r} exited {done.returncode}:\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, script


@pytest.mark.slow
def test_the_readme_python_snippet_runs(tmp_path):
    for snippet in fenced_blocks(README.read_text(), "python"):
        done = _run([sys.executable, "-c", snippet], tmp_path, timeout=1800)
        assert done.returncode == 0, done.stderr[-3000:]

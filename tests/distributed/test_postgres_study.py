"""The shared study on a real PostgreSQL server, started in a temporary directory for the test."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from .ddp_helpers import free_port  # noqa: E402

WORKER = Path(__file__).with_name("study_worker.py")


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` system user then."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture
def postgres_url(tmp_path_factory):
    """A throw-away server (initdb + pg_ctl), or a skip that says what is missing."""
    for tool in ("initdb", "pg_ctl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: install PostgreSQL with the system package manager "
                        f"(e.g. apt-get install -y postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("no PostgreSQL driver for SQLAlchemy: pip install 'psycopg[binary]'")
    folder = Path("/tmp") / f"hwqnn-pg-{os.getpid()}-{free_port()}"
    folder.mkdir(mode=0o777)
    os.chmod(folder, 0o777)
    data, port = folder / "data", free_port()
    init = subprocess.run(_as_server_user(["initdb", "-D", str(data), "-U", "hwqnn", "--auth=trust"]),
                          capture_output=True, text=True)
    if init.returncode:
        pytest.skip(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
    start = subprocess.run(_as_server_user(["pg_ctl", "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
                                            f"-p {port} -k {folder} -h 127.0.0.1", "start"]),
                           capture_output=True, text=True)
    if start.returncode:
        pytest.skip(f"pg_ctl could not start a server: {start.stderr.strip()[-300:]}")
    try:
        yield f"postgresql+psycopg://hwqnn@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user(["pg_ctl", "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_on_postgresql_evaluate_every_candidate_exactly_once(postgres_url, tmp_path):
    from hwqnn.distributed import SharedStudy, StudyOptions

    log = tmp_path / "evals.log"
    workers = [subprocess.Popen([sys.executable, str(WORKER), postgres_url, "pg", str(log)]) for _ in range(2)]
    for w in workers:
        assert w.wait(timeout=180) == 0
    evaluated = [tuple(map(int, line.split())) for line in log.read_text().splitlines()]
    assert sorted(i for _, i in evaluated) == list(range(6))
    study = SharedStudy.open(postgres_url, "pg", [{"name": f"point-{i}"} for i in range(6)], {"seed": 0},
                             StudyOptions(heartbeat_s=1, grace_s=3, max_retry=2, poll_s=0.3))
    assert study.evaluations() == dict.fromkeys(range(6), 1) and not study.pending()

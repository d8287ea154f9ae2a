"""The shared study: workers drain one queue, each candidate evaluated once, a killed worker's trial retried."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from hwqnn.distributed import SharedStudy, StudyError, StudyOptions, default_storage_url, redact  # noqa: E402

WORKER = Path(__file__).with_name("study_worker.py")
FAST = StudyOptions(heartbeat_s=1, grace_s=3, max_retry=2, poll_s=0.3)


def _start(url: str, log: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), url, "s", str(log), *extra])


def _lines(log: Path) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.slow  # the kill test below covers the same guarantee in the default suite
def test_two_workers_evaluate_every_candidate_exactly_once(tmp_path):
    url, log = default_storage_url(tmp_path), tmp_path / "evals.log"
    workers = [_start(url, log), _start(url, log)]
    for w in workers:
        assert w.wait(timeout=120) == 0
    evaluated = _lines(log)
    assert sorted(i for _, i in evaluated) == list(range(6))  # each once, none lost
    assert len({pid for pid, _ in evaluated}) == 2  # both workers took part
    study = SharedStudy.open(url, "s", [{"name": f"point-{i}"} for i in range(6)], {"seed": 0}, FAST)
    assert study.evaluations() == dict.fromkeys(range(6), 1) and not study.pending()
    assert sorted(r["name"] for r in study.results().values()) == [f"point-{i}" for i in range(6)]


def test_a_worker_killed_mid_trial_has_its_trial_retried(tmp_path):
    url, log = default_storage_url(tmp_path), tmp_path / "evals.log"
    doomed = _start(url, log, "--hang", "0")
    deadline = time.monotonic() + 60
    while not Path(f"{log}.hang").exists():
        assert time.monotonic() < deadline and doomed.poll() is None, "the worker never started candidate 0"
        time.sleep(0.1)
    survivor = _start(url, log)
    doomed.send_signal(signal.SIGKILL)  # kill -9, mid-trial: no clean-up, the trial stays RUNNING
    doomed.wait(timeout=10)
    assert survivor.wait(timeout=120) == 0
    evaluated = _lines(log)
    assert sorted(i for _, i in evaluated) == list(range(6))
    assert all(pid == survivor.pid for pid, _ in evaluated)  # candidate 0 was retried by the survivor
    study = SharedStudy.open(url, "s", [{"name": f"point-{i}"} for i in range(6)], {"seed": 0}, FAST)
    assert study.evaluations() == dict.fromkeys(range(6), 1)
    failed = [t for t in study.study.get_trials() if t.state.name == "FAIL"]
    assert [t.user_attrs["candidate"] for t in failed] == [0]  # the killed trial, failed once and retried


def test_a_worker_with_other_settings_is_refused(tmp_path):
    url = default_storage_url(tmp_path)
    SharedStudy.open(url, "s", [{"name": "a"}], {"seed": 0, "epochs": 2}, FAST)
    with pytest.raises(StudyError, match=r"disagrees with study 's' on epochs: it has 3, .* created with 2"):
        SharedStudy.open(url, "s", [{"name": "a"}], {"seed": 0, "epochs": 3}, FAST)
    with pytest.raises(StudyError, match="candidates differ"):
        SharedStudy.open(url, "s", [{"name": "b"}], {"seed": 0, "epochs": 2}, FAST)


@pytest.mark.parametrize("url, reason", [
    ("sqlite:////nonexistent-dir/for/sure/study.db", "unable to open database file"),
    ("postgresql://hwqnn:secret@127.0.0.1:9/db", ""),
    ("nonsense://x", ""),
])
def test_an_unreachable_storage_is_one_clear_error(url, reason):
    with pytest.raises(StudyError) as info:
        SharedStudy.open(url, "s", [{"name": "a"}], {}, FAST)
    message = str(info.value)
    assert message.startswith("cannot reach the study storage") and reason in message and "\n" not in message
    assert "secret" not in message


def test_redact_hides_the_password():
    assert redact("postgresql://u:p4ss@host:5432/db") == "postgresql://u:***@host:5432/db"

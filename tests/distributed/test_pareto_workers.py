"""``hwqnn pareto --storage``: two real workers share a 6-point sweep through one SQLite study."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("optuna")


def _worker(out, study_name: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hwqnn", "pareto", "--target", "bitfusion", "--storage",
                             "--study-name", study_name, "--out", str(out), "--sweep", "latency=0.4x:1.0x:6",
                             "--baselines", "", "--epochs", "1", "--train-limit", "128", "--eval-limit", "64",
                             "--threads", "1", "--device", "cpu", "--no-warm-start"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.mark.slow  # two CLI workers, six short searches
def test_two_pareto_workers_evaluate_each_of_six_points_exactly_once(tmp_path):
    import optuna

    from hwqnn.distributed import default_storage_url, open_storage

    out = tmp_path / "sweep"
    workers = [_worker(out, "six")]
    workers.append(_worker(out, "six"))
    logs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [log[-2000:] for log in logs]
    study = optuna.load_study(study_name="six", storage=open_storage(default_storage_url(out)))
    done = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["candidate"] for t in done) == list(range(6))  # each point once, none lost
    assert not [t for t in study.get_trials() if t.state != optuna.trial.TrialState.COMPLETE]
    workers_seen = {t.user_attrs["result"]["worker"] for t in done}
    assert len(workers_seen) == 2, workers_seen  # both took part

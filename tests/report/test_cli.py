"""``hwqnn report`` and ``hwqnn pareto`` on the command line: --from without retraining, and clear errors."""

import pytest

from hwqnn.cli import main


def test_report_from_run_and_sweep_directories(run_dirs, sweep, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--from", *map(str, run_dirs), str(sweep[0]), "--out", str(out)]) == 0
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert "report:" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["report", "--targets", "no-such-device", "--out", "{tmp}"], "unknown hardware profile 'no-such-device'"),
    (["report", "--targets", "bitfusion", "--data", "cifar10", "--data-dir", "{tmp}/missing.npz", "--out", "{tmp}"],
     "does not exist"),
    (["report", "--from", "{tmp}", "--out", "{tmp}/r"], "is empty"),
    (["report", "--out", "{tmp}"], "needs --targets"),
    (["report", "--from", "{tmp}", "--targets", "bitfusion", "--out", "{tmp}"], "pass one of them"),
    (["pareto", "--target", "no-such-device", "--out", "{tmp}"], "unknown hardware profile"),
    (["pareto", "--target", "bitfusion", "--sweep", "latency=1x:0.4x:3", "--out", "{tmp}"], "LOW > HIGH"),
    (["pareto", "--target", "bitfusion", "--train-limit", "0", "--out", "{tmp}"], "--train-limit must be"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_report_from_directories_written_by_the_search_command(tmp_path):
    """The real ``hwqnn search`` command (full DNAS on all of digits: slow on a shared CPU)."""
    runs = []
    for target in ("bitfusion", "raspberry-pi-4"):
        run = tmp_path / target
        assert main(["search", "--target", target, "--budget", "size=0.5x", "--pretrain-epochs", "1", "--epochs", "1",
                     "--finetune-epochs", "0", "--batch-size", "512", "--out", str(run)]) == 0
        runs.append(str(run))
    assert main(["report", "--from", *runs, "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report/report.html").read_text()
    assert "bitfusion" in text and "raspberry-pi-4" in text

"""The search CLI: a thin layer that runs, writes the run directory, and turns user errors into one line."""

import json

import pytest

from hwqnn.cli import main


def test_search_cli_runs_and_writes_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["search", "--target", "bitfusion", "--epochs", "1", "--pretrain-epochs", "2", "--threads", "1",
                 "--budget", "size=0.5x", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "accuracy: float" in printed and "w_scheme" in printed and "size=0.5x" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "tiny_cnn" and metrics["within_budget"] == {"size_bytes": True}
    assert (out / "policy.yaml").is_file() and (out / "summary.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["search", "--target", "no-such-device", "--epochs", "1"], "no-such-device"),
        (["search", "--budget", "latency=fast"], "not understood"),
        (["search", "--data", "cifar10"], "data"),
        (["search", "--model", "resnet20", "--epochs", "1"], "expects inputs"),
        (["search", "--resume", "/nonexistent/run"], "cannot resume"),
        (["search", "--bits-range", "8-2"], "bits-range"),
    ],
)
def test_user_errors_are_one_clean_line(argv, fragment, capsys):
    assert main(argv + ["--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwqnn search: error:"), err
    assert fragment in err[0]

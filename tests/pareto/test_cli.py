"""``hwqnn pareto`` end to end on a tiny digits subset: a sweep directory and a printed front."""

import pandas as pd

from hwqnn.cli import main


def test_pareto_command_writes_a_sweep_directory(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["pareto", "--target", "bitfusion", "--sweep", "size=0.01x:0.5x:2", "--baselines", "w8a8",
            "--pretrain-epochs", "1", "--search-epochs", "1", "--finetune-epochs", "0", "--single-path",
            "--train-limit", "64", "--eval-limit", "50", "--threads", "1", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 budget(s) infeasible" in printed and "hypervolume" in printed and "reference point" in printed
    points = pd.read_csv(out / "points.csv")
    assert list(points["status"]) == ["ok", "infeasible", "ok"]
    assert (out / "pareto.svg").is_file() and (out / "runs/01-size-0.5x/policy.yaml").is_file()

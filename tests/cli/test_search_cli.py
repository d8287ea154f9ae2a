"""The search CLI: a thin layer that runs, writes the run directory, and turns user errors into one line."""

import json

import pytest

import hwqnn
from hwqnn.cli import main


def exit_code(argv: list[str]) -> int:
    """``main``'s return value, or the code of argparse's SystemExit for a flag refused while parsing."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code

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
    assert exit_code(argv + ["--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwqnn search: error:"), err
    assert fragment in err[0]


# --- your own model and data ----------------------------------------------------------------------
USER_MODULE = '''
import torch
from torch import nn
from torch.utils.data import TensorDataset


def make(num_classes=10):
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, num_classes))


class Stripes:
    name = "stripes"

    def __init__(self, seed):
        g = torch.Generator().manual_seed(seed)
        y = torch.arange(96) % 3
        x = 0.3 * torch.randn(96, 1, 8, 8, generator=g)
        for k in range(3):
            x[y == k, :, 2 * k:2 * k + 2, :] += 1.0
        self.train, self.test = TensorDataset(x[:64], y[:64]), TensorDataset(x[64:], y[64:])


def data(seed=0):
    return Stripes(seed)
'''


@pytest.fixture
def user_module(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(USER_MODULE)
    return path


def test_search_with_your_own_model_and_data_from_a_toml_config(user_module, tmp_path, capsys):
    from hwqnn.run_dir import load_run

    out = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(f'model = "{user_module}:make"\ndata = "{user_module}:data"\ntarget = "bitfusion"\n'
                      f'epochs = 1\npretrain_epochs = 1\nbatch-size = 32\nthreads = 1\nbudget = ["size=0.5x"]\n'
                      f'out = "{tmp_path / "from_file"}"\n')
    assert main(["search", "--config", str(config), "--out", str(out)]) == 0  # the command line wins
    printed = capsys.readouterr().out
    assert "mine.make on stripes" in printed and "w_scheme" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == f"{user_module.resolve()}:make" and metrics["data"] == f"{user_module.resolve()}:data"
    assert metrics["num_classes"] == 3 and metrics["config"]["batch_size"] == 32
    assert metrics["within_budget"] == {"size_bytes": True} and not (tmp_path / "from_file").exists()
    loaded = load_run(out)  # rebuilds the factory's model by the name metrics.json stores
    assert loaded.model(loaded.example_input).shape == (2, 3)


def test_factory_import_errors_name_the_import(user_module, capsys):
    assert exit_code(["search", "--model", "no_such_pkg_xyz.nets:make"]) == 2
    assert exit_code(["search", "--model", f"{user_module}:nope", "--data", f"{user_module}:data"]) == 2
    first, second = capsys.readouterr().err.strip().splitlines()
    assert "cannot import module 'no_such_pkg_xyz.nets' for --model no_such_pkg_xyz.nets:make: " \
           "ModuleNotFoundError: No module named 'no_such_pkg_xyz'" in first
    assert f"module '{user_module}' has no attribute 'nope'" in second


# --- config files and flags, without training (the command itself is replaced) ---------------------
@pytest.fixture
def captured(monkeypatch):
    """Run ``hwqnn search`` up to the point its command starts, and keep the arguments it got."""
    from hwqnn.cli import cmd_search

    seen = {}

    def fake_run(args):
        seen["args"] = args
        return 0

    monkeypatch.setattr(cmd_search, "run", fake_run)
    return seen


def test_yaml_config_sets_flags_and_the_command_line_overrides(tmp_path, captured):
    config = tmp_path / "my.yaml"
    config.write_text("epochs: 3\nseed: 7\nbits_range: '3:6'\nbits: [4, 8]\nsingle-path: true\n"
                      "budget: [latency=0.9x, size=0.5x]\ndevice: cpu\nmodel: null\n")
    assert main(["search", "--config", str(config), "--seed", "11", "--budget", "size=1MB"]) == 0
    args = captured["args"]
    assert (args.epochs, args.seed, args.bits_range, args.bits, args.single_path) == (3, 11, (3, 6), (4, 8), True)
    assert args.budget == [hwqnn.parse_budget("size=1MB")] and args.device == "cpu" and args.model is None
    assert (args.target, args.method, args.data) == ("jetson", "search", "digits")  # untouched defaults


@pytest.mark.parametrize(("file_value", "flags", "expected"), [
    ("false", [], False), ("true", ["--no-single-path"], False), (None, ["--single-path"], True), (None, [], None)])
def test_the_sampled_mode_switch_from_a_file_and_the_command_line(tmp_path, captured, file_value, flags, expected):
    config = tmp_path / "my.yaml"
    config.write_text(f"single-path: {file_value}\n" if file_value else "seed: 1\n")
    assert main(["search", "--config", str(config), *flags]) == 0
    assert captured["args"].single_path is expected  # None: SearchConfig's default (the sampled mode)


def test_toml_config_and_defaults_without_a_config(tmp_path, captured):
    config = tmp_path / "my.toml"
    config.write_text('target = "bitfusion"\nbatch_size = 16\noverwrite = true\n')
    assert main(["search", "--config", str(config)]) == 0
    args = captured["args"]
    assert (args.target, args.batch_size, args.overwrite) == ("bitfusion", 16, True)
    assert main(["search"]) == 0
    args = captured["args"]
    assert (args.target, args.bits, args.bits_range, args.seed, args.budget, args.overwrite) == \
        ("jetson", (4, 4), (2, 8), 0, None, False)


@pytest.mark.parametrize("text, fragment", [
    ("epoks: 1\n", "unknown key 'epoks'; valid keys: allow-emulated, allow-pickle, batch-size"),
    ("epochs: -1\n", "epochs: must be >= 0, got -1"),
    ("bits_range: 2:8\n", "quote it"),
    ("method: fastest\n", "method: unknown search method 'fastest'"),
    ("budget: latency=1e999ms\n", "finite"),
])
def test_bad_config_values_read_like_bad_flags(tmp_path, text, fragment, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert main(["search", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and str(config) in err[0], err


# --- where runs go, and what they print ---------------------------------------------------------------
@pytest.fixture
def stopped_search(monkeypatch):
    """Replace hwqnn.search by a stub that records its keywords and stops with a user error."""
    import hwqnn
    from hwqnn.errors import HwqnnError

    seen = {}

    def stub(*args, **kwargs):
        seen.update(kwargs)
        raise HwqnnError("stopped before training")

    monkeypatch.setattr(hwqnn, "search", stub)
    return seen


def test_default_run_directory_stays_inside_runs(tmp_path, monkeypatch, stopped_search):
    from pathlib import Path

    import hardware_profiles

    profile = tmp_path / "p" / "my board.yaml"
    profile.parent.mkdir()
    text = (Path(hardware_profiles.__file__).parent / "bitfusion.yaml").read_text()
    profile.write_text(text.replace("name: bitfusion", "name: my board", 1))
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert main(["search", "--target", "../../p/my board.yaml", "--threads", "1"]) == 2
    run_dir = Path(stopped_search["run_dir"])
    assert run_dir.parent == Path("runs") and ".." not in run_dir.parts and " " not in str(run_dir)
    assert stopped_search["overwrite"] is False


def test_overwrite_flag_reaches_search(tmp_path, stopped_search):
    assert main(["search", "--out", str(tmp_path / "run"), "--overwrite", "--threads", "1"]) == 2
    assert stopped_search["overwrite"] is True


def test_resume_says_each_thing_once(small_digits, float_tiny_cnn, tmp_path, capsys, caplog):
    import copy
    import logging

    import hwqnn

    run_dir = tmp_path / "run"

    def interrupt(phase, step):
        if phase == "search":
            raise KeyboardInterrupt

    meta = {"model": "tiny_cnn", "num_classes": 10, "input_shape": [1, 8, 8], "data": "digits", "data_dir": None}
    with pytest.raises(KeyboardInterrupt):
        hwqnn.search(copy.deepcopy(float_tiny_cnn), *small_digits, target="bitfusion", run_dir=run_dir, meta=meta,
                     on_step=interrupt, pretrain_epochs=0, search_epochs=1, finetune_epochs=0, batch_size=128)
    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        assert main(["search", "--resume", str(run_dir), "--threads", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    logged = [r.getMessage() for r in caplog.records]
    assert sum("resuming" in line for line in printed) == 1 and sum("resuming" in m for m in logged) == 1
    assert not any("phase" in line for line in printed if "resuming" in line)  # the log says the phase
    assert "run directory" in printed[-1]


_BILINEAR = '''
import torch
import torch.nn.functional as F


class Bilinear(torch.nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = torch.nn.Linear(64, 16)
        self.weight = torch.nn.Parameter(torch.randn(num_classes, 16, 64) * 0.01)

    def forward(self, x):
        x = x.flatten(1)
        return F.bilinear(self.fc(x), x, self.weight)


def make(num_classes=10):
    return Bilinear(num_classes)
'''


def test_strict_fails_before_training_when_an_op_would_stay_float(tmp_path, capsys):
    (tmp_path / "bilinear.py").write_text(_BILINEAR)
    argv = ["search", "--model", f"{tmp_path}/bilinear.py:make", "--target", "bitfusion", "--budget", "size=1x",
            "--out", str(tmp_path / "run"), "--threads", "1", "--strict"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would stay float: bilinear" in err[0], err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize(("flags", "expected"), [([], None), (["--budget-fill", "0.9"], 0.9),
                                                 (["--budget-fill", "off"], "off")])
def test_budget_fill_flag(captured, flags, expected):
    assert main(["search", *flags]) == 0
    assert captured["args"].budget_fill == expected  # None: SearchConfig's default (0.97)


def test_a_bad_budget_fill_is_one_clear_line(capsys):
    assert main(["search", "--budget-fill", "1.5"]) == 2
    assert "argument --budget-fill: expected a number in (0, 1] or 'off', got '1.5'" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "expected"), [([], None), (["--curvature-weight", "0"], 0.0),
                                                 (["--curvature-weight", "1.5"], 1.5)])
def test_curvature_weight_flag(captured, flags, expected):
    assert main(["search", *flags]) == 0
    assert captured["args"].curvature_weight == expected  # None: SearchConfig's default (0.5)


def test_a_bad_curvature_weight_is_one_clear_line(capsys):
    assert main(["search", "--curvature-weight", "-1"]) == 2
    assert "argument --curvature-weight: must be a finite number >= 0, got '-1'" in capsys.readouterr().err

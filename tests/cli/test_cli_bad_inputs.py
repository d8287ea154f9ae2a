"""A corpus of bad command lines: each fails fast, with a non-zero exit and one clean line on stderr.

Every case runs in-process through ``hwqnn.cli.main``. A case passes when the exit code is non-zero,
stderr holds exactly one line (or, for argparse usage errors of parsers that keep argparse's usage
block, the usage followed by one error line), nothing prints a traceback, and no result prints
``nan`` or ``inf``. All of them fail before any training.
"""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
import torch

from hwqnn.cli import main

# --- the files the cases point at ---------------------------------------------------------------------
FACTORIES = '''
import torch
from torch import nn

not_callable = 3


def make(num_classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))


def raises(num_classes=10):
    raise ValueError("the factory is broken on purpose")


def returns_str(num_classes=10):
    return "not a model"


def wrong_classes():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 7))


def data_wrong_type():
    return 5


def data_empty():
    return [], [(torch.zeros(1, 8, 8), 0)]


def data_numpy():
    import numpy as np
    return [(np.zeros((1, 8, 8), np.float32), 0)], [(np.zeros((1, 8, 8), np.float32), 0)]
'''


class _Payload:
    """Pickles as a call of ``exec`` that would create ``marker``: a crafted CIFAR batch."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    (root / "dir").mkdir()
    (root / "factories.py").write_text(FACTORIES)
    (root / "broken.py").write_text("def make(:\n")
    (root / "empty.npz").write_bytes(b"")
    np.savez(root / "noarrays.npz")
    zero = np.zeros((0, 32, 32, 3), np.uint8)
    np.savez(root / "zero.npz", x_train=zero, y_train=np.zeros(0, np.int64), x_test=zero, y_test=np.zeros(0, np.int64))
    (root / "garbled.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    np.save(root / "single.npy", np.zeros((2, 32, 32, 3), np.uint8))
    gray = np.zeros((4, 32, 32), np.uint8)
    np.savez(root / "gray.npz", x_train=gray, y_train=np.zeros(4, np.int64), x_test=gray, y_test=np.zeros(4, np.int64))
    batches = root / "batches"
    batches.mkdir()
    for name in ("data_batch_1", "test_batch"):
        (batches / name).write_bytes(pickle.dumps({b"data": _Payload(root / "PWNED"), b"labels": [0]}))
    (root / "unknown_key.yaml").write_text("epochs: 1\nepoks: 2\n")
    (root / "wrong_type.yaml").write_text("epochs: many\n")
    (root / "switch_type.yaml").write_text("single_path: 3\n")
    (root / "nonutf8.yaml").write_bytes(b"epochs: \xff\xfe1\n")
    (root / "invalid.yaml").write_text("epochs: [1, 2\n")
    (root / "list.yaml").write_text("- epochs\n- 1\n")
    (root / "bad.toml").write_text("epochs = = 1\n")
    (root / "cfg.json").write_text('{"epochs": 1}')
    (root / "afile").write_text("a file where a run directory is expected")
    (root / "garbage_run").mkdir()
    (root / "garbage_run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    (root / "profile.yaml").write_text("name: [broken\n")
    return root


# --- the corpus ---------------------------------------------------------------------------------------
ONE, USAGE = "one", "usage"


def case(argv: str, fragment: str = "", kind: str = ONE, owner: str | None = None):
    """One bad command line; ``owner`` marks a case whose code belongs to another area and still fails."""
    marks = [pytest.mark.xfail(strict=False, reason=f"owned by {owner}")] if owner else []
    return pytest.param(argv, fragment, kind, marks=marks, id=argv.replace("{d}/", ""))


CUDA = torch.cuda.is_available()

SEARCH = [
    case("search --seed -1", "--seed"),
    case("search --seed 4294967296", "--seed"),
    case("search --seed abc", "expected an integer"),
    case("search --device tpu", "unknown device 'tpu'"),
    case("search --device cuda:x", "--device"),
    case("search --threads -1", "--threads"),
    case("search --threads 0", "--threads"),
    case("search --batch-size 0", "--batch-size"),
    case("search --epochs -1", "--epochs"),
    case("search --pretrain-epochs -3", "--pretrain-epochs"),
    case("search --finetune-epochs 1.5", "--finetune-epochs"),
    case("search --bits 9/x", "--bits"),
    case("search --bits 17/4", "between 1 and 16"),
    case("search --bits 4", "W/A"),
    case("search --bits-range 8:2", "did you mean 2:8"),
    case("search --bits-range 0:8", "between 1 and 16"),
    case("search --bits-range 2-8", "bits-range"),
    case("search --budget latency=1e999ms", "finite"),
    case("search --budget latency=nanms", "not understood"),
    case("search --budget latency=infms", "not understood"),
    case("search --budget size=-1MB", "not understood"),
    case("search --budget latency=0x", "positive"),
    case("search --budget size=1e-400MB", "positive"),
    case("search --budget latency=2", "no unit"),
    case("search --budget speed=2ms", "unknown metric"),
    case("search --budget size=1MB --budget size=0.5x", "more than once"),
    case("search --method fastest", "unknown search method 'fastest'"),
    case("search --scheme-sharing none", "--scheme-sharing"),
    case("search --method uniform --scheme foo", "unknown scheme 'foo'"),
    case("search --target no-such-device", "no-such-device"),
    case("search --target {d}/dir", "dir"),
    case("search --target {d}/profile.yaml", "profile.yaml"),
    pytest.param("search --device cuda", "CUDA", ONE, id="search --device cuda",
                 marks=pytest.mark.skipif(CUDA, reason="a CUDA device is present")),
    case("search --data mnist", "unknown dataset 'mnist'"),
    case("search --data cifar10", "data_dir"),
    case("search --data cifar10 --data-dir {d}/missing.npz", "does not exist"),
    case("search --data cifar10 --data-dir {d}/empty.npz", "empty"),
    case("search --data cifar10 --data-dir {d}/noarrays.npz", "lacks key(s)"),
    case("search --data cifar10 --data-dir {d}/zero.npz", "no train images"),
    case("search --data cifar10 --data-dir {d}/garbled.npz", "garbled.npz"),
    case("search --data cifar10 --data-dir {d}/single.npy", "single"),
    case("search --data cifar10 --data-dir {d}/gray.npz", "x_train has shape"),
    case("search --data cifar10 --data-dir {d}/dir", "no CIFAR-10 data"),
    case("search --data cifar10 --data-dir {d}/batches", "--allow-pickle"),
    case("search --data cifar10 --data-dir {d}/batches --allow-pickle", "refusing to load global builtins.exec"),
    case("search --model resnet20", "expects inputs"),
    case("search --model resnet9000", "unknown model 'resnet9000'"),
    case("search --model no_such_module_xyz.sub:make", "cannot import module 'no_such_module_xyz.sub'"),
    case("search --model {d}/missing.py:make", "no such file"),
    case("search --model {d}/dir:make", "is a directory"),
    case("search --model {d}/factories.py:missing", "has no attribute 'missing'"),
    case("search --model {d}/factories.py:raises", "ValueError: the factory is broken on purpose"),
    case("search --model {d}/factories.py:returns_str", "factory returned a str, expected torch.nn.Module"),
    case("search --model {d}/factories.py:not_callable", "not a callable"),
    case("search --model {d}/broken.py:make", "SyntaxError"),
    case("search --model {d}/factories.py:wrong_classes", "expected logits of shape (2, 10)"),
    case("search --data {d}/factories.py:data_wrong_type", "returned an int"),
    case("search --data {d}/factories.py:data_empty", "train split is empty"),
    case("search --data {d}/factories.py:data_numpy", "float torch.Tensor"),
    case("search --data {d}/factories.py:raises", "broken on purpose"),
    case("search --data no_such_module_xyz:data", "cannot import module 'no_such_module_xyz' for --data"),
    case("search --config {d}/unknown_key.yaml", "unknown key 'epoks'; valid keys:"),
    case("search --config {d}/wrong_type.yaml", "epochs"),
    case("search --config {d}/switch_type.yaml", "switch"),
    case("search --config {d}/nonutf8.yaml", "UTF-8"),
    case("search --config {d}/invalid.yaml", "invalid YAML"),
    case("search --config {d}/list.yaml", "mapping"),
    case("search --config {d}/bad.toml", "invalid TOML"),
    case("search --config {d}/dir", "directory"),
    case("search --config {d}/missing.yaml", "no such file"),
    case("search --config {d}/cfg.json", "expected .yaml"),
    case("search --resume {d}/nowhere", "cannot resume"),
    case("search --resume {d}/garbage_run", "checkpoint"),
    case("search --out {d}/afile", "not a directory"),
    case("search --no-such-flag", "unrecognized arguments", USAGE),
]

PARETO = [
    case("pareto --sweep latency=1e999x:2x:3", "finite"),
    case("pareto --sweep latency=0.4x:1x:0", "at least 1"),
    case("pareto --sweep nonsense", "METRIC=LOW:HIGH:COUNT"),
    case("pareto --short-fraction nan", "--short-fraction"),
    case("pareto --short-fraction 2", "--short-fraction"),
    case("pareto --train-limit 0", "--train-limit"),
    case("pareto --eval-limit 99999", "--eval-limit"),
    case("pareto --float-weights {d}/dir", "is a directory"),
    case("pareto --budget latency=1e999ms", "finite"),
    case("pareto --seed -1", "--seed"),
    case("pareto --target nowhere", "nowhere"),
    case("pareto --model {d}/factories.py:missing", "has no attribute"),
    case("pareto --config {d}/unknown_key.yaml", "epoks"),
]

COST = [
    case("cost --model tiny_cnn --batch 0", "--batch"),
    case("cost --model resnet9000", "resnet9000"),
    case("cost --model tiny_cnn --num-classes 0", "--num-classes"),
    case("cost --model tiny_cnn --target nope", "nope"),
    case("cost --model tiny_cnn --policy {d}/missing.yaml", "not found"),
    case("cost --model tiny_cnn --policy w0a8", "w0a8"),
    case("cost --model tiny_cnn --json {d}/dir", "--json"),
    case("cost --model {d}/factories.py:missing", "has no attribute"),
    case("cost --model {d}/factories.py:make", "input", owner="cmd_cost (a factory model has no input_shape)"),
    case("cost --model tiny_cnn --batch x", "--batch", USAGE),
]

PROFILES = [
    case("profiles show nope", "nope"),
    case("profiles show {d}/dir", "dir"),
    case("profiles show {d}/profile.yaml", "YAML"),
    case("profiles validate {d}/profile.yaml", "YAML"),
    case("profiles calibrate jetson --measurements {d}/missing.csv", "missing.csv"),
    case("profiles calibrate jetson --measurements {d}/dir", "dir"),
    case("profiles", "required", USAGE),
]

EXPORT = [
    case("export {d}/nowhere", "does not exist"),
    case("export {d}/dir", "not a finished run"),
    case("export {d}/garbage_run", "not a finished run"),
    case("export {d}/dir --format tflite", "--format", USAGE),
    case("export {d}/dir --opset x", "--opset", USAGE),
]

REPORT = [
    case("report --out {d}/report", "--targets"),
    case("report --targets nope --out {d}/report", "nope"),
    case("report --from {d}/nowhere --out {d}/report", "no such directory"),
    case("report --from {d}/dir --out {d}/report", "empty"),
    case("report --targets jetson --from {d}/dir --out {d}/report", "one of them"),
    case("report --targets jetson --out {d}/report --notes {d}/dir", "--notes"),
    case("report --targets jetson --out {d}/report --seed -1", "--seed", USAGE),
]

CORPUS = SEARCH + PARETO + COST + PROFILES + EXPORT + REPORT
_RESULT_NAN = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse exits
        return exc.code if isinstance(exc.code, int) else 1


def test_the_corpus_is_large_and_covers_every_subcommand():
    assert len(CORPUS) >= 40
    assert {c.values[0].split()[0] for c in CORPUS} == {"search", "pareto", "cost", "profiles", "export", "report"}


@pytest.mark.parametrize("argv, fragment, kind", CORPUS)
def test_bad_input_fails_with_one_clean_line(argv, fragment, kind, d, capsys, monkeypatch):
    monkeypatch.chdir(d)  # anything a case writes by mistake lands in the scratch folder
    words = [w.replace("{d}", str(d)) for w in argv.split()]
    extra = ["--threads", "1"] if words[0] in ("search", "pareto") and kind == ONE else []
    code = _run(words + extra)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, (out, err)
    assert "Traceback" not in out + err
    assert len(lines) == 1, err  # usage errors too: one line that points to --help
    if kind == USAGE:
        assert "--help" in lines[0], lines[0]
    assert lines[-1].startswith(("hwqnn", "error:")) and "error" in lines[-1], lines[-1]
    assert fragment in lines[-1], lines[-1]
    assert not _RESULT_NAN.search(_QUOTED.sub("", out + lines[-1])), out + err
    assert not (d / "PWNED").exists(), "a crafted pickle ran code"
    assert not (d / "runs").exists(), "a failing command created a run directory"


def test_one_line_errors_apply_to_the_config_file_keys_listed(d, capsys):
    assert main(["search", "--config", str(d / "unknown_key.yaml")]) == 2
    err = capsys.readouterr().err
    for key in ("epochs", "batch-size", "model", "data", "budget", "seed"):
        assert key in err


def test_help_states_each_default_once(capsys):
    for command in ("search", "pareto", "report", "cost", "export"):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "default: None" not in text and "default: False" not in text and "default: []" not in text
        for option in re.split(r"\s(?=--[a-z])", text):
            assert option.count("(default:") <= 1, option


@pytest.mark.parametrize("argv", [
    "search --seed -1",
    "search --data cifar10 --data-dir {d}/batches --allow-pickle --threads 1",
])
def test_the_installed_command_exits_2_with_one_line(argv, d):
    """The same through a real process (``python -m hwqnn``): exit status and stderr as a shell sees them."""
    import subprocess
    import sys

    words = [w.replace("{d}", str(d)) for w in argv.split()]
    done = subprocess.run([sys.executable, "-m", "hwqnn", *words], cwd=d, capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("WARNING hwqnn.data: reading pickled")]  # the opt-in
    assert done.returncode == 2 and len(errors) == 1 and errors[0].startswith("hwqnn search: error:"), done.stderr
    assert len(lines) == 1 + ("--allow-pickle" in argv)
    assert not (d / "PWNED").exists()

"""Real run and sweep directories, made once per session by very short searches on a digits subset.

They are written by ``hwqnn.search`` (what ``hwqnn search`` calls) with the metadata the CLI records;
``test_cli.py`` has a slow test that goes through the ``hwqnn search`` command itself.
"""

import copy

import pytest

import hwqnn
from hwqnn.pareto import run_sweep

#: pretrain 1 epoch, search 1 epoch, no fine-tuning, the cheap sampled search: seconds, not minutes.
SHORT = dict(pretrain_epochs=1, search_epochs=1, finetune_epochs=0, batch_size=128, single_path=True, seed=0)



def search_meta(target):
    return {"model": "tiny_cnn", "num_classes": 10, "input_shape": [1, 8, 8], "data": "digits", "data_dir": None,
            "command": f"hwqnn search --target {target} --pretrain-epochs 1 --epochs 1 --finetune-epochs 0"}


@pytest.fixture(scope="session")
def run_dirs(tmp_path_factory, small_digits, float_tiny_cnn):
    """Two finished run directories of two targets: a searched policy and a uniform baseline."""
    root = tmp_path_factory.mktemp("runs")
    train, test = small_digits
    specs = [("bitfusion", ["size=0.5x"], {}),
             ("jetson-orin-nano", None, {"method": "uniform", "uniform_bits": (4, 4)})]
    paths = []
    for target, budgets, extra in specs:
        path = root / f"{target}-{extra.get('method', 'search')}"
        hwqnn.search(copy.deepcopy(float_tiny_cnn), train, test, target=target, budgets=budgets, run_dir=path,
                     meta=search_meta(target), **{**SHORT, **extra})
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def sweep(tmp_path_factory, small_digits, float_tiny_cnn):
    """A size sweep on bitfusion: one searched point (0.5x), one infeasible (0.01x), and a w8a8 baseline."""
    out = tmp_path_factory.mktemp("sweep") / "bitfusion"
    train, test = small_digits
    result = run_sweep(float_tiny_cnn, train, test, target="bitfusion", sweep="size=0.01x:0.5x:2",
                       baselines=["w8a8"], out_dir=out, meta=search_meta("bitfusion"), **SHORT)
    return out, result

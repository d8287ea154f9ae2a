"""One real, very short budget sweep per session, on a digits subset with tiny_cnn."""

import pytest

from hwqnn.pareto import run_sweep

SHORT = dict(pretrain_epochs=1, search_epochs=1, finetune_epochs=0, batch_size=128, single_path=True, seed=0)



@pytest.fixture(scope="session")
def sweep(tmp_path_factory, small_digits, float_tiny_cnn):
    """Size 0.7x (full search), 0.355x (warm-started), 0.01x (infeasible: below 2-bit weights), plus w8a8."""
    out = tmp_path_factory.mktemp("sweep") / "bitfusion"
    train, test = small_digits
    result = run_sweep(float_tiny_cnn, train, test, target="bitfusion", sweep="size=0.01x:0.7x:3",
                       baselines=["w8a8"], out_dir=out, meta={"model": "tiny_cnn", "num_classes": 10}, **SHORT)
    return out, result

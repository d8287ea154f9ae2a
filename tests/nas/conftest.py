import pytest
import torch


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One small finished HQNAS run on digits, shared by the run-directory tests."""
    from hwqnn.nas import nas

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("nas") / "run"
    return nas(run_dir=out, epochs=1, trials=8, population=4, seed=0)

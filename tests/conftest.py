"""Suite-wide test settings.

One intra-op thread: the tests run many small tensor ops, and on the shared 2-core machine OpenMP's two
threads spin against other load. Measured on tests/qag + tests/test_policy.py at load average ~8:
87 s with torch's default 2 threads, 13 s with one. Library code never sets this; only the tests do.
"""

import pytest
import torch
from torch.utils.data import Subset

from hwqnn.data import load_dataset
from hwqnn.models import create_model

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread_after_each_test():
    """The CLI sets torch's thread count (``--threads``, default: all cores); put it back after every test,
    or later tests run with 2 contending threads (measured: 45 s instead of 0.6 s for one search test)."""
    yield
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small_digits():
    """A 128-image train / 100-image test digits subset for very short real searches."""
    data = load_dataset("digits", seed=0)
    return Subset(data.train, range(128)), Subset(data.test, range(100))


@pytest.fixture(scope="session")
def float_tiny_cnn():
    torch.manual_seed(0)
    return create_model("tiny_cnn", num_classes=10)

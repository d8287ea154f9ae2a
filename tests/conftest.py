"""Suite-wide test settings.

One intra-op thread: the tests run many small tensor ops, and on the shared 2-core machine OpenMP's two
threads spin against other load. Measured on tests/qag + tests/test_policy.py at load average ~8:
87 s with torch's default 2 threads, 13 s with one. Library code never sets this; only the tests do.
"""

import torch

torch.set_num_threads(1)

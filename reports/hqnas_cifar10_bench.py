"""Reduced CIFAR-10 must-show run for HQNAS (see reports/hqnas_cifar10.md). One thread, side by side.

python reports/hqnas_cifar10_bench.py OUT_DIR EPOCHS TRIALS
"""

import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
import hwqnn  # noqa: E402
from hwqnn.nas import nas  # noqa: E402
from hwqnn.nas.api import load_data  # noqa: E402
from hwqnn.nas.config import NasConfig  # noqa: E402
from hwqnn.nas.evaluate import accuracy  # noqa: E402

out, epochs, trials = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
data_dir = "../shared/data/cifar10_10k.npz"
cfg = NasConfig(space="resnet-cifar", data="cifar10", data_dir=data_dir, target="bitfusion", epochs=epochs,
                trials=trials, population=8, batch_size=64, cost_batch_size=16)
data = load_data(cfg, hwqnn.get_nas_space("resnet-cifar"))

# QAT of one fixed ResNet-20 (w8a8) for the same epochs, same batch size, same thread: the cost baseline
model = hwqnn.create_model("resnet20")
q = hwqnn.apply_policy(model, "w8a8", data.fit_x[:2])
opt = torch.optim.SGD(q.parameters(), lr=0.05, momentum=0.9, nesterov=True)
t = time.perf_counter()
for e in range(epochs):
    perm = torch.randperm(len(data.fit_x), generator=torch.Generator().manual_seed(e))
    q.train()
    for s in range(math.ceil(len(perm) / 64)):
        idx = perm[s * 64:(s + 1) * 64]
        opt.zero_grad()
        F.cross_entropy(q(data.fit_x[idx]), data.fit_y[idx]).backward()
        opt.step()
qat_time = time.perf_counter() - t
qat_acc = accuracy(q, data.test_x, data.test_y)

results = {"qat_resnet20_w8a8_time_s": qat_time, "qat_resnet20_w8a8_test_acc": qat_acc}
r = nas(cfg, run_dir=out / "hq-bitfusion", overwrite=True)
results["bitfusion"] = {"wall": r.metrics["wall_time_s"], "acc": r.metrics["quantized_accuracy"],
                        "costs": r.metrics["costs"], "front": [(p.accuracy, p.costs["latency_s"]) for p in r.front]}
t = time.perf_counter()
r2 = nas(run_dir=out / "hq-jetson", overwrite=True, retarget=out / "hq-bitfusion", target="jetson-orin-nano",
         trials=trials, population=8, cost_batch_size=16)
results["jetson_retarget_time_s"] = time.perf_counter() - t
results["jetson"] = {"acc": r2.metrics["quantized_accuracy"], "costs": r2.metrics["costs"],
                     "front": [(p.accuracy, p.costs["latency_s"]) for p in r2.front]}
(out / "results.json").write_text(json.dumps(results, indent=1, default=str))
print(json.dumps(results, indent=1, default=str))

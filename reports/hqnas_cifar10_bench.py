"""HQNAS on the CIFAR-10 subset: the cost and dominance must-shows (see reports/hqnas_cifar10.md).

One torch thread. Each phase is its own process, run one after the other on the same core, and writes a JSON
file under OUT; ``report`` reads them all.

    python reports/hqnas_cifar10_bench.py qat OUT EPOCHS           # ResNet-20 QAT at w8a8 and w4a4
    python reports/hqnas_cifar10_bench.py supernet OUT EPOCHS TRIALS  # supernet + NSGA-II on bitfusion
    python reports/hqnas_cifar10_bench.py research OUT TRIALS       # search the stored supernet again (bitfusion)
    python reports/hqnas_cifar10_bench.py retarget OUT TRIALS TARGET  # search the trained supernet for TARGET
    python reports/hqnas_cifar10_bench.py kendall OUT COUNT EPOCHS  # ranking fidelity of COUNT random subnets
    python reports/hqnas_cifar10_bench.py report OUT [PLOT_DIR]     # markdown table (and a plot)

The QAT arms train ResNet-20 with option-B shortcuts (the space's largest subnet) on the same fit split, with
the supernet trainer's optimizer, learning rate, cosine schedule, batch size and epochs.
"""

import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
import cost_models  # noqa: E402
import hwqnn  # noqa: E402
from hwqnn.nas.api import load_data  # noqa: E402
from hwqnn.nas.evaluate import accuracy  # noqa: E402

DATA_DIR = "../shared/data/cifar10_10k.npz"
COST_BATCH = 16
TARGETS = ("bitfusion", "jetson-orin-nano")


def config(epochs: int = 0, trials: int = 16) -> hwqnn.NasConfig:
    return hwqnn.NasConfig(space="resnet-cifar", data="cifar10", data_dir=DATA_DIR, target="bitfusion",
                           epochs=epochs, trials=trials, population=8, batch_size=64, cost_batch_size=COST_BATCH)


def train_alone(q, data, cfg: hwqnn.NasConfig, epochs: int, label: str) -> float:
    """QAT of one fixed network with the supernet trainer's optimizer, schedule and batch size; seconds taken."""
    opt = torch.optim.SGD(q.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=True)
    steps = math.ceil(len(data.fit_x) / cfg.batch_size)
    total = epochs * steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    t = time.perf_counter()
    for e in range(epochs):
        perm = torch.randperm(len(data.fit_x), generator=torch.Generator().manual_seed(e))
        q.train()
        for s in range(steps):
            idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            opt.zero_grad()
            F.cross_entropy(q(data.fit_x[idx]), data.fit_y[idx]).backward()
            opt.step()
            sched.step()
        print(f"{label} epoch {e + 1}/{epochs}: {time.perf_counter() - t:.0f} s", flush=True)
    return time.perf_counter() - t


def qat(out: Path, epochs: int) -> dict:
    cfg = config(epochs)
    data = load_data(cfg, hwqnn.get_nas_space(cfg.space))
    results = {}
    for bits in ("w8a8", "w4a4"):
        torch.manual_seed(cfg.seed)
        q = hwqnn.apply_policy(hwqnn.create_model("resnet20", shortcut="B"), bits, data.fit_x[:2])
        seconds = train_alone(q, data, cfg, epochs, f"qat {bits}")
        results[bits] = {"time_s": seconds, "test_acc": 100 * accuracy(q, data.test_x, data.test_y),
                         "val_acc": 100 * accuracy(q, data.val_x, data.val_y), "epochs": epochs}
    return results


def kendall(out: Path, count: int, epochs: int) -> dict:
    """Ranking fidelity: inherited accuracy (supernet, BN recalibrated) vs the same subnet trained alone."""
    import random

    from scipy.stats import kendalltau

    from hwqnn.nas.evaluate import AccuracyEvaluator, calibration_batches
    from hwqnn.nas.nets import build_subnet
    from hwqnn.nas.store import load_supernet
    from hwqnn.nas.supernet import random_subnet

    stored = load_supernet(out / "hq-bitfusion")
    cfg, space = stored.config, stored.supernet.space
    data = load_data(cfg, space)
    inherited = AccuracyEvaluator(stored.supernet, calibration_batches(data.fit_x, cfg.recal_batches, cfg.batch_size),
                                  data.val_x, data.val_y)
    rng = random.Random(1234)
    rows = []
    for i in range(count):
        subnet = random_subnet(space, rng)
        torch.manual_seed(cfg.seed)
        net = build_subnet(space, subnet.arch, stored.supernet.num_classes)
        q = hwqnn.apply_policy(net, subnet.policy(space), data.fit_x[:2], joins=False)
        seconds = train_alone(q, data, cfg, epochs, f"subnet {i + 1}/{count}")
        rows.append({"architecture": space.encode(subnet.arch), "mean_bits": subnet.mean_bits(),
                     "inherited_val_acc": 100 * inherited(subnet), "alone_val_acc": 100 * accuracy(q, data.val_x, data.val_y),
                     "alone_time_s": seconds})
        (out / "kendall_partial.json").write_text(json.dumps(rows, indent=1))
    tau, p_value = kendalltau([r["inherited_val_acc"] for r in rows], [r["alone_val_acc"] for r in rows])
    return {"tau": float(tau), "p_value": float(p_value), "epochs": epochs, "subnets": rows}


def supernet(out: Path, epochs: int, trials: int) -> dict:
    r = hwqnn.nas(config(epochs, trials), run_dir=out / "hq-bitfusion", overwrite=True)
    return {"wall_time_s": r.metrics["wall_time_s"], "test_acc": r.metrics["quantized_accuracy"],
            "costs": r.metrics["costs"], "epochs": epochs, "trials": trials,
            "front": [(100 * p.accuracy, p.costs["latency_s"]) for p in r.front]}


def research(out: Path, trials: int) -> dict:
    """Search the stored bitfusion supernet again (no training) and make it the run's front: for a supernet
    trained before a fix to the search's evaluation. The earlier front is kept as ``front_stale.csv``."""
    import shutil

    src = out / "hq-bitfusion"
    if (src / "front.csv").is_file():
        shutil.move(src / "front.csv", src / "front_stale.csv")
    previous = json.loads((out / "supernet.json").read_text())
    r = hwqnn.nas(run_dir=out / "hq-bitfusion-research", overwrite=True, retarget=src, target="bitfusion",
                  trials=trials, population=8, cost_batch_size=COST_BATCH)
    shutil.copy(out / "hq-bitfusion-research" / "front.csv", src / "front.csv")
    return {**previous, "wall_time_s": r.metrics["wall_time_s"], "test_acc": r.metrics["quantized_accuracy"],
            "costs": r.metrics["costs"], "trials": trials, "researched": True,
            "front": [(100 * p.accuracy, p.costs["latency_s"]) for p in r.front]}


def retarget(out: Path, trials: int, target: str) -> dict:
    t = time.perf_counter()
    r = hwqnn.nas(run_dir=out / f"hq-{target}", overwrite=True, retarget=out / "hq-bitfusion", target=target,
                  trials=trials, population=8, cost_batch_size=COST_BATCH)
    return {"time_s": time.perf_counter() - t, "wall_time_s": r.metrics["wall_time_s"], "trials": trials,
            "test_acc": r.metrics["quantized_accuracy"], "costs": r.metrics["costs"],
            "front": [(100 * p.accuracy, p.costs["latency_s"]) for p in r.front]}


def resnet20_latency(target: str, bits: str) -> float:
    model = hwqnn.create_model("resnet20", shortcut="B").eval()
    workload = cost_models.extract_workload(model, torch.zeros(1, 3, 32, 32))
    profile = cost_models.load_profile(target)
    cm = cost_models.CostModel(workload, profile, batch_size=COST_BATCH)
    policy = hwqnn.Policy.uniform(bits)
    return float(cm.evaluate(cost_models.resolve_precisions(policy, list(workload.names), profile)).latency_s)


def report(out: Path, plot_dir: Path | None) -> str:
    qat_r = json.loads((out / "qat.json").read_text())
    sup = json.loads((out / "supernet.json").read_text())
    lines = [f"Supernet epochs {sup['epochs']}, NSGA-II trials {sup['trials']}, costs at batch {COST_BATCH}.", "",
             "| quantity | value |", "|---|---|"]
    qat_time = qat_r["w8a8"]["time_s"]
    train, search = sup["wall_time_s"]["supernet"], sup["wall_time_s"]["search"]
    lines += [f"| QAT ResNet-20 w8a8, {qat_r['w8a8']['epochs']} epochs: time / test acc | {qat_time:.0f} s / {qat_r['w8a8']['test_acc']:.2f}% |",
              f"| QAT ResNet-20 w4a4: time / test acc | {qat_r['w4a4']['time_s']:.0f} s / {qat_r['w4a4']['test_acc']:.2f}% |",
              f"| supernet training | {train:.0f} s |", f"| NSGA-II on bitfusion | {search:.0f} s |",
              f"| (supernet + search) / QAT w8a8 | {(train + search) / qat_time:.2f}x (must-show <= 3x) |",
              f"| extracted subnet on bitfusion: test acc / latency | {sup['test_acc']:.2f}% / {1e3 * sup['costs']['latency_s']:.3f} ms |"]
    fronts = {"bitfusion": sup["front"]}
    for path in sorted(out.glob("retarget-*.json")):
        r = json.loads(path.read_text())
        target = path.stem.removeprefix("retarget-")
        fronts[target] = r["front"]
        cost = r["wall_time_s"]["search"] + r["wall_time_s"]["extract"]
        lines += [f"| re-target to {target}: search + extraction / supernet training | {cost:.0f} s = {100 * cost / train:.1f}% (must-show <= 5%); whole call {r['time_s']:.0f} s |",
                  f"| extracted subnet on {target}: test acc / latency | {r['test_acc']:.2f}% / {1e3 * r['costs']['latency_s']:.3f} ms |"]
    lines += ["", "Dominance (HQNAS front accuracy is on the held-out validation split, inherited from the supernet "
              "after BN recalibration; the QAT arms' on the same split):", "",
              "| target | arm | latency (ms) | val acc (%) | most accurate HQNAS point at <= that latency | fastest HQNAS point at >= that accuracy |",
              "|---|---|---|---|---|---|"]
    arms = {}
    for target, front in fronts.items():
        for bits in ("w8a8", "w4a4"):
            lat, acc = resnet20_latency(target, bits), qat_r[bits]["val_acc"]
            arms[(target, bits)] = (lat, acc)
            under = [p for p in front if p[1] <= lat * (1 + 1e-9)]
            best = max(under, default=None, key=lambda p: p[0])
            faster = [p for p in front if p[0] >= acc]
            fast = min(faster, default=None, key=lambda p: p[1])
            lines.append(f"| {target} | ResNet-20 {bits} | {1e3 * lat:.3f} | {acc:.2f} | "
                         + (f"{best[0]:.2f}% at {1e3 * best[1]:.3f} ms" if best else "none") + " | "
                         + (f"{1e3 * fast[1]:.3f} ms ({lat / fast[1]:.2f}x faster)" if fast else "none") + " |")
    if (out / "kendall.json").is_file():
        k = json.loads((out / "kendall.json").read_text())
        lines += ["", f"Ranking fidelity: {len(k['subnets'])} random subnets (architecture and bits), each also trained "
                  f"alone for {k['epochs']} epochs (same optimizer and schedule). **Kendall tau = {k['tau']:.2f}** "
                  f"(p = {k['p_value']:.3f}; must-show >= 0.5).", "",
                  "| architecture | mean W/A bits | inherited val acc (%) | trained alone val acc (%) |", "|---|---|---|---|"]
        lines += [f"| `{r['architecture']}` | {r['mean_bits'][0]:.1f} / {r['mean_bits'][1]:.1f} | "
                  f"{r['inherited_val_acc']:.2f} | {r['alone_val_acc']:.2f} |" for r in k["subnets"]]
    if plot_dir is not None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, len(fronts), figsize=(5 * len(fronts), 4))
        for ax, (target, front) in zip(list(axes) if len(fronts) > 1 else [axes], fronts.items()):
            pts = sorted(front, key=lambda p: p[1])
            ax.plot([1e3 * p[1] for p in pts], [p[0] for p in pts], "o", label="HQNAS front, 4 cost objectives (inherited)")
            for bits in ("w8a8", "w4a4"):
                lat, acc = arms[(target, bits)]
                ax.plot(1e3 * lat, acc, "s", label=f"ResNet-20 {bits} QAT")
            ax.set(title=f"{target}, batch {COST_BATCH}", xlabel="latency (ms)", ylabel="val accuracy (%)")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot_dir / "hqnas_cifar10.png", dpi=120)
        lines += ["", f"![front]({'hqnas_cifar10.png'})"]
    return "\n".join(lines)


if __name__ == "__main__":
    phase, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    if phase == "qat":
        result = qat(out, int(sys.argv[3]))
    elif phase == "supernet":
        result = supernet(out, int(sys.argv[3]), int(sys.argv[4]))
    elif phase == "research":
        result = research(out, int(sys.argv[3]))
        phase = "supernet"
    elif phase == "retarget":
        result = retarget(out, int(sys.argv[3]), sys.argv[4])
        phase = f"retarget-{sys.argv[4]}"
    elif phase == "kendall":
        result = kendall(out, int(sys.argv[3]), int(sys.argv[4]))
    elif phase == "report":
        print(report(out, Path(sys.argv[3]) if len(sys.argv) > 3 else None))
        sys.exit(0)
    else:
        sys.exit(f"unknown phase {phase!r}: qat, supernet, retarget or report")
    (out / f"{phase}.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result, indent=1, default=str))

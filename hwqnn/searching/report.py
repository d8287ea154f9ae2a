"""A run's human-readable outputs: history.csv and summary.png (curves, bits per layer, schemes)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..policy import Policy, atomic_write_text
from ..run_dir import atomic_write_bytes


def write_history(path: Path, history: list[dict]) -> None:
    atomic_write_text(path, pd.DataFrame(history).to_csv(index=False))


def write_summary_png(path: Path, history: list[dict], policy: Policy, layer_names: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(history)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    if not frame.empty:
        frame = frame.reset_index(drop=True)
        for phase, group in frame.groupby("phase", sort=False):
            ax.plot(group.index, group["val_accuracy"], marker="o", ms=3, label=f"{phase} val acc")
        ax.set_xlabel("epoch (all phases)")
        ax.set_ylabel("validation accuracy (%)")
        handles, labels = ax.get_legend_handles_labels()
        if "mean_w_bits" in frame:
            twin = ax.twinx()
            search = frame[frame["phase"] == "search"]
            twin.plot(search.index, search["mean_w_bits"], "k--", lw=1, label="mean learned weight bits")
            twin.plot(search.index, search["mean_a_bits"], "k:", lw=1, label="mean learned activation bits")
            twin.set_ylabel("mean learned bits b~ (search)")
            twin.set_ylim(0, 9)
            more_handles, more_labels = twin.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        ax.legend(handles, labels, fontsize=7, loc="lower left")
    ax.set_title("training curves")

    rows = policy.summary_rows(layer_names)
    x = range(len(rows))
    ax = axes[1]
    w = [r["w_bits"] for r in rows]
    a = [r["a_bits"] for r in rows]
    ax.bar([i - 0.2 for i in x], w, width=0.4, label="weight bits")
    ax.bar([i + 0.2 for i in x], a, width=0.4, label="activation bits")
    ax.set_xticks(list(x), [r["layer"] for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("bits")
    ax.set_ylim(0, max(w + a) + 2.5)
    ax.set_title("bits per layer")
    ax.legend(fontsize=8, loc="upper center", ncols=2)

    ax = axes[2]
    schemes = sorted({r["w_scheme"] for r in rows} | {r["a_scheme"] for r in rows})
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(schemes)}
    for i, r in enumerate(rows):
        ax.barh(i, 1, left=0, color=colors[r["w_scheme"]])
        ax.barh(i, 1, left=1, color=colors[r["a_scheme"]])
        ax.text(0.5, i, r["w_scheme"], ha="center", va="center", fontsize=7)
        ax.text(1.5, i, r["a_scheme"], ha="center", va="center", fontsize=7)
    ax.set_yticks(list(x), [r["layer"] for r in rows], fontsize=7)
    ax.set_xticks([0.5, 1.5], ["weight scheme", "activation scheme"])
    ax.invert_yaxis()
    ax.set_title("chosen schemes")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())

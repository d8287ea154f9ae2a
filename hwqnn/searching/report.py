"""A run's human-readable outputs: history.csv and summary.png.

summary.png shows the training curves, the bits and schemes chosen per layer and, given the run's
metrics (the ``metrics.json`` dict), a title saying what was quantized for which target and how
accurate it is, and each cost as a multiple of uniform w8a8 with its budget: what a reader checks first.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from ..policy import Policy, atomic_write_text
from ..run_dir import atomic_write_bytes
from .budgets import METRICS, format_cost

#: Bar colours of the cost panel: within its budget, over it, no budget on that cost.
WITHIN, OVER, UNBUDGETED = "tab:green", "tab:red", "0.6"
COST_NAMES = {"latency_s": "latency", "energy_j": "energy", "size_bytes": "model size",
              "peak_memory_bytes": "peak memory"}


def write_history(path: Path, history: list[dict]) -> None:
    atomic_write_text(path, pd.DataFrame(history).to_csv(index=False))


# --- what the figure says ------------------------------------------------------------------------------
class CostBar(NamedTuple):
    """One cost of the run: its value, as a multiple of w8a8, and its budget (None when it has none)."""

    key: str
    label: str
    value: float
    ratio: float
    budget_ratio: float | None
    within: bool | None
    text: str


def cost_bars(metrics: Mapping) -> list[CostBar]:
    """The costs of ``metrics`` relative to its w8a8 reference, in METRICS order (a cost without a
    reference is left out: it has no common scale with the others)."""
    costs, reference = metrics.get("costs") or {}, metrics.get("reference_w8a8") or {}
    budgets, within = metrics.get("budgets") or {}, metrics.get("within_budget") or {}
    bars = []
    for key in METRICS.values():
        if key not in costs or not reference.get(key):
            continue
        value, base = float(costs[key]), float(reference[key])
        bound = (budgets.get(key) or {}).get("bound")
        budget_ratio = float(bound) / base if bound is not None else None
        fits = bool(within[key]) if key in within else _fits(value, bound)
        text = f"{format_cost(key, value)}\n{value / base:.2f}x w8a8"
        if bound is not None:
            text += f"\nbudget {budgets[key].get('spec', format_cost(key, float(bound)))}"
        bars.append(CostBar(key, COST_NAMES[key], value, value / base, budget_ratio, fits, text))
    return bars


def _fits(value: float, bound: float | None) -> bool | None:
    return None if bound is None else value <= float(bound) * (1 + 1e-9)


def summary_title(metrics: Mapping) -> str:
    """``tiny_cnn on bitfusion, searched policy: 91.20 % top-1 (float 93.10 %); within every budget``."""
    model = metrics.get("model") or "model"
    target = metrics.get("target") or "?"
    subject = f"{model} on {target}, {_method(metrics)}"
    accuracy = metrics.get("quantized_accuracy")
    scored = f"{float(accuracy):.2f} % top-1" if accuracy is not None else "accuracy not measured"
    if metrics.get("float_accuracy") is not None:
        scored += f" (float {float(metrics['float_accuracy']):.2f} %)"
    return f"{subject}: {scored}{_budget_verdict(metrics)}"


def _method(metrics: Mapping) -> str:
    method = metrics.get("method") or "search"
    bits = (metrics.get("config") or {}).get("uniform_bits")
    if method == "uniform" and bits:
        return f"uniform w{bits[0]}a{bits[1]}"
    return "searched policy" if method == "search" else str(method)


def _budget_verdict(metrics: Mapping) -> str:
    within = metrics.get("within_budget") or {}
    if not within:
        return "; no budget"
    over = [COST_NAMES.get(k, k) for k, ok in within.items() if not ok]
    return f"; OVER BUDGET: {', '.join(over)}" if over else "; within every budget"


# --- drawing ----------------------------------------------------------------------------------------------
def write_summary_png(path: Path, history: list[dict], policy: Policy, layer_names: Sequence[str], *,
                      metrics: dict | None = None) -> None:
    """Write summary.png; with ``metrics`` (the run's metrics.json dict) add the title and the cost panel."""
    import matplotlib.pyplot as plt

    fig = render_summary(history, policy, layer_names, metrics=metrics)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def render_summary(history: list[dict], policy: Policy, layer_names: Sequence[str], *, metrics: dict | None = None):
    """The summary figure (matplotlib, Agg): curves, bits, schemes and, with ``metrics``, costs vs budgets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if metrics:  # two rows: what happened (curves, costs) above what was chosen (bits, schemes)
        fig, axes = plt.subplot_mosaic([["curves", "costs"], ["bits", "schemes"]], figsize=(15, 9.5),
                                       gridspec_kw={"width_ratios": [3, 2]})
    else:
        fig, row = plt.subplots(1, 3, figsize=(16, 4.5))
        axes = dict(zip(("curves", "bits", "schemes"), row))
    rows = policy.summary_rows(layer_names)
    _draw_curves(axes["curves"], pd.DataFrame(history))
    _draw_bits(axes["bits"], rows)
    _draw_schemes(plt, axes["schemes"], rows)
    if metrics:
        _draw_costs(axes["costs"], cost_bars(metrics))
        fig.suptitle(summary_title(metrics), fontsize=12, parse_math=False)  # names are not TeX
    fig.tight_layout()
    return fig


def _draw_curves(ax, frame: pd.DataFrame) -> None:
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


def _draw_bits(ax, rows: list[dict]) -> None:
    x = range(len(rows))
    w = [r["w_bits"] for r in rows]
    a = [r["a_bits"] for r in rows]
    ax.bar([i - 0.2 for i in x], w, width=0.4, label="weight bits")
    ax.bar([i + 0.2 for i in x], a, width=0.4, label="activation bits")
    ax.set_xticks(list(x), [r["layer"] for r in rows], rotation=60, ha="right", fontsize=7, parse_math=False)
    ax.set_ylabel("bits")
    ax.set_ylim(0, max(w + a, default=8) + 2.5)
    ax.set_title("bits per layer")
    ax.legend(fontsize=8, loc="upper center", ncols=2)


def _draw_schemes(plt, ax, rows: list[dict]) -> None:
    schemes = sorted({r["w_scheme"] for r in rows} | {r["a_scheme"] for r in rows})
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(schemes)}
    for i, r in enumerate(rows):
        ax.barh(i, 1, left=0, color=colors[r["w_scheme"]])
        ax.barh(i, 1, left=1, color=colors[r["a_scheme"]])
        ax.text(0.5, i, r["w_scheme"], ha="center", va="center", fontsize=7)
        ax.text(1.5, i, r["a_scheme"], ha="center", va="center", fontsize=7)
    ax.set_yticks(list(range(len(rows))), [r["layer"] for r in rows], fontsize=7, parse_math=False)
    ax.set_xticks([0.5, 1.5], ["weight scheme", "activation scheme"])
    ax.invert_yaxis()
    ax.set_title("chosen schemes")


def _draw_costs(ax, bars: Sequence[CostBar]) -> None:
    """Each cost as a multiple of w8a8 (the grey line at 1), its budget as a dashed line over its bar."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    colors = {True: WITHIN, False: OVER, None: UNBUDGETED}
    x = range(len(bars))
    ax.bar(list(x), [b.ratio for b in bars], width=0.6, color=[colors[b.within] for b in bars])
    ax.axhline(1.0, color="0.3", lw=0.8)
    for i, bar in enumerate(bars):
        if bar.budget_ratio is not None:
            ax.hlines(bar.budget_ratio, i - 0.42, i + 0.42, colors="k", linestyles="--", lw=1.4, zorder=3)
        ax.annotate(bar.text, (i, max(bar.ratio, bar.budget_ratio or 0.0)), textcoords="offset points", xytext=(0, 3),
                    ha="center", va="bottom", fontsize=6.5)
    top = max([b.ratio for b in bars] + [b.budget_ratio or 0.0 for b in bars] + [1.0])
    ax.set_ylim(0, top * 1.45)
    ax.set_xticks(list(x), [b.label for b in bars], fontsize=8)
    ax.set_ylabel("cost (x uniform w8a8 on this target)")
    ax.set_title("costs vs budgets")
    handles = [Patch(color=WITHIN, label="within budget"), Patch(color=OVER, label="over budget"),
               Patch(color=UNBUDGETED, label="no budget"), Line2D([], [], color="k", ls="--", label="budget"),
               Line2D([], [], color="0.3", lw=0.8, label="w8a8")]
    ax.legend(handles=handles, fontsize=6.5, loc="upper left", ncols=2)

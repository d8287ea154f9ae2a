"""Finalize: schemes and integer bitwidths, chosen jointly by an exact MILP under every budget.

Per layer the MILP picks one (weight scheme, weight bits, activation scheme, activation bits) option.
The objective stays close to what the search learned and to what the data says:

* ``prior_weight * -log p(scheme)``, with ``p`` the slot's learned scheme distribution (softmax of
  the logits at temperature 1): the search's preference, as a cost rather than a hard rule;
* ``bits_weight * (effective bits - b~)^2``, the distance to the learned continuous bitwidth (binary
  counts as 1 bit and ternary as 2, whatever ``b~``: a slot that learned 6 bits is far from binary);
* ``sensitivity_weight * sensitivity`` of the option: by default (``finalize_sensitivity="hessian"``) HAWQ-V3's
  second-order loss increase ``Tr(H) / n * ||Q(x) - x||^2`` of the layer's weight / input activation, with
  Hessian traces of the searched model, scaled so the largest option costs 1; a layer the loss is flat in
  may take coarse options, one it is curved in may not. With ``"mse"``: the option's relative quantization
  MSE, every layer alike. Both on a batch of training data;
* ``device_cost_weight * (latency / w8a8 latency + energy / w8a8 energy)`` of the option: a tie-breaker
  toward what the device runs cheaper, so unbudgeted costs do not grow for nothing.

Why not "argmax scheme, then MILP over bits": under a tight budget the search's expected costs push
the logits toward the cheapest scheme, and a hard argmax then throws away the budget the MILP could
have spent (on CIFAR-10 / ResNet-20 at a w4a4 size budget the argmax policy was binary everywhere and
used a quarter of the budget). Where the learned preference is strong the prior keeps it; where it is
weak, sensitivity and the budget decide. Constraints: every budget, on the cost model's hard
(non-smooth) per-layer costs: latency, energy and size add over layers; peak memory is
``size + max_l activation_bytes_l``, linearised with one auxiliary variable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import Bounds, LinearConstraint, milp

from cost_models import COMPUTE_KINDS, COST_KEYS, CostMetric

from ..deployment import price_tensor
from ..errors import BudgetError, BudgetInfeasibleError
from ..policy import LayerPolicy, Policy
from .budgets import DISPLAY_UNIT, METRICS, format_cost

log = logging.getLogger(__name__)
ADDITIVE = tuple(m.value for m in CostMetric if m.additive)
_METRIC_NAMES = {key: metric for metric, key in METRICS.items()}


@dataclass(frozen=True)
class Option:
    scheme: str
    bits: int


@dataclass
class LayerOptions:
    """One layer's candidate options per side, with their MILP objective terms."""

    name: str
    weight: list[Option]
    act: list[Option]
    weight_objective: np.ndarray
    act_objective: np.ndarray
    pair_objective: np.ndarray | None = None  # [len(weight), len(act)] terms that depend on both sides


def _priced(slot, scheme: str, bits: int) -> tuple[int, float, float]:
    """(compute-kind index, bits, side bytes per channel) the cost model charges for one option: as the
    target's runtime runs it when the slot was restricted to a target, else from the scheme's own facts."""
    price = price_tensor(scheme, slot.role, bits, slot.deployment, slot.op_type)
    if slot.allowed_bits is not None:
        return COMPUTE_KINDS.index(price.kind), float(price.bits), price.side_bytes
    module = slot.candidates[scheme]
    facts = module.hardware(module.effective_bits(bits))
    return COMPUTE_KINDS.index(facts.compute_kind), float(module.effective_bits(bits)), price.side_bytes


def option_costs(cost_model, ops, layers: Sequence[LayerOptions]) -> list[dict[str, np.ndarray]]:
    """Hard per-layer cost tables: for layer l, arrays shaped [len(weight options), len(act options)]."""
    n_w = max(len(lo.weight) for lo in layers)
    n_a = max(len(lo.act) for lo in layers)
    L = len(layers)
    kw = torch.zeros(n_w, L, dtype=torch.long)
    bw = torch.full((n_w, L), 8.0, dtype=torch.float64)
    ka = torch.zeros(n_a, L, dtype=torch.long)
    ba = torch.full((n_a, L), 8.0, dtype=torch.float64)
    side = torch.full((n_w, L), 4.0, dtype=torch.float64)
    for l_idx, (lo, op) in enumerate(zip(layers, ops)):
        for i, o in enumerate(lo.weight):
            kw[i, l_idx], bw[i, l_idx], side[i, l_idx] = _priced(op.weight_slot, o.scheme, o.bits)
        for j, o in enumerate(lo.act):
            ka[j, l_idx], ba[j, l_idx], _ = _priced(op.act_slot, o.scheme, o.bits)
    with torch.no_grad():
        costs = cost_model.layer_costs(kw[:, None, :], bw[:, None, :], ka[None, :, :], ba[None, :, :], smooth=False,
                                       w_side=side[:, None, :])
    keys = ("latency_s", "energy_j", "weight_bytes", "activation_bytes")
    tables = []
    for l_idx, lo in enumerate(layers):
        tables.append({k: costs[k][: len(lo.weight), : len(lo.act), l_idx].numpy().astype(np.float64)
                       for k in keys})
    # The model's other float tensors are part of its size whatever the policy: charge them to the first layer.
    tables[0]["weight_bytes"] = tables[0]["weight_bytes"] + cost_model.workload.float_param_bytes
    return tables


def solve(layers: Sequence[LayerOptions], tables: Sequence[Mapping[str, np.ndarray]],
          bounds: Mapping[str, float], objective_only: str | None = None, time_limit: float = 60.0):
    """Solve the MILP; returns (chosen (i, j) per layer, totals) or None if infeasible.

    With ``objective_only`` set to a cost key, minimise that cost instead (used to report the
    smallest achievable value of each budget).
    """
    sizes = [len(lo.weight) * len(lo.act) for lo in layers]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n_x = int(offsets[-1])
    n_vars = n_x + 1  # + M, the peak activation bytes
    per_key = {"latency_s": "latency_s", "energy_j": "energy_j", "size_bytes": "weight_bytes"}
    flat = {k: np.concatenate([t[v].reshape(-1) for t in tables]) for k, v in per_key.items()}
    act = [t["activation_bytes"].reshape(-1) for t in tables]

    c = np.zeros(n_vars)
    if objective_only is None:
        c[:n_x] = np.concatenate([(lo.weight_objective[:, None] + lo.act_objective[None, :]
                                   + (0.0 if lo.pair_objective is None else lo.pair_objective)).reshape(-1)
                                  for lo in layers])
    elif objective_only == "peak_memory_bytes":
        c[:n_x] = flat["size_bytes"]
        c[n_x] = 1.0
    else:
        c[:n_x] = flat[objective_only]
    scale = np.abs(c).max() or 1.0
    c = c / scale

    rows, lower, upper = [], [], []
    # one option per layer
    pick = sp.lil_matrix((len(layers), n_vars))
    for l_idx in range(len(layers)):
        pick[l_idx, offsets[l_idx]:offsets[l_idx + 1]] = 1.0
    rows.append(pick.tocsr())
    lower += [1.0] * len(layers)
    upper += [1.0] * len(layers)
    # M >= activation bytes of the chosen option of every layer
    mem = sp.lil_matrix((len(layers), n_vars))
    m_scale = max(float(np.max(np.concatenate(act))), 1.0)
    for l_idx in range(len(layers)):
        mem[l_idx, offsets[l_idx]:offsets[l_idx + 1]] = act[l_idx] / m_scale
        mem[l_idx, n_x] = -1.0 / m_scale
    rows.append(mem.tocsr())
    lower += [-np.inf] * len(layers)
    upper += [0.0] * len(layers)
    # budgets, each row divided by its bound
    for key, bound in bounds.items():
        row = np.zeros(n_vars)
        if key in flat:
            row[:n_x] = flat[key] / bound
        elif key == "peak_memory_bytes":
            row[:n_x] = flat["size_bytes"] / bound
            row[n_x] = 1.0 / bound
        else:
            raise BudgetError(f"cannot bound '{key}'; budgets bound one of {', '.join(COST_KEYS)}")
        rows.append(sp.csr_matrix(row))
        lower.append(-np.inf)
        upper.append(1.0)
    A = sp.vstack(rows).tocsr()
    integrality = np.ones(n_vars)
    integrality[n_x] = 0
    var_bounds = Bounds(np.zeros(n_vars), np.concatenate([np.ones(n_x), [np.inf]]))
    result = milp(c, constraints=LinearConstraint(A, lower, upper), integrality=integrality, bounds=var_bounds,
                  options={"time_limit": time_limit, "disp": False})
    if result.x is None:
        return None
    x = result.x
    choice = []
    for l_idx, lo in enumerate(layers):
        k = int(np.argmax(x[offsets[l_idx]:offsets[l_idx + 1]]))
        choice.append(divmod(k, len(lo.act)))
    return choice, totals_of(choice, tables)


def totals_of(choice, tables) -> dict[str, float]:
    lat = sum(t["latency_s"][i, j] for (i, j), t in zip(choice, tables))
    energy = sum(t["energy_j"][i, j] for (i, j), t in zip(choice, tables))
    size = sum(t["weight_bytes"][i, j] for (i, j), t in zip(choice, tables))
    peak_act = max(t["activation_bytes"][i, j] for (i, j), t in zip(choice, tables))
    return {"latency_s": float(lat), "energy_j": float(energy), "size_bytes": float(size),
            "peak_memory_bytes": float(size + peak_act)}


def smallest_achievable(layers, tables, keys) -> dict[str, float]:
    out = {}
    for key in keys:
        solved = solve(layers, tables, {}, objective_only=key)
        out[key] = solved[1][key] if solved else float("nan")
    return out


def infeasible_message(target: str, bounds: Mapping[str, float], minima: Mapping[str, float], what: str,
                       reference: Mapping[str, float] | None = None) -> str:
    """Why no policy fits, and for each budgeted cost the smallest value reachable on ``target``.

    Each reachable value is the minimum of that cost alone (with ``reference``, the w8a8 costs, also as a
    multiple of w8a8), so the suggested budgets are a lower bound: together they may need more.
    """
    short = [k for k, bound in bounds.items() if not _within(minima[k], bound)]
    lines = [_reachable_line(k, bounds[k], minima[k], reference) for k in bounds]
    head = f"no {what} policy meets every budget on target '{target}' (smallest achievable value of each cost alone"
    head += ", as a multiple of uniform w8a8)" if reference else ")"
    if not short:
        return (f"{head}: " + "; ".join(lines) + ". Each budget alone is reachable, but not all together: "
                "loosen one of them, or widen --bits-range.")
    flags = " ".join(f"--budget {_suggested_budget(k, minima[k], reference)}" for k in short if np.isfinite(minima[k]))
    example = f" ({flags}; each value is the minimum of that cost alone, so together they may need more)"
    return (f"{head}: " + "; ".join(lines) + f". Loosen the budgets to at least what is reachable"
            f"{example if flags else ''}, or widen --bits-range.")


def _within(minimum: float, bound: float) -> bool:
    return bool(np.isfinite(minimum)) and minimum <= bound * (1 + 1e-9)


def _reachable_line(key: str, bound: float, minimum: float, reference: Mapping[str, float] | None) -> str:
    """``latency budget 0.66x w8a8 (0.04 ms), out of reach: latency >= 0.85x w8a8 (0.0513 ms) is reachable ...``."""
    metric = _METRIC_NAMES[key]
    verdict = "reachable alone" if _within(minimum, bound) else "out of reach"
    budget = f"{metric} budget {_amount(key, bound, reference)}, {verdict}"
    if not np.isfinite(minimum):
        return f"{budget}: the solver found no reachable {metric} on this target"
    return f"{budget}: {metric} >= {_amount(key, minimum, reference)} is reachable on this target"


def _amount(key: str, value: float, reference: Mapping[str, float] | None) -> str:
    """``0.85x w8a8 (0.0513 ms)`` with a w8a8 reference, else ``0.0513 ms``."""
    ratio = _ratio(key, value, reference)
    return format_cost(key, value) if ratio is None else f"{ratio:.3g}x w8a8 ({format_cost(key, value)})"


def _ratio(key: str, value: float, reference: Mapping[str, float] | None) -> float | None:
    base = (reference or {}).get(key)
    return value / base if base else None


def _suggested_budget(key: str, minimum: float, reference: Mapping[str, float] | None) -> str:
    """The smallest budget, rounded up to 3 significant digits, that admits ``minimum`` (``latency=0.852x``)."""
    metric = _METRIC_NAMES[key]
    ratio = _ratio(key, minimum, reference)
    if ratio is not None:
        return f"{metric}={_round_up(ratio):g}x"
    unit, scale = DISPLAY_UNIT[metric]
    return f"{metric}={_round_up(minimum / scale):g}{unit}"


def _round_up(value: float, digits: int = 3) -> float:
    """``value`` rounded up to ``digits`` significant digits (a budget at it still admits ``value``)."""
    if value <= 0:
        return value
    step = 10.0 ** (np.floor(np.log10(value)) - digits + 1)
    return float(np.ceil(value / step * (1 - 1e-12)) * step)


def solve_or_raise(layers, tables, bounds: Mapping[str, float], target: str, what: str, time_limit: float = 60.0,
                   reference: Mapping[str, float] | None = None):
    """``solve``, or BudgetInfeasibleError stating, per budgeted cost, the smallest value reachable on the
    target (as a multiple of ``reference``, the w8a8 costs, when given)."""
    solved = solve(layers, tables, bounds, time_limit=time_limit)
    if solved is None:
        minima = smallest_achievable(layers, tables, list(bounds))
        raise BudgetInfeasibleError(infeasible_message(target, bounds, minima, what, reference))
    return solved


def to_policy(layers: Sequence[LayerOptions], choice) -> Policy:
    entries = {}
    for lo, (i, j) in zip(layers, choice):
        w, a = lo.weight[i], lo.act[j]
        entries[lo.name] = LayerPolicy(w.scheme, int(w.bits), a.scheme, int(a.bits))
    return Policy(entries)


@contextmanager
def float_slot_inputs(qmodel, detach: bool = True):
    """For the block: every slot in float (a bypass), the model in eval mode, and a dict, yielded, that
    records the tensor entering each slot on the first forward (keyed by id(slot); ``detach=False`` keeps
    it in the autograd graph). Slot modes and the training mode are restored afterwards."""
    captured: dict[int, torch.Tensor] = {}
    hooks, modes = [], []
    was_training = qmodel.training
    try:
        for _, _, slot in qmodel.slots():
            modes.append((slot, slot.mode))
            slot.mode = "float"
            hooks.append(slot.register_forward_pre_hook(
                lambda m, args: (captured.setdefault(id(m), args[0].detach() if detach else args[0]), None)[1]))
        qmodel.eval()
        yield captured
    finally:
        for h in hooks:
            h.remove()
        for slot, mode in modes:
            slot.mode = mode
        qmodel.train(was_training)


@torch.no_grad()
def capture_slot_inputs(qmodel, batch: torch.Tensor) -> dict[int, torch.Tensor]:
    """One float-bypass forward that records the tensor entering every slot (keyed by id(slot))."""
    with float_slot_inputs(qmodel) as captured:
        qmodel(batch)
    return captured


@torch.no_grad()
def relative_error(slot, scheme: str, bits: int, x: torch.Tensor | None) -> float:
    if x is None:
        return 0.0
    module = slot.candidates[scheme]
    was_training = module.training
    module.eval()
    try:
        q = module(x, bits)
    finally:
        module.train(was_training)
    denom = float((x.double() ** 2).mean()) or 1.0
    err = float(((q.double() - x.double()) ** 2).mean()) / denom
    return err if np.isfinite(err) else 1e3


def _scheme_prior(slot) -> dict[str, float]:
    """``-log p`` of every candidate under the slot's learned logits (temperature 1)."""
    log_p = torch.log_softmax(slot.logits.alpha.detach().double(), dim=0)
    return {name: float(-log_p[i]) for i, name in enumerate(slot.scheme_names)}


def slot_options(slot, schemes: Sequence[str] | None = None) -> list[Option]:
    """The (scheme, bits) options a slot may end at: within its ``--bits-range`` (effective bits, so binary
    is outside 2:8) and, on a target, deployable there; ``schemes`` restricts the schemes."""
    b_min, b_max = slot.bits_range
    options = []
    for scheme in slot.scheme_names:
        if schemes is not None and scheme not in schemes:
            continue
        module = slot.candidates[scheme]
        if module.fixed_bits is not None and not b_min <= module.fixed_bits <= b_max:
            continue
        for bits in ([module.fixed_bits] if module.fixed_bits is not None else range(b_min, b_max + 1)):
            if slot.allowed_bits is None or bits in slot.allowed_bits.get(scheme, ()):
                options.append(Option(scheme, int(bits)))
    return options


def options_by(space, objective, schemes: Sequence[str] | None = None) -> list[LayerOptions]:
    """Every slot's options (``slot_options``) with ``objective(slot, options) -> costs``, per layer."""
    out = []
    for op in space.ops:
        sides = []
        for slot in op.slots:
            options = slot_options(slot, schemes if schemes is None or set(schemes) & set(slot.scheme_names) else None)
            sides.append((options, np.asarray(objective(slot, options), dtype=float)))
        out.append(LayerOptions(op.layer_name, sides[0][0], sides[1][0], sides[0][1], sides[1][1]))
    return out


def normalise_objectives(layers: Sequence[LayerOptions]) -> float:
    """Divide every option's objective by the largest one (in place), so it peaks at 1; returns that scale."""
    scale = max(max(float(np.max(lo.weight_objective, initial=0)), float(np.max(lo.act_objective, initial=0)))
                for lo in layers) or 1.0
    for lo in layers:
        lo.weight_objective, lo.act_objective = lo.weight_objective / scale, lo.act_objective / scale
    return scale


def build_options(space, captured: Mapping[int, torch.Tensor], sensitivity_weight: float = 10.0, prior_weight: float = 1.0,
                  bits_weight: float = 0.25, sensitivity=None) -> list[LayerOptions]:
    """Every (scheme, bits) option of every slot, with the search's objective terms (see the module doc).

    ``sensitivity``: an objective ``(slot, options) -> costs`` (e.g. the Hessian-weighted perturbation of
    :func:`~hwqnn.searching.hessian.second_order_perturbation`), scaled so its largest option costs 1, in
    place of each option's relative quantization MSE on ``captured``."""
    if sensitivity is not None:
        weighted = options_by(space, sensitivity)
        normalise_objectives(weighted)
        by_slot = {}
        for lo, op in zip(weighted, space.ops):
            by_slot[id(op.weight_slot)], by_slot[id(op.act_slot)] = lo.weight_objective, lo.act_objective

    def objective(slot, options: list[Option]) -> list[float]:
        learned = float(slot.continuous_bits().detach())
        prior = _scheme_prior(slot)
        if sensitivity is None:
            errors = [relative_error(slot, o.scheme, o.bits, captured.get(id(slot))) for o in options]
        else:
            errors = by_slot[id(slot)]
        return [bits_weight * (slot.candidates[o.scheme].effective_bits(o.bits) - learned) ** 2
                + prior_weight * prior[o.scheme] + sensitivity_weight * error
                for o, error in zip(options, errors)]

    return options_by(space, objective)


#: Cost of leaving the argmax scheme in :func:`nearest_to_argmax`: above any bits distance (at most 31^2).
OTHER_SCHEME = 1e3


def nearest_to_argmax(space, bounds: Mapping[str, float], target: str,
                      reference: Mapping[str, float] | None = None) -> tuple[Policy, dict[str, float]]:
    """The search's argmax network rounded onto the budget: every slot keeps its argmax scheme where the
    budgets allow, at the bits nearest its learned ones, by the MILP minimising the squared distance of
    the effective bits to the rounded learned bits (another scheme costs ``OTHER_SCHEME``)."""

    def distance(slot, options: list[Option]) -> list[float]:
        chosen = slot.argmax_scheme()
        learned = round(float(slot.continuous_bits().detach()))
        return [(slot.candidates[o.scheme].effective_bits(o.bits) - learned) ** 2
                + (0.0 if o.scheme == chosen else OTHER_SCHEME) for o in options]

    layers = options_by(space, distance)
    tables = option_costs(space.cost_model, space.ops, layers)
    choice, totals = solve_or_raise(layers, tables, bounds, target, "integer", reference=reference)
    return to_policy(layers, choice), totals


def spend_slack(space, policy: Policy, bounds: Mapping[str, float], target: str, objective,
                reference: Mapping[str, float] | None = None) -> tuple[Policy, dict[str, float]] | None:
    """``policy`` with the budget it leaves unspent spent where ``objective(slot, options)`` (a sensitivity,
    e.g. the Hessian-weighted perturbation) falls most: every slot keeps its scheme, at bits no lower than
    ``policy``'s, by the MILP under the same bounds.

    Why: :func:`nearest_to_argmax` only moves bits down to meet a budget, never up, so a network whose
    learned bits round low keeps the rest of the budget unused (ResNet-20 on bitfusion at a 0.5x latency
    budget ended at 0.447x). None when some slot's option in ``policy`` is not among its options."""
    kept = {}
    for op in space.ops:
        chosen = policy.resolve(op.layer_name)
        kept[id(op.slots[0])] = (chosen.w_scheme, chosen.w_bits)
        kept[id(op.slots[1])] = (chosen.a_scheme, chosen.a_bits)
    layers = options_by(space, objective)
    normalise_objectives(layers)
    for lo, op in zip(layers, space.ops):
        for side, slot in (("weight", op.slots[0]), ("act", op.slots[1])):
            scheme, bits = kept[id(slot)]
            options = getattr(lo, side)
            allowed = [k for k, o in enumerate(options) if o.scheme == scheme and o.bits >= bits]
            if not any(options[k].bits == bits for k in allowed):
                return None
            setattr(lo, side, [options[k] for k in allowed])
            setattr(lo, f"{side}_objective", getattr(lo, f"{side}_objective")[allowed])
    tables = option_costs(space.cost_model, space.ops, layers)
    if reference:
        add_device_cost(layers, tables, reference, SLACK_TIE_BREAK)
    choice, totals = solve_or_raise(layers, tables, bounds, target, "integer", reference=reference)
    return to_policy(layers, choice), totals


#: Weight of the device cost in :func:`spend_slack`: among options the sensitivity cannot tell apart, the cheaper.
SLACK_TIE_BREAK = 1e-3


def add_device_cost(layers: Sequence[LayerOptions], tables, reference: Mapping[str, float], weight: float) -> None:
    """Charge each option its latency and energy as fractions of the reference (w8a8) totals.

    A tie-breaker, not a budget: among options of similar accuracy, prefer the one the device runs
    cheaper, so that an unbudgeted latency or energy does not grow for nothing (e.g. a power-of-two
    weight that a GPU cannot run natively, chosen over an int grid of the same error).
    """
    for lo, table in zip(layers, tables):
        pair = np.zeros((len(lo.weight), len(lo.act)))
        for key in ("latency_s", "energy_j"):
            if reference.get(key):
                pair += table[key] / reference[key]
        lo.pair_objective = weight * pair


def finalize_policy(space, bounds: Mapping[str, float], target: str, captured: Mapping[int, torch.Tensor],
                    sensitivity_weight: float = 10.0, prior_weight: float = 1.0,
                    bits_weight: float = 0.25, device_cost_weight: float = 10.0,
                    reference: Mapping[str, float] | None = None, sensitivity=None
                    ) -> tuple[Policy, dict[str, float], dict]:
    """Schemes and bits of every layer by one MILP over all (scheme, bits) options.

    Returns (policy, MILP totals, info); ``info["schemes_changed"]`` lists the slots whose chosen scheme
    differs from the search's argmax. Raises BudgetInfeasibleError with the smallest value of each
    budgeted cost reachable on the target (relative to ``reference``, the w8a8 costs) when no option fits.
    """
    layers = build_options(space, captured, sensitivity_weight, prior_weight, bits_weight, sensitivity)
    tables = option_costs(space.cost_model, space.ops, layers)
    if reference and device_cost_weight:
        add_device_cost(layers, tables, reference, device_cost_weight)
    choice, totals = solve_or_raise(layers, tables, bounds, target, "integer", reference=reference)
    policy = to_policy(layers, choice)
    changed = []
    for op in space.ops:
        chosen = policy.resolve(op.layer_name)
        for role, slot, scheme in (("weight", op.weight_slot, chosen.w_scheme), ("activation", op.act_slot, chosen.a_scheme)):
            if scheme != slot.argmax_scheme():
                changed.append(f"{op.layer_name}.{role}: {slot.argmax_scheme()} -> {scheme}")
    if changed:
        log.info("the MILP moved %d slot(s) off the search's argmax scheme", len(changed))
    return policy, totals, {"schemes_changed": changed}

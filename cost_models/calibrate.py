"""Fit a profile's efficiencies, bandwidth derating and overheads to measured latencies.

For each measured row the model's latency splits into the layers the device runs itself,
``sum_i max(compute_i / efficiency(p_i), memory_i / derating) + n_layers * layer overhead + inference
overhead``, plus whatever runs on a fallback device (kept fixed); the per-inference overhead (launch,
synchronisation, host copies) is paid once per batch, so rows at several batch sizes and of models of
different depths tell it apart from the per-layer one; ``p_i`` is the precision layer i executes at. Where the rows execute
MACs at more than one precision (fp32 and int8 graphs), each precision gets its own efficiency
(``efficiency_by_precision``: a CPU's int8 kernels and its fp32 ones reach different shares of their
peaks); otherwise one efficiency is fitted. ``scipy.optimize.least_squares`` fits on
``log(predicted) - log(measured)``, so every row counts by its relative error. Beyond the efficiencies the
fit spends one shape parameter (derating, per-layer and per-inference overhead) per distinct workload (model,
input size, batch) after the first, not per row; an efficiency whose precision none of the rows executes is not
fitted and keeps its prior (as in a leave-one-model-out fold without that precision); a precision with no entry
of its own falls back to ``efficiency``, the geometric mean of the fitted ones.

Where the profile prices its runtime's conversions (``io_bytes_per_element``: layout reorders and Q/DQ of the
model's input and output; ``layer_input_bytes_per_element``: per-layer conversions such as the QuantizeLinear
of a float activation before an integer MatMul), those bytes per element are fitted too, per precision: the
per-layer microbenchmarks of ``hwqnn profiles measure`` (large activations beside little arithmetic) pin them. Rows
measured on hwqnn's own exports (``export`` = ``hwqnn``) are priced as hwqnn prices those graphs: non-GEMM
ops at the width the export runs them and the policy as restricted to the profile's runtime; other rows
(published benchmarks) as fully integer deployments (see ``validate.deployed_float_op_bits``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares

from .cost_model import CostModel
from .errors import CalibrationError, CostModelError
from .execution import precision_label
from .measurements import read_measurements, rows_for
from .precision import resolve_precisions
from .profile import BYTE_FIELDS, HardwareProfile
from .profile_loader import load_profile
from .reference_workloads import reference_workload

PARAMS = ("efficiency", "bandwidth_derating", "layer_overhead_s", "inference_overhead_s")
BOUNDS = {"efficiency": (1e-3, 1.0), "bandwidth_derating": (1e-2, 1.0), "layer_overhead_s": (0.0, 1e-2),
          "inference_overhead_s": (0.0, 0.1), "io_bytes": (0.1, 256.0)}
#: Key prefixes of the fitted conversion bytes (``io_bytes_int8``, ``layer_input_bytes_int8``...).
_BYTE_PREFIXES = tuple(f"{prefix}_" for prefix in BYTE_FIELDS.values())
OVERHEADS = ("layer_overhead_s", "inference_overhead_s")  # fitted in milliseconds, the others in decades
#: Prefix of a measurement harness's own per-inference overhead on top of the device's (``harness_overhead_s:KEY``).
HARNESS_PREFIX = "harness_overhead_s:"


def _in_milliseconds(name: str) -> bool:
    return name in OVERHEADS or name.startswith(HARNESS_PREFIX)


def measurement_harness(source: str) -> str:
    """The harness a row was timed with, named by its source: a GitHub repository (``owner/name``), another
    URL up to its fragment or first remark, else the source up to its first ``:`` or remark in parentheses
    (``hwqnn profiles measure`` rows share one harness whatever their repeats). Rows of one harness share what
    it adds to each inference (host copies, pre- and post-processing, the timer's own overhead); the rows of
    another harness do not."""
    text = str(source).strip()
    match = re.match(r"https?://github\.com/([^/\s]+/[^/\s#?]+)", text)
    if match:
        return match.group(1)
    if re.match(r"https?://", text):
        return re.split(r"[\s#]", text, maxsplit=1)[0]
    return re.split(r":| \(", text, maxsplit=1)[0].strip()


@dataclass
class CalibrationReport:
    """What the fit did: parameters before/after and per-row predictions (seconds)."""

    device: str
    fitted: list[str]
    params_before: dict[str, float]
    params_after: dict[str, float]
    rows: pd.DataFrame
    success: bool
    message: str
    out_path: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def mdape_before(self) -> float:
        return float(self.rows["error_before_pct"].abs().median())

    @property
    def mdape_after(self) -> float:
        return float(self.rows["error_after_pct"].abs().median())

    def summary(self) -> str:
        params = ", ".join(f"{k} {self.params_before.get(k, 0.0):.4g} -> {self.params_after[k]:.4g}"
                           for k in self.params_after)
        written = f"; wrote {self.out_path}" if self.out_path else ""
        cv = self.extra.get("cross_validation")
        held = (f"; leave-one-model-out {cv['mdape_prior']:.1f}% -> {cv['mdape_fit']:.1f}% ({cv['folds']} folds)"
                if cv else "; no cross-validation (one model)")
        refused = f"; {self.extra['not_written']}" if self.extra.get("not_written") else ""
        return (f"calibrated {self.device} on {len(self.rows)} rows (fitted {', '.join(self.fitted)}): {params}; "
                f"median |error| {self.mdape_before:.1f}% -> {self.mdape_after:.1f}% (in-sample){held}{written}{refused}")


def _hwqnn_export(row: pd.Series) -> bool:
    """Whether the row timed hwqnn's own export of the model (``hwqnn profiles measure``)."""
    return str(row.get("export", "")).strip() == "hwqnn"


def _decompose(profile: HardwareProfile, row: pd.Series):
    """Per-layer compute and memory seconds at efficiency = derating = 1, device layer count, fixed rest,
    each layer's executed precision label, and the runtime's conversions the profile prices: pairs of (the
    key of their bytes per element, as ``io_bytes_int8``; DRAM seconds per such byte at derating 1)."""
    try:
        workload = reference_workload(str(row["model"]), int(row["input_size"]))
    except CostModelError as exc:
        raise CalibrationError(f"measurement row {row.name}: {exc}") from None
    unit = profile.with_params(efficiency=1.0, bandwidth_derating=1.0, layer_overhead_s=0.0,
                               inference_overhead_s=0.0, efficiency_by_precision={},
                               **{name: {} for name in BYTE_FIELDS if getattr(profile, name)})
    from .validate import deployed_float_op_bits

    if _hwqnn_export(row):
        precisions = resolve_precisions(str(row["precision"]), workload.names, profile,
                                        [layer.op_type for layer in workload.layers])
        float_op_bits = None
    else:
        precisions = resolve_precisions(str(row["precision"]), workload.names)
        float_op_bits = deployed_float_op_bits(str(row["precision"]))
    model = CostModel(workload, unit, int(row["batch_size"]), float_op_bits)
    layers = model.evaluate(precisions).layers
    own = ~layers["fallback"].to_numpy(bool)
    fixed = float(layers.loc[~own, "latency_s"].sum())
    mine = layers.loc[own]
    labels = np.array([precision_label(k, w, a) for k, w, a in
                       zip(mine["exec_kind"], mine["exec_w_bits"], mine["exec_a_bits"])], dtype=object)
    conversions: dict[str, float] = {}
    policy_rows = layers[layers["pricing"] == "policy"]
    seconds = int(row["batch_size"]) / profile.memory["dram"].bandwidth
    per_layer = [(layer.in_elems, BYTE_FIELDS["layer_input_bytes_per_element"], i)
                 for i, layer in enumerate(workload.layers)] if profile.layer_input_bytes_per_element else []
    edges = [(workload.layers[0].in_elems, BYTE_FIELDS["io_bytes_per_element"], 0),
             (workload.layers[-1].out_elems, BYTE_FIELDS["io_bytes_per_element"], len(workload) - 1)
             ] if profile.io_bytes_per_element else []
    for elems, prefix, index in edges + per_layer:
        layer = policy_rows.iloc[index]
        if not layer["fallback"]:
            key = f"{prefix}_{precision_label(layer['exec_kind'], layer['exec_w_bits'], layer['exec_a_bits'])}"
            conversions[key] = conversions.get(key, 0.0) + elems * seconds
    return (mine["compute_s"].to_numpy(float), mine["memory_s"].to_numpy(float), int(own.sum()), fixed, labels,
            tuple(conversions.items()))


def _efficiencies(labels: np.ndarray, params: dict[str, float]) -> np.ndarray:
    scalar = params["efficiency"]
    return np.array([params.get(f"efficiency_{label}", scalar) for label in labels], dtype=float)


def _predict(parts, params: dict[str, float], harnesses=None) -> np.ndarray:
    """Each row's latency; ``harnesses`` (one key per row) adds the overhead fitted for the row's harness."""
    extra = [params.get(HARNESS_PREFIX + h, 0.0) for h in harnesses] if harnesses is not None else [0.0] * len(parts)
    return np.array([
        np.maximum(compute / _efficiencies(labels, params), memory / params["bandwidth_derating"]).sum()
        + n_layers * params["layer_overhead_s"] + params["inference_overhead_s"] + harness + fixed
        + sum(seconds * params.get(key, 0.0) for key, seconds in conversions) / params["bandwidth_derating"]
        for (compute, memory, n_layers, fixed, labels, conversions), harness in zip(parts, extra)
    ])


def _labels(parts) -> list[str]:
    """The precisions the rows execute MACs at (layers with compute), in first-seen order."""
    seen: dict[str, None] = {}
    for compute, _, _, _, labels, _ in parts:
        for label in labels[compute > 0]:
            seen[label] = None
    return list(seen)


def _conversion_bytes(parts, profile: HardwareProfile) -> dict[str, float]:
    """The profile's conversion bytes the rows exercise (keys as ``io_bytes_int8``), at their values."""
    known = {f"{prefix}_{label}": value for name, prefix in BYTE_FIELDS.items()
             for label, value in getattr(profile, name).items()}
    return {key: known[key] for *_, conversions in parts for key, _ in conversions if key in known}


#: Weight of the pull towards the shipped values, per fitted parameter (in decades for efficiency and
#: derating, in milliseconds for the overhead), against log-latency residuals: a weak prior that keeps a
#: fit on few or contradictory rows near the datasheet-derived start instead of at a bound.
PRIOR_WEIGHT = 0.3


def _efficiency_names(before: dict[str, float], parts=None) -> list[str]:
    """The efficiencies to fit: one per executed precision where ``before`` has them, else the scalar.

    With ``parts``, only the precisions those rows execute MACs at: an efficiency no row exercises has
    nothing to fit it (it keeps its prior), and fitting it would spend a degree of freedom the
    overheads and the derating need (a leave-one-model-out fold can lack a precision the device's rows have).
    """
    names = [k for k in before if k.startswith("efficiency_")]
    if names and parts is not None:
        executed = {f"efficiency_{label}" for label in _labels(parts)}
        names = [k for k in names if k in executed] or names
    return names or ["efficiency"]


def _params_fitted(n_rows: int, efficiencies: list[str], io_bytes: list[str] = (),
                   n_workloads: int | None = None, harnesses: list[str] = (), n_timings: int | None = None) -> list[str]:
    """The efficiencies, then the overheads and the derating as the number of rows allows (the per-inference
    overhead only with a row to spare for it: with as many parameters as rows a fit interpolates), then the
    conversion bytes ``io_bytes`` where twice as many rows as parameters are left over.

    ``n_workloads`` counts the distinct (model, input size, batch) among the rows: rows of one workload at
    several precisions tell the efficiencies apart but nothing about the derating and overheads, which only
    differently shaped workloads separate; so beyond the efficiencies' level (set by one workload) each of
    those needs a workload of its own, not merely a row.

    ``harnesses``: the harness overheads that could be told apart (each harness with two workloads of its own);
    fitted beside the per-inference overhead where a timing per parameter is left for them. ``n_timings``
    counts the distinct (workload, harness) pairs: one workload timed by two harnesses tells their overheads
    apart, though nothing more about the device's shape."""
    spare = n_rows - len(efficiencies)
    if n_workloads is not None:
        spare = min(spare, n_workloads - 1)
    if spare <= 0:
        return efficiencies[:n_rows]
    if spare == 1:
        return [*efficiencies, "layer_overhead_s"]
    if spare < 4:
        return [*efficiencies, "bandwidth_derating", "layer_overhead_s"]
    fitted = [*efficiencies, "bandwidth_derating", "layer_overhead_s", "inference_overhead_s"]
    timings = n_rows - len(efficiencies) if n_timings is None else min(n_rows - len(efficiencies), n_timings - 1)
    if len(harnesses) > 1 and timings >= 4 + len(harnesses):
        fitted += list(harnesses)
    return fitted + list(io_bytes) if spare >= 2 * (len(fitted) - len(efficiencies) + len(io_bytes)) else fitted


def _bounds(name: str) -> tuple[float, float]:
    if name.startswith(_BYTE_PREFIXES):
        return BOUNDS["io_bytes"]
    if name.startswith(HARNESS_PREFIX):
        return BOUNDS["inference_overhead_s"]
    return BOUNDS["efficiency"] if name.startswith("efficiency") else BOUNDS[name]


#: A conversion's bytes are fitted only where, at their starting value, they are at least this share of some
#: row's measured latency: rows whose conversions are negligible cannot tell their bytes (a fit would move
#: them freely to absorb other errors).
IDENTIFIABLE_SHARE = 0.05


def _conversion_names(parts, measured: np.ndarray, before: dict[str, float]) -> list[str]:
    """The conversion bytes (keys as ``io_bytes_int8``) that some row's latency tells."""
    names = []
    for key in (k for k in before if k.startswith(_BYTE_PREFIXES)):
        shares = [dict(conversions).get(key, 0.0) * before[key] / before["bandwidth_derating"] / m
                  for (*_, conversions), m in zip(parts, measured)]
        if max(shares, default=0.0) >= IDENTIFIABLE_SHARE:
            names.append(key)
    return names


def _harness_names(workloads, harnesses) -> list[str]:
    """``harness_overhead_s:KEY`` for each harness with at least two workloads of its own among the rows."""
    if harnesses is None:
        return []
    keys = workloads if workloads is not None else range(len(harnesses))
    seen: dict[str, set] = {}
    for harness, key in zip(harnesses, keys):
        seen.setdefault(harness, set()).add(key)
    return [HARNESS_PREFIX + h for h, keys_of in seen.items() if len(keys_of) >= 2]


def _fit(parts, measured: np.ndarray, before: dict[str, float], workloads=None, harnesses=None):
    """Least squares on log latency with a weak prior towards ``before``; (params, result, fitted names).

    ``workloads``: one hashable key per row naming its workload (model, input size, batch), which bounds the
    number of shape parameters fitted (see ``_params_fitted``); None counts every row as its own workload.
    ``harnesses``: one key per row naming the harness that timed it (:func:`measurement_harness`). Where rows come
    from several, each gets an overhead of its own on top of the device's per-inference overhead, pulled
    towards 0: the device keeps the part every harness pays, and one harness's host copies or timer do not
    leak into the others' predictions (a TensorRT 3.0 harness timing MobileNet v1 at 12.9 ms in FP16 and FP32
    alike put 3.8 ms of per-inference overhead on every Jetson TX2 prediction)."""
    n_workloads = None if workloads is None else len(set(workloads))
    fitted = _params_fitted(len(measured), _efficiency_names(before, parts),
                            _conversion_names(parts, measured, before), n_workloads,
                            _harness_names(workloads, harnesses),
                            None if workloads is None or harnesses is None else len(set(zip(workloads, harnesses))))
    before = {**before, **{name: 0.0 for name in fitted if name.startswith(HARNESS_PREFIX)}}

    def to_x(name: str, value: float) -> float:
        return value * 1e3 if _in_milliseconds(name) else float(np.log10(value))

    def to_params(x: np.ndarray) -> dict[str, float]:
        params = dict(before)
        for name, value in zip(fitted, x):
            params[name] = float(value * 1e-3 if _in_milliseconds(name) else 10.0 ** value)
            if _in_milliseconds(name) and params[name] < 1e-9:  # at its bound of 0, up to the solver's rounding
                params[name] = 0.0
        per_precision = [params[n] for n in fitted if n.startswith("efficiency_")]
        if per_precision:  # a precision without its own entry gets their geometric mean
            params["efficiency"] = float(np.exp(np.mean(np.log(per_precision))))
        # A per-precision efficiency these rows never ran keeps its prior: nothing here measures it. (Setting it
        # to the fitted ones' mean carried, e.g., an INT8 detection network's efficiency, slowed by its
        # uncosted NMS, over to FP32 ResNet-50 on the T4: cross-validated 26.9% against 7.8%.)
        return params

    low = [to_x(n, _bounds(n)[0]) for n in fitted]
    high = [to_x(n, _bounds(n)[1]) for n in fitted]
    x0 = np.clip([to_x(n, before[n]) for n in fitted], low, high)
    prior = PRIOR_WEIGHT / np.sqrt(len(measured))

    def residuals(x: np.ndarray) -> np.ndarray:
        data = np.log(_predict(parts, to_params(x), harnesses)) - np.log(measured)
        return np.concatenate([data, prior * (x - x0)])

    # start strictly inside the bounds: from an overhead's bound of 0 the solver may never leave it
    start = np.clip(x0, np.add(low, 1e-2), np.subtract(high, 1e-6))
    result = least_squares(residuals, start, bounds=(low, high), method="trf", diff_step=1e-3)
    return to_params(result.x), result, fitted


def _workload_keys(rows: pd.DataFrame) -> list[tuple]:
    """One key per row: the workload it timed (model, input size, batch size), whatever its precision."""
    return list(zip(rows["model"].astype(str), rows["input_size"].astype(int), rows["batch_size"].astype(int)))


def _cross_validate(parts, measured: np.ndarray, before: dict[str, float], models: np.ndarray,
                    workloads=None, harnesses=None) -> dict | None:
    """Leave-one-model-out: fit on the other models' rows, predict the left-out model's. None with one model.

    Returns the median absolute percentage error of those predictions and of the prior (the profile as
    given) on the same rows, the number of folds, and every row's held-out prediction (``predicted_s``, in
    row order) for per-precision breakdowns.
    """
    names = list(dict.fromkeys(models))
    if len(names) < 2:
        return None
    errors_fit, errors_prior = [], []
    predicted = np.zeros(len(measured))
    for name in names:
        held = models == name
        train = [p for p, h in zip(parts, held) if not h]
        train_workloads = None if workloads is None else [w for w, h in zip(workloads, held) if not h]
        train_harnesses = None if harnesses is None else [k for k, h in zip(harnesses, held) if not h]
        params, _, _ = _fit(train, measured[~held], before, train_workloads, train_harnesses)
        test = [p for p, h in zip(parts, held) if h]
        test_harnesses = None if harnesses is None else [k for k, h in zip(harnesses, held) if h]
        predicted[held] = _predict(test, params, test_harnesses)
        errors_fit += list(np.abs(predicted[held] / measured[held] - 1) * 100)
        errors_prior += list(np.abs(_predict(test, before) / measured[held] - 1) * 100)
    return {"folds": len(names), "mdape_fit": float(np.median(errors_fit)),
            "mdape_prior": float(np.median(errors_prior)), "predicted_s": predicted.tolist()}


def calibrate(profile: str | HardwareProfile, measurements_csv, out_path: str | os.PathLike | None = None
              ) -> tuple[HardwareProfile, CalibrationReport]:
    """Refit efficiency, bandwidth derating and layer overhead of ``profile`` to its measured rows.

    Uses every row of ``measurements_csv`` (path or DataFrame) whose ``device`` is the profile's name. A
    profile that was calibrated before is refitted from its numbers' ``prior:`` values (so refitting the
    shipped profiles on the shipped table gives them back), and every fitted number is written with its
    prior.
    With fewer than 3 rows only efficiency (1 row) or efficiency and overhead (2 rows) are fitted.
    If ``out_path`` is given, the calibrated profile is written there (its name becomes the file
    stem) with ``derived:`` notes, and re-read to validate it, but only when the fit's leave-one-model-out
    error beats the shipped profile's on the same rows; otherwise ``report.extra["not_written"]`` says why.
    """
    shipped = load_profile(profile)
    base = shipped.prior_profile()  # a calibrated profile is refitted from its priors, and judged against them
    rows = rows_for(read_measurements(measurements_csv), base.name)
    if rows.empty:
        raise CalibrationError(f"no measurement rows for device {base.name!r} in {measurements_csv!s:.200}; "
                               "add rows with that device name (or an alias of it)")
    parts = [_decompose(base, row) for _, row in rows.iterrows()]
    measured = rows["latency_ms"].to_numpy(float) / 1e3
    before = {k: float(getattr(base, k)) for k in PARAMS}
    labels = _labels(parts)
    if len(labels) > 1 or any(label in base.efficiency_by_precision for label in labels):
        before.update({f"efficiency_{label}": float(base.efficiency_for(label)) for label in labels})
    before.update(_conversion_bytes(parts, base))
    workloads = _workload_keys(rows)
    harnesses = [measurement_harness(source) for source in rows["source"]]
    after, result, fitted = _fit(parts, measured, before, workloads, harnesses)
    cv = _cross_validate(parts, measured, before, rows["model"].to_numpy(str), workloads, harnesses)

    table = rows[["model", "input_size", "batch_size", "precision"]].copy()
    table["measured_s"] = measured
    table["before_s"] = _predict(parts, before)
    table["after_s"] = _predict(parts, after, harnesses)
    table["error_before_pct"] = 100 * (table["before_s"] / measured - 1)
    table["error_after_pct"] = 100 * (table["after_s"] / measured - 1)

    source = measurements_csv if not isinstance(measurements_csv, pd.DataFrame) else "a measurement table"
    models = ", ".join(dict.fromkeys(rows["model"].astype(str)))
    held_out = (f"; leave-one-model-out median |error| {cv['mdape_fit']:.1f}% against {cv['mdape_prior']:.1f}% for the prior"
                if cv else "")
    note = (f"fitted by calibrate() (least squares on log latency, weak pull towards the prior) to {len(rows)} "
            f"measured rows of {Path(str(source)).name} for {base.name} ({models}; precisions "
            f"{', '.join(dict.fromkeys(rows['precision'].astype(str)))}; batches "
            f"{', '.join(map(str, sorted(set(rows['batch_size'].astype(int)))))}){held_out}")
    harness_s = {k.removeprefix(HARNESS_PREFIX): after[k] for k in fitted if k.startswith(HARNESS_PREFIX)}
    fitted_here = [k for k in fitted if not k.startswith(HARNESS_PREFIX)]  # a harness's overhead is not the device's
    notes = {k: note for k in fitted_here}
    if harness_s:
        notes["inference_overhead_s"] = (f"{note}; the part every harness pays (each harness's own on top, not "
                                         "part of this profile: " + ", ".join(f"{h} {v * 1e3:.3g} ms"
                                                                              for h, v in harness_s.items()) + ")")
    name = Path(out_path).stem if out_path is not None else base.name
    scalars = {k: after[k] for k in fitted if k in PARAMS}
    if any(k.startswith("efficiency_") for k in fitted):  # the default for other precisions moved with them
        scalars["efficiency"] = after["efficiency"]
        notes["efficiency"] = f"{note}; geometric mean of the fitted per-precision efficiencies"
    by_precision = {k.removeprefix("efficiency_"): after[k] for k in fitted if k.startswith("efficiency_")}
    byte_maps = {}
    for field_name, prefix in BYTE_FIELDS.items():
        values = {k.removeprefix(f"{prefix}_"): after[k] for k in fitted if k.startswith(f"{prefix}_")}
        if values:
            byte_maps[field_name] = {**getattr(base, field_name), **values}
    for k in fitted:
        if k.startswith(_BYTE_PREFIXES):
            notes[k] = f"{note}; pinned by the rows with large activations (the per-layer microbenchmarks)"
    priors = ({k: before[k] for k in scalars} | {f"efficiency_{k}": before[f"efficiency_{k}"] for k in by_precision}
              | {k: before[k] for k in fitted if k.startswith(_BYTE_PREFIXES)})
    calibrated = base.with_params(**scalars, efficiency_by_precision=({**base.efficiency_by_precision, **by_precision}
                                                                      if by_precision else None),
                                  **byte_maps, name=name, notes=notes, priors=priors)
    report = CalibrationReport(device=base.name, fitted=fitted, params_before=before, params_after=after,
                               rows=table, success=bool(result.success), message=str(result.message),
                               extra={"cross_validation": cv, "harness_overheads_s": harness_s})
    if out_path is not None:
        refused = _refusal(cv)
        if refused:
            report.extra["not_written"] = refused
        else:
            calibrated = _write_profile(calibrated, Path(out_path))
            report.out_path = str(out_path)
    return calibrated, report


def _refusal(cv: dict | None) -> str:
    """Why a fit must not be written (empty: it may): it has to beat the prior on models it did not see."""
    if cv is None:
        return ("not written: the rows come from one model, so the fit cannot be cross-validated on a model it "
                "did not see; add measurements of other models")
    if not cv["mdape_fit"] < cv["mdape_prior"]:
        return (f"not written: leave-one-model-out error {cv['mdape_fit']:.1f}% does not beat the shipped "
                f"profile's {cv['mdape_prior']:.1f}% on the same rows ({cv['folds']} folds)")
    return ""


def _write_profile(profile: HardwareProfile, out: Path) -> HardwareProfile:
    """Write ``profile`` as YAML (temporary file, then rename) and read it back, which validates it."""
    tmp = out.with_suffix(out.suffix + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(profile.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=None,
                              width=100_000)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out) else ""
        raise CalibrationError(f"cannot write the calibrated profile {out}: {exc.strerror or exc}{where}") from None
    return load_profile(out)

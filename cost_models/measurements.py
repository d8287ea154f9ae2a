"""Measured latencies (``cost_models/data/measurements.csv``) and the model predictions for them.

Columns: ``device`` (profile name or alias), ``model`` (a name of reference_workloads), ``input_size``,
``batch_size``, ``precision`` (uniform policy: fp32, fp16, w8a8...), ``latency_ms``, ``split``
(``calib`` or ``holdout``, used by validate.py), ``source`` (URL or paper) and ``notes``; optional
``export`` = ``hwqnn`` marks a row that timed hwqnn's own export (``hwqnn profiles measure``), which
calibrate() prices as hwqnn's exports run instead of as a fully integer published deployment. ``model`` may
also name a per-layer microbenchmark (``reference_workloads.MICROBENCHMARKS``).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import pandas as pd

from .errors import CalibrationError, YamlFileError
from .profile_loader import profile_aliases
from .yaml_io import decode_utf8, read_limited

MEASUREMENTS_CSV = Path(__file__).resolve().parent / "data" / "measurements.csv"
#: Published energy per inference (``energy_mj``: whole board or system, idle included; and, where the
#: source lets one separate it, ``energy_above_idle_mj``), with ``power_w`` and the source of every row.
ENERGY_CSV = Path(__file__).resolve().parent / "data" / "energy_measurements.csv"
ENERGY_COLUMNS = ("device", "model", "input_size", "batch_size", "precision", "latency_ms", "energy_mj", "source")
REQUIRED_COLUMNS = ("device", "model", "input_size", "batch_size", "precision", "latency_ms", "source")
TEXT_COLUMNS = ("device", "model", "precision", "source")
INTEGER_COLUMNS = ("input_size", "batch_size")
SPLITS = ("calib", "holdout")
MAX_CSV_BYTES = 16 << 20  # the shipped table is 15 KB


def read_measurements(csv: str | os.PathLike | pd.DataFrame = MEASUREMENTS_CSV) -> pd.DataFrame:
    """The measurement table, checked cell by cell (CalibrationError naming the CSV line of a bad row)."""
    frame, where = _table(csv, "measurements", REQUIRED_COLUMNS)
    _check_latency(frame, where)
    _check_split(frame, where)
    return _resolve_devices(frame)


def read_energy_measurements(csv: str | os.PathLike | pd.DataFrame = ENERGY_CSV) -> pd.DataFrame:
    """The energy table, checked like the latency one (one CalibrationError naming the CSV lines)."""
    frame, where = _table(csv, "energy measurements", ENERGY_COLUMNS)
    for column in ("latency_ms", "energy_mj"):
        _check_positive(frame, where, column)
    if "energy_above_idle_mj" in frame.columns:
        _check_positive(frame, where, "energy_above_idle_mj", missing_ok=True)
    return _resolve_devices(frame)


def _table(csv: str | os.PathLike | pd.DataFrame, label: str, required: tuple[str, ...]) -> tuple[pd.DataFrame, str]:
    """(the table with its text and integer columns checked, how errors name it)."""
    if isinstance(csv, pd.DataFrame):
        frame, where = csv.copy(), label
    else:
        where = f"{label} {csv}"
        frame = _read_csv(csv, where)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise CalibrationError(f"{where} lack columns {', '.join(missing)}; required: {', '.join(required)}")
    frame = frame.reset_index(drop=True)
    _check_text(frame, where)
    _check_integers(frame, where)
    return frame, where


def _resolve_devices(frame: pd.DataFrame) -> pd.DataFrame:
    aliases = profile_aliases()
    frame["device"] = frame["device"].map(lambda d: aliases.get(d, d))
    return frame


def _read_csv(csv: str | os.PathLike, where: str) -> pd.DataFrame:
    """Parse a UTF-8 CSV file of bounded size; every failure is one CalibrationError line."""
    try:
        text = decode_utf8(read_limited(csv, MAX_CSV_BYTES), str(csv))
    except YamlFileError as exc:
        raise CalibrationError(f"cannot read {where}: {exc.problem}") from None
    try:
        return pd.read_csv(io.StringIO(text))
    except (ValueError, pd.errors.ParserError) as exc:  # EmptyDataError and ParserError are ValueErrors
        raise CalibrationError(f"cannot read {where}: {' '.join(str(exc).split())[:200]}") from None


def _lines(mask: pd.Series) -> str:
    """CSV line numbers (the header is line 1) of the rows in ``mask``, the first few."""
    lines = [str(i + 2) for i in mask[mask].index[:8]]
    return ", ".join(lines) + (", ..." if int(mask.sum()) > 8 else "")


def _check_text(frame: pd.DataFrame, where: str) -> None:
    for column in TEXT_COLUMNS:
        empty = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if empty.any():
            hint = " (URL or paper)" if column == "source" else ""
            raise CalibrationError(f"{where}: every row needs a {column}{hint}; empty at lines {_lines(empty)}")
        frame[column] = frame[column].astype(str).str.strip()


def _check_integers(frame: pd.DataFrame, where: str) -> None:
    for column in INTEGER_COLUMNS:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = ~numbers.map(lambda v: math.isfinite(v) and v >= 1 and float(v).is_integer())
        if bad.any():
            raise CalibrationError(f"{where}: {column} must be an integer >= 1 (lines {_lines(bad)})")
        frame[column] = numbers.astype(int)


def _check_latency(frame: pd.DataFrame, where: str) -> None:
    _check_positive(frame, where, "latency_ms")


def _check_positive(frame: pd.DataFrame, where: str, column: str, missing_ok: bool = False) -> None:
    numbers = pd.to_numeric(frame[column], errors="coerce")
    bad = ~numbers.map(lambda v: math.isfinite(v) and v > 0)
    if missing_ok:
        bad &= frame[column].notna()
    if bad.any():
        raise CalibrationError(f"{where}: {column} must be a positive finite number (lines {_lines(bad)})")
    frame[column] = numbers.astype(float)


def _check_split(frame: pd.DataFrame, where: str) -> None:
    if "split" not in frame.columns:
        return
    bad = ~frame["split"].isin(SPLITS)
    if bad.any():
        raise CalibrationError(f"{where}: split must be {' or '.join(SPLITS)} (lines {_lines(bad)})")


def rows_for(frame: pd.DataFrame, device: str) -> pd.DataFrame:
    return frame[frame["device"] == device].reset_index(drop=True)

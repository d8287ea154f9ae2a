"""Measured latencies (``cost_models/data/measurements.csv``) and the model predictions for them.

Columns: ``device`` (profile name or alias), ``model`` (a name of reference_workloads), ``input_size``,
``batch_size``, ``precision`` (uniform policy: fp32, fp16, w8a8...), ``latency_ms``, ``split``
(``calib`` or ``holdout``, used by validate.py), ``source`` (URL or paper) and ``notes``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .errors import CalibrationError
from .profile_loader import profile_aliases

MEASUREMENTS_CSV = Path(__file__).resolve().parent / "data" / "measurements.csv"
REQUIRED_COLUMNS = ("device", "model", "input_size", "batch_size", "precision", "latency_ms", "source")


def read_measurements(csv: str | os.PathLike | pd.DataFrame = MEASUREMENTS_CSV) -> pd.DataFrame:
    """The measurement table, checked for its required columns and positive latencies."""
    if isinstance(csv, pd.DataFrame):
        frame, where = csv.copy(), "measurements"
    else:
        where = str(csv)
        try:
            frame = pd.read_csv(csv)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise CalibrationError(f"cannot read measurements {where}: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise CalibrationError(f"measurements {where} lack columns {missing}; required: {list(REQUIRED_COLUMNS)}")
    bad = frame[~(pd.to_numeric(frame["latency_ms"], errors="coerce") > 0)]
    if len(bad):
        raise CalibrationError(f"measurements {where}: latency_ms must be a positive number (rows {list(bad.index)})")
    if frame["source"].isna().any() or (frame["source"].astype(str).str.strip() == "").any():
        raise CalibrationError(f"measurements {where}: every row needs a source (URL or paper)")
    aliases = profile_aliases()
    frame["device"] = frame["device"].map(lambda d: aliases.get(d, d))
    return frame.reset_index(drop=True)


def rows_for(frame: pd.DataFrame, device: str) -> pd.DataFrame:
    return frame[frame["device"] == device].reset_index(drop=True)

"""Hardware profiles shipped with hwqnn: one YAML per device (see README.md for the schema)."""

from pathlib import Path

PROFILE_DIR = Path(__file__).resolve().parent

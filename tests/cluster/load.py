"""The mixed load through the edge lives in ops/continuum_ops/load.py (the chaos runner,
ops/continuum_ops/chaos.py, drives it too); this module keeps the name the cluster tests and
bench/drill import it by."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ops"))

from continuum_ops.load import *  # noqa: E402,F401,F403

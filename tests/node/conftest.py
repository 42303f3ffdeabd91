"""Real-node tier: its worker tests reuse the integration tier's operator kit and the worker tier's
PostgreSQL and seeding, so both directories are importable here (as when the whole suite runs)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for _dir in ("integration", "workers"):
    if str(_TESTS / _dir) not in sys.path:
        sys.path.insert(0, str(_TESTS / _dir))

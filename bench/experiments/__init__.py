"""Operator variants for `python -m bench.run --operator-wrapper bench/experiments/<file>.py`."""

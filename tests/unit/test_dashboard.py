"""The chart's Grafana dashboard is what scripts/grafana_dashboard.py generates, and is well formed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_dashboard", REPO / "scripts/grafana_dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_dashboard_is_the_generated_one() -> None:
    gen = generator()
    committed = gen.OUTPUT.read_text()
    assert committed == gen.render(), (
        "run `python scripts/grafana_dashboard.py --write` and commit the result"
    )


def test_panels_have_unique_ids_fit_the_grid_and_use_the_datasource_variable() -> None:
    board = json.loads(generator().render())
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['title']!r} overlaps another"
                cells.add((x, y))
        assert p["datasource"]["uid"] == "${datasource}"
        assert p["targets"] and all(
            t["expr"] and t["datasource"]["uid"] == "${datasource}" for t in p["targets"]
        )
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "namespace"}

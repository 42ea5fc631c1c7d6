"""Tabs of the main window.

Every tab is a `explorer.panels.tab.Tab` (its docstring is the contract: gate, model reset, refresh
while hidden, job slots, stop hook; with a minimal example), so a new tab is one view file plus one
line here. `EXTRA_PANELS` lists the tabs the main window adds after "Explore", each as (tab title,
module, class name). The window imports each module if it can (a missing module is skipped with a
logged warning) and builds the tab as `Cls(state: ExplorerState, parent=None)`. A panel may offer
`session_data() -> dict` and `load_session_data(d: dict)`: a saved session stores that dict under
the module's last name (e.g. "interpolation") and hands it back on load.
"""

from __future__ import annotations

EXTRA_PANELS: list[tuple[str, str, str]] = [
    ("Maps", "explorer.panels.maps", "MapPanel"),
    ("Interpolate", "explorer.panels.interpolation", "InterpolationPanel"),
    ("Arithmetic", "explorer.panels.arithmetic", "ArithmeticPanel"),
    ("Directions", "explorer.panels.directions", "DirectionsPanel"),
    ("Styles", "explorer.panels.styles", "StylesPanel"),
    ("Nearest", "explorer.panels.nearest", "NearestPanel"),
    ("Timeline", "explorer.panels.timeline", "TimelinePanel"),
    ("Train", "explorer.panels.training", "TrainingPanel"),
    ("Replay", "explorer.panels.replay", "ReplayPanel"),
    ("Control", "explorer.panels.control", "ControlPanel"),
]


def session_key(module: str) -> str:
    """The session-file key of a panel's data: the module's last name ("interpolation")."""
    return module.rsplit(".", 1)[-1]

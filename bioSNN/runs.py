"""Run folders: ``runs/NAME-<timestamp>/`` with ``config.json``, ``metrics.json``, figures, checkpoints.

Everything is written atomically, so a run killed at any point can be resumed from its folder.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from ._atomic import write_json

__all__ = ["new_run_dir", "write_json"]


def new_run_dir(root: str | Path, name: str) -> Path:
    """Create and return a fresh ``root/name-YYYYmmdd-HHMMSS`` folder (suffixed ``-2``, ``-3`` ... if taken)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        d = root / (f"{name}-{stamp}" if i == 1 else f"{name}-{stamp}-{i}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run folder under {root}")

"""Run folders: ``runs/NAME-<timestamp>/`` with ``config.json``, ``metrics.json``, figures, checkpoints.

Everything is written atomically, so a run killed at any point can be resumed from its folder.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from ._atomic import write_json

__all__ = ["new_run_dir", "read_finished", "check_same_config", "write_json"]


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


def read_finished(run_dir: str | Path, experiment: str) -> tuple[dict, dict]:
    """``(config, metrics)`` of a finished run of ``experiment`` (its resolved ``config.json`` values and its
    ``metrics.json``); a clear error when the folder is not one."""
    run_dir = Path(run_dir)
    for name in ("metrics.json", "config.json"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir}: no {name} (not a finished {experiment} run)")
    saved = json.loads((run_dir / "config.json").read_text())
    if saved.get("experiment") != experiment:
        raise ValueError(f"{run_dir}: a {saved.get('experiment')!r} run, not a {experiment} run")
    return saved["config"], json.loads((run_dir / "metrics.json").read_text())


def check_same_config(base: dict, cfg: dict, allowed, run: str | Path, first: str | Path) -> None:
    """For merging runs: a clear error naming the first key (sorted) whose value in ``cfg`` (of ``run``) differs
    from ``base`` (of ``first``), keys in ``allowed`` excepted."""
    for key in sorted(set(base) | set(cfg)):
        if key not in allowed and base.get(key) != cfg.get(key):
            raise ValueError(f"{run}: config key {key!r} differs ({cfg.get(key)!r} vs {base.get(key)!r} in "
                             f"{first}); pass --ignore {key} if it does not matter for the variants taken")

"""Every results table that pairs a run folder with a command (README.md, experiments/results/INDEX.md) names a
stored run, and its command resolves, with today's defaults and presets, to exactly that run's ``config.json``;
the index lists every stored run and is current."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bioSNN.cli import _experiment, _flat, resolve_command
from bioSNN.config import apply_overrides, to_dict
from bioSNN.experiments import results_index

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "experiments" / "results"


def table_rows(path: Path):
    """``(folder, command)`` of each row of each table with 'run folder' and 'command' columns."""
    rows, cols = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            cols = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if cols is None:
            cols = cells if {"run folder", "command"} <= set(cells) else []
            continue
        if not cols or set(line) <= set("|- "):
            continue
        folder, command = cells[cols.index("run folder")], cells[cols.index("command")]
        rows.append((folder, command))
    return rows


def _folder(cell: str, base: Path) -> Path | None:
    links = re.findall(r"\]\(([^)]+)\)", cell)
    assert len(links) <= 1, f"one run folder per row, got {cell}"
    return (base / links[0]).resolve() if links else None


def _command(cell: str) -> str | None:
    cmds = re.findall(r"`(biosnn run [^`]+)`", cell)
    assert len(cmds) <= 1, f"one command per row, got {cell}"
    return cmds[0] if cmds else None


def _checked_rows():
    out = []
    for doc, base in ((ROOT / "README.md", ROOT), (RESULTS / "INDEX.md", RESULTS)):
        last = None
        for folder_cell, command_cell in table_rows(doc):
            command = _command(command_cell) or (last if command_cell == "same command" else None)
            last = command
            folder = _folder(folder_cell, base)
            assert (folder is None) == (command is None), (
                f"{doc.name}: a row has a folder without a command or the reverse: {folder_cell} | {command_cell}"
            )
            if folder is not None:
                out.append((doc.name, folder, command))
    return out


ROWS = _checked_rows()


def test_the_readme_and_the_index_have_checked_rows():
    docs = {doc for doc, _, _ in ROWS}
    assert docs == {"README.md", "INDEX.md"} and sum(d == "README.md" for d, _, _ in ROWS) >= 8


@pytest.mark.parametrize("doc, folder, command", ROWS, ids=[f"{d}:{f.name}" for d, f, _ in ROWS])
def test_each_command_resolves_to_its_stored_config(doc, folder, command):
    saved = json.loads((folder / "config.json").read_text())
    name, cfg = resolve_command(command)
    assert name == saved["experiment"]
    stored = _flat(to_dict(apply_overrides(_experiment(name).Config(), saved["config"])))
    resolved = _flat(to_dict(cfg))
    diff = {
        k: (resolved.get(k), stored.get(k)) for k in set(stored) | set(resolved) if resolved.get(k) != stored.get(k)
    }
    assert diff == {}, f"{doc}: `{command}` differs from {folder.name}/config.json (command, stored): {diff}"


def test_the_index_lists_every_stored_run_and_is_current():
    stored = {p.parent.resolve() for p in RESULTS.rglob("config.json")}
    assert stored == {f for d, f, _ in ROWS if d == "INDEX.md"}
    assert (RESULTS / "INDEX.md").read_text() == results_index.render(RESULTS), (
        "experiments/results/INDEX.md is out of date: python -m bioSNN.experiments.results_index"
    )

"""Imports point down only: every ``import`` in the package (at module level or inside a function) goes to a
module of the same or a lower layer, so the layering cannot creep back.

| layer | modules |
| --- | --- |
| 1 ground | atomic, config, device, energy, noise, monitors, viz |
| 2 data and files | data/, encoding, bundles, runs |
| 3 engines | brian/ (Brian2), nn/ (PyTorch) — never each other |
| 4 interchange | interop/ (nir_graph imports neither torch nor brian2) |
| 5 the zoo | models/ |
| 6 entry points | experiments/, inspect, cli — the library below never imports them; inspect uses no part of cli |
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER = {
    "atomic": 1,
    "config": 1,
    "device": 1,
    "energy": 1,
    "noise": 1,
    "monitors": 1,
    "viz": 1,
    "data": 2,
    "encoding": 2,
    "bundles": 2,
    "runs": 2,
    "brian": 3,
    "nn": 3,
    "interop": 4,
    "models": 5,
    "experiments": 6,
    "inspect": 6,
    "cli": 6,
}
SOURCES = (("bioSNN", "bioSNN"), ("models", "bioSNN.models"), ("experiments", "bioSNN.experiments"))


def _modules():
    for folder, package in SOURCES:
        for f in sorted((ROOT / folder).rglob("*.py")):
            rel = f.relative_to(ROOT / folder).with_suffix("")
            yield f, ".".join([package, *rel.parts]).removesuffix(".__init__")


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, module: str):
    """``(imported module, line)`` for every import of a bioSNN module in the file, relative ones resolved."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                names = [f"{base}.{node.module}" if node.module else f"{base}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            if name == "bioSNN" or name.startswith("bioSNN."):
                yield name, node.lineno


def violations() -> list[str]:
    out = []
    for path, module in _modules():
        me = _unit(module)
        if me == "__init__":
            continue
        for target, line in _imports(path, module):
            other = _unit(target)
            where = f"{path.relative_to(ROOT)}:{line} ({me}) imports {target}"
            if other in (me, "__init__", "__version__"):  # the package itself (its version)
                continue
            if other not in LAYER or me not in LAYER:
                out.append(f"{where}: a module the layer table does not place")
            elif LAYER[other] > LAYER[me]:
                out.append(f"{where}: layer {LAYER[other]} above layer {LAYER[me]}")
            elif {me, other} == {"brian", "nn"}:
                out.append(f"{where}: the two engines never import each other")
            elif me == "inspect" and other == "cli":
                out.append(f"{where}: run-folder helpers belong in runs, not cli")
    return out


def test_imports_point_down_the_layers():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    bad = tmp_path / "bioSNN" / "nn"
    bad.mkdir(parents=True)
    (bad / "x.py").write_text(
        "def f():\n    from bioSNN.models import build_spiking\n    from ..experiments import demo\n"
    )
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    found = violations()
    assert len(found) == 2 and "layer 5 above layer 3" in found[0] and "layer 6 above layer 3" in found[1]


@pytest.mark.parametrize(
    "module, heavy",
    [
        ("bioSNN.interop.nir_graph", ("torch", "brian2")),
        ("bioSNN.interop.nir_brian", ("torch",)),
        ("bioSNN.cli", ("torch", "brian2", "matplotlib")),
    ],
)
def test_light_modules_import_without_the_engines(module, heavy):
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr[-2000:]

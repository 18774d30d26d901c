"""One validation layer for NIR: sizes checked before arrays are read, node kinds, dtypes, shapes and ranges
checked before either engine builds anything, each refusal one line naming the file, node and field."""

from __future__ import annotations

import subprocess
import sys

import h5py
import nir
import numpy as np
import pytest

from bioSNN.interop.nir_graph import NIRError, describe, read, validate


def _graph(**lif) -> nir.NIRGraph:
    p = {
        "tau": np.full(2, 0.01),
        "r": np.full(2, 10.0),
        "v_leak": np.zeros(2),
        "v_threshold": np.ones(2),
        "v_reset": np.zeros(2),
        **lif,
    }
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([3])),
            "fc": nir.Linear(weight=np.ones((2, 3))),
            "lif": nir.LIF(**p),
            "output": nir.Output(output_type=np.array([2])),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
        metadata={"dt": 1e-3, "time_steps": 4},
    )


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.nir"
    nir.write(path, _graph())
    return path


def test_a_valid_file_reads_and_describes_without_its_arrays(good):
    g = read(good)
    assert sorted(g.nodes) == ["fc", "input", "lif", "output"]
    d = describe(good)
    assert d["nodes"] == {"fc": "Linear", "input": "Input", "lif": "LIF", "output": "Output"}
    assert d["metadata"]["time_steps"] == 4 and ["fc", "lif"] in d["edges"]


def test_a_small_file_declaring_gigabytes_is_refused_before_any_array_is_read(tmp_path):
    path = tmp_path / "bomb.nir"
    nir.write(path, _graph())
    with h5py.File(path, "r+") as f:  # 93 KB on disk, 3.4 GB declared (chunked, compressed, never written)
        del f["node/nodes/fc/weight"]
        f.create_dataset(
            "node/nodes/fc/weight", shape=(30_000, 15_000), dtype="f8", chunks=(1000, 1000), compression="gzip"
        )
    assert path.stat().st_size < 200_000
    for reader in (read, describe):
        with pytest.raises(NIRError, match=r"bomb\.nir: dataset /node/nodes/fc/weight .* past 1073741824 bytes"):
            reader(path)
    # the command line: one line, exit 2, and no gigabytes of memory on the way (peak RSS of the child)
    # (VmHWM: the peak of this process image alone; ru_maxrss would carry the forking test worker's peak)
    code = (
        "import re, sys; from bioSNN.cli import main; rc = main(['info', sys.argv[1]]); "
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "bomb.nir" in r.stderr, r.stderr
    assert int(r.stdout.split()[-1]) < 300_000  # kB: the interpreter, numpy and h5py (~60 MB), not 3 GB


@pytest.mark.parametrize(
    "break_it, message",
    [
        (
            lambda f: (f["node/nodes/lif"].__delitem__("type"), f["node/nodes/lif"].__setitem__("type", "Spiky")),
            r"node 'lif': type 'Spiky' is not a NIR node type",
        ),
        (
            lambda f: (
                f["node/nodes/fc"].__delitem__("weight"),
                f["node/nodes/fc"].create_dataset("weight", data=np.array([[b"a", b"b", b"c"]] * 2)),
            ),
            r"node 'fc': weight must hold real numbers",
        ),
        (lambda f: f["node/nodes"].__delitem__("input"), r"need exactly one Input|not a node|could not read"),
        (lambda f: f.__delitem__("node"), r"without a 'node' group"),
    ],
)
def test_broken_files_end_in_one_nir_error_naming_the_file(good, break_it, message):
    with h5py.File(good, "r+") as f:
        break_it(f)
    with pytest.raises(NIRError, match=message) as e:
        read(good)
    assert str(good) in str(e.value)


def test_a_file_that_is_not_hdf5_is_refused(tmp_path):
    p = tmp_path / "x.nir"
    p.write_bytes(b"not hdf5 at all" * 10)
    for reader in (read, describe):
        with pytest.raises(NIRError, match="not an HDF5 file"):
            reader(p)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("tau", np.array([0.01, -0.01]), "tau must be > 0"),
        ("v_threshold", np.array([1.0, np.nan]), "v_threshold holds NaN"),
        ("r", np.zeros(2), "r must be > 0"),
        ("v_reset", np.array([0.0, -np.inf]), "v_reset holds NaN or infinite"),
    ],
)
def test_graphs_neither_engine_can_run_are_refused_by_node_and_field(field, value, message):
    with pytest.raises(NIRError, match=f"node 'lif': {message}"):
        validate(_graph(**{field: value}))


def test_edges_inputs_and_run_settings_are_checked():
    g = _graph()
    g.edges.append(("lif", "nowhere"))
    with pytest.raises(NIRError, match="names 'nowhere', which is not a node"):
        validate(g)
    g = _graph()
    g.metadata["dt"] = float("nan")
    with pytest.raises(NIRError, match="metadata dt must be a positive number"):
        validate(g)
    g = _graph()
    g.metadata["time_steps"] = 0
    with pytest.raises(NIRError, match="time_steps must be a positive integer"):
        validate(g)


@pytest.mark.torch
def test_the_pytorch_reader_refuses_through_the_same_checks():
    from bioSNN.interop.nir import from_nir

    with pytest.raises(NIRError, match="tau must be > 0"):
        from_nir(_graph(tau=np.full(2, -1.0)))
    with pytest.raises(NIRError, match="dt must be a positive number"):
        from_nir(_graph(), dt=float("nan"))


@pytest.mark.brian2
def test_the_brian2_reader_refuses_what_the_pytorch_reader_refuses_and_imports_without_torch():
    from bioSNN.interop.nir_brian import NIRBrianNetwork

    for bad in (_graph(tau=np.full(2, -1.0)), _graph(v_threshold=np.full(2, np.nan)), _graph(r=np.zeros(2))):
        with pytest.raises(NIRError):
            NIRBrianNetwork(bad, images=1)
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, bioSNN.interop.nir_brian, bioSNN.interop.nir_graph; print('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.stdout.strip() == "False", r.stderr

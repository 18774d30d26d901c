"""Every reader of an outside file, fed arbitrary bytes and well-formed but wrong values (hypothesis): it ends in
the project's own error type with one line, never another exception, never a hang, never memory past its cap.

Each test's example count is its ``max_examples`` (60 or 40); under ``CI=true`` the examples are derandomized (the same
every run) and each test stays within a few seconds."""

from __future__ import annotations

import gzip
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioSNN import bundles, data
from bioSNN.config import ConfigError, read_config_file

# BIOSNN_HYPOTHESIS_SCALE=20 runs twenty times as many examples (a search, not for CI)
SCALE = float(os.environ.get("BIOSNN_HYPOTHESIS_SCALE", "1"))
FAST = settings(
    max_examples=int(60 * SCALE),
    deadline=10_000,  # a hang fails; a slow first import on a loaded CI machine does not
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=os.environ.get("CI", "").lower() == "true",
    database=None,
)

# JSON values of every kind, nested a little
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _one_line(e: BaseException) -> None:
    assert str(e).strip() and "\n" not in str(e).strip(), repr(str(e))


def _write(tmp_path: Path, name: str, payload: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(payload)
    return p


# ---------------------------------------------------------------------------------------------------- bundles
@FAST
@given(payload=st.binary(max_size=2048))
def test_arbitrary_bytes_as_a_bundle_are_a_bundle_error(tmp_path, payload):
    p = _write(tmp_path, "x.npz", payload)
    for reader in (bundles.read, bundles.describe):
        with pytest.raises(bundles.BundleError) as e:
            reader(p)
        _one_line(e.value)


def _zip_with(description, members: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bundle.json", json.dumps(description))
        for k, v in (members or {}).items():
            z.writestr(k, v)
    return buf.getvalue()


POPULATION = st.fixed_dictionaries(
    {"name": st.text(max_size=6) | JSON, "size": st.integers(-3, 5) | JSON, "model": JSON}, optional={"params": JSON}
)
DESCRIPTION = st.fixed_dictionaries(
    {
        "format": st.just("biosnn-bundle") | JSON,
        "version": st.sampled_from([1, 2]) | JSON,
        "populations": st.lists(POPULATION, max_size=3) | JSON,
        "projections": st.lists(
            st.fixed_dictionaries(
                {"name": JSON, "source": JSON, "target": JSON, "weights": JSON}, optional={"connectivity": JSON}
            ),
            max_size=2,
        )
        | JSON,
    },
    optional={
        "arrays": st.dictionaries(
            st.text(alphabet="ab._-", min_size=1, max_size=5),
            st.fixed_dictionaries(
                {
                    "shape": st.lists(st.integers(-1, 3000), max_size=4) | JSON,
                    "dtype": st.sampled_from(["<f8", "|O", "<i4", "xx"]) | JSON,
                }
            ),
            max_size=2,
        )
        | JSON,
        "extra": JSON,
        "device": JSON,
        "provenance": JSON,
        "engine": JSON,
        "name": JSON,
    },
)


@FAST
@given(description=DESCRIPTION, npy=st.binary(max_size=256))
def test_well_formed_but_wrong_bundle_descriptions_are_a_bundle_error_or_a_valid_bundle(tmp_path, description, npy):
    members = (
        {f"{k}.npy": npy for k in description.get("arrays", {})} if isinstance(description.get("arrays"), dict) else {}
    )
    p = _write(tmp_path, "x.npz", _zip_with(description, members))
    try:
        b = bundles.read(p, max_bytes=1 << 20)
    except bundles.BundleError as e:
        _one_line(e)
    else:  # accepted: then it is a bundle that describes and writes again
        assert isinstance(b, bundles.Bundle)
        bundles.write(tmp_path / "again.npz", b)


# ---------------------------------------------------------------------------------------------------------- NIR
@FAST
@given(payload=st.binary(max_size=2048))
def test_arbitrary_bytes_as_a_nir_file_are_a_nir_error(tmp_path, payload):
    from bioSNN.interop.nir_graph import NIRError, describe, read

    p = _write(tmp_path, "x.nir", payload)
    for reader in (read, describe):
        with pytest.raises(NIRError) as e:
            reader(p)
        _one_line(e.value)


NIR_VALUE = (
    st.integers(-5, 5)
    | st.floats(allow_nan=True, allow_infinity=True, width=32)
    | st.lists(st.floats(-3, 3, width=32), min_size=1, max_size=3)
    | st.text("ab1. ", max_size=4)
)


@settings(FAST, max_examples=int(40 * SCALE))
@given(
    kind=st.sampled_from(["LIF", "IF", "Linear", "Affine", "Conv2d", "Input", "Output", "Flatten", "Spiky", ""]),
    fields=st.dictionaries(
        st.sampled_from(
            [
                "tau",
                "r",
                "v_leak",
                "v_threshold",
                "v_reset",
                "weight",
                "bias",
                "shape",
                "stride",
                "padding",
                "groups",
                "dilation",
                "input_shape",
            ]
        ),
        NIR_VALUE,
        max_size=5,
    ),
    edges=st.lists(
        st.tuples(
            st.sampled_from(["input", "n", "output", "ghost"]), st.sampled_from(["input", "n", "output", "ghost"])
        ),
        max_size=3,
    ),
)
def test_well_formed_hdf5_with_wrong_nodes_is_a_nir_error_or_a_valid_graph(tmp_path, kind, fields, edges):
    import h5py

    from bioSNN.interop.nir_graph import NIRError, read

    p = tmp_path / "g.nir"
    with h5py.File(p, "w") as f:
        f["version"] = "1.0.8"
        node = f.create_group("node")
        node["type"] = "NIRGraph"
        node.create_group("metadata")
        nodes = node.create_group("nodes")
        nodes.create_group("input")["type"] = "Input"
        nodes["input"]["shape"] = np.array([2])
        nodes.create_group("output")["type"] = "Output"
        nodes["output"]["shape"] = np.array([2])
        g = nodes.create_group("n")
        g["type"] = kind
        for k, v in fields.items():
            g[k] = np.array(v) if not isinstance(v, str) else v
        node["edges"] = np.array(edges, dtype="S") if edges else np.zeros((0, 2), dtype="S1")
    try:
        graph = read(p)
    except NIRError as e:
        _one_line(e)
    else:
        assert set(graph.nodes) == {"input", "n", "output"}


# ------------------------------------------------------------------------------------ configs and run folders
@FAST
@given(payload=st.binary(max_size=512), suffix=st.sampled_from([".toml", ".json", ".yaml"]))
def test_arbitrary_bytes_as_a_config_file_are_a_config_error(tmp_path, payload, suffix):
    p = _write(tmp_path, f"c{suffix}", payload)
    try:
        got = read_config_file(p)
    except ConfigError as e:
        _one_line(e)
    else:
        assert isinstance(got, dict)


@FAST
@given(config=JSON)
def test_any_json_as_a_config_file_is_a_config_error_or_a_valid_config(tmp_path, config):
    from bioSNN.cli import build_config
    from bioSNN.experiments import demo

    p = _write(tmp_path, "c.json", json.dumps(config).encode())
    try:
        cfg = build_config(demo, None, str(p), [])
    except ConfigError as e:
        _one_line(e)
    else:
        assert isinstance(cfg, demo.Config)


@FAST
@given(
    saved=JSON
    | st.fixed_dictionaries(
        {"experiment": st.sampled_from(["demo", "hybrid", "nope"]) | JSON, "config": JSON},
        optional={"schema": JSON, "preset": JSON},
    )
)
def test_a_run_folder_with_any_config_json_is_refused_in_one_line_or_resumable(tmp_path, saved):
    from bioSNN.cli import read_run_config
    from bioSNN.config import apply_overrides
    from bioSNN.experiments import demo

    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "config.json").write_text(json.dumps(saved))
    try:
        got = read_run_config(run, "demo")
        apply_overrides(demo.Config(), got["config"])
    except ConfigError as e:
        _one_line(e)


# -------------------------------------------------------------------------------------------- vocabularies
@FAST
@given(
    vocab=JSON
    | st.fixed_dictionaries(
        {
            "source": st.lists(st.text(max_size=3), max_size=8) | JSON,
            "target": st.lists(st.text(max_size=3), max_size=8) | JSON,
        }
    )
)
def test_any_vocabulary_file_is_a_bundle_error_or_two_vocabularies(tmp_path, vocab):
    from bioSNN.nn.seq2seq import read_vocabularies

    p = _write(tmp_path, "vocab.json", json.dumps(vocab).encode())
    try:
        src, tgt = read_vocabularies(p)
    except bundles.BundleError as e:
        _one_line(e)
    else:
        assert len(set(src.tokens)) == len(src.tokens) and src.tokens[:4] == tgt.tokens[:4]


@FAST
@given(payload=st.binary(max_size=256))
def test_arbitrary_bytes_as_a_vocabulary_file_are_a_bundle_error(tmp_path, payload):
    from bioSNN.nn.seq2seq import read_vocabularies

    with pytest.raises(bundles.BundleError) as e:
        read_vocabularies(_write(tmp_path, "vocab.json", payload))
    _one_line(e.value)


# --------------------------------------------------------------------------------- datasets, unverified
@settings(FAST, max_examples=int(40 * SCALE))
@given(
    name=st.sampled_from(["mnist", "fsdd", "nmnist", "sst2", "multi30k"]),
    payload=st.binary(max_size=1024),
    gz=st.booleans(),
)
def test_arbitrary_bytes_as_a_dataset_file_are_a_data_error(tmp_path, monkeypatch, name, payload, gz):
    spec = data.registry.get_spec(name)
    _write(tmp_path, spec.filename, gzip.compress(payload) if gz else payload)
    monkeypatch.setenv("BIOSNN_DATA", str(tmp_path))
    with pytest.raises(data.DataError) as e:
        data.load(name, download=False, verify=False, progress=False)
    _one_line(e.value)
    assert spec.filename in str(e.value)


@settings(FAST, max_examples=int(40 * SCALE))
@given(
    arrays=st.dictionaries(
        st.sampled_from(["x_train", "y_train", "x_test", "y_test", "class_names", "other"]),
        st.sampled_from(
            [
                np.zeros((2, 28, 28), np.uint8),
                np.zeros(2, np.int64),
                np.full(2, 11),
                np.zeros((2, 3), np.float32),
                np.array(["a", "b"]),
                np.zeros(0, np.uint8),
                np.zeros((3, 28, 28), np.uint8),
            ]
        ),
        max_size=6,
    )
)
def test_well_formed_npz_with_wrong_arrays_is_a_data_error_or_a_dataset(tmp_path, monkeypatch, arrays):
    np.savez(tmp_path / "mnist.npz", **arrays)
    monkeypatch.setenv("BIOSNN_DATA", str(tmp_path))
    try:
        ds = data.load("mnist", download=False, verify=False, progress=False)
    except data.DataError as e:
        _one_line(e)
        assert "mnist.npz" in str(e)
    else:
        assert len(ds.x_train) == len(ds.y_train) and ds.x_train.dtype == np.uint8

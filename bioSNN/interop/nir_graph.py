"""What both NIR readers share: reading a NIR file within limits, and checking a graph before it is built.

Neither torch nor brian2 is imported here, so the Brian2 reader (:mod:`bioSNN.interop.nir_brian`) and
``biosnn info`` do not pull in the PyTorch engine.

:func:`read` looks at the HDF5 file's structure first — object count, nesting, every dataset's declared shape and
dtype — and refuses a file whose arrays together declare more than :data:`MAX_BYTES` before any array is read
(a small file can declare a huge compressed dataset). Then ``nir.read`` builds the graph and :func:`validate`
checks it. :func:`describe` lists node types, edges and metadata without reading a node's arrays.

:func:`validate` is what every reader calls on a graph, from a file or built in Python. It refuses, naming the
node and field: node kinds NIR does not define (and nested graphs, which no bioSNN reader builds), parameters
that are not finite real numbers, shapes a node cannot have (a 2-D weight for Linear/Affine, 4-D for Conv2d,
a bias of the output size, neuron parameters that do not broadcast together), and values NIR's equations
cannot run with: ``tau``, ``tau_mem``, ``tau_syn`` ≤ 0, ``r`` ≤ 0 (a neuron that takes no input), strides,
kernel sizes or groups < 1, padding < 0; edges naming missing nodes; a graph without exactly one Input and at
least one Output; a ``dt`` that is not a positive finite number or ``time_steps`` that is not a positive integer.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

__all__ = ["NIRError", "RESET", "THRESHOLD_RULE", "MAX_BYTES", "read", "describe", "validate"]

RESET = "subtract"  # metadata["reset"] of a neuron that resets by subtracting its threshold (bioSNN's neurons)
THRESHOLD_RULE = "u >= threshold"  # metadata["threshold_rule"]: bioSNN fires at u >= θ (NIR: v > θ)

# at most this many bytes declared by a file's arrays together (as bioSNN bundles); more with max_bytes= or
# BIOSNN_NIR_MAX_BYTES
MAX_BYTES = 1 << 30
_MAX_OBJECTS = 100_000  # groups and datasets in one file
_MAX_DEPTH = 32


class NIRError(ValueError):
    """A NIR file or graph that bioSNN cannot read or express (the message names the file, node and field)."""


def _limit(max_bytes: int | None) -> int:
    if max_bytes is not None:
        return int(max_bytes)
    env = os.environ.get("BIOSNN_NIR_MAX_BYTES")
    return int(env) if env else MAX_BYTES


def _open_checked(path: Path, limit: int):
    """The open h5py file after its structure passed the size checks (the caller closes it)."""
    import h5py

    if not path.is_file():
        raise FileNotFoundError(f"no NIR file at {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise NIRError(f"{path}: not an HDF5 file, so not a NIR file ({' '.join(str(e).split())[:200]})") from None
    try:
        if not isinstance(f.get("node"), h5py.Group):
            raise NIRError(f"{path}: an HDF5 file without a 'node' group, not a NIR graph")
        count, declared = [0], [0]

        def visit(group, depth: int):
            if depth > _MAX_DEPTH:
                raise NIRError(f"{path}: groups nested deeper than {_MAX_DEPTH} levels at {group.name}")
            for key in group:
                obj = group.get(key)
                count[0] += 1
                if count[0] > _MAX_OBJECTS:
                    raise NIRError(f"{path}: more than {_MAX_OBJECTS} groups and datasets")
                if isinstance(obj, h5py.Group):
                    visit(obj, depth + 1)
                elif isinstance(obj, h5py.Dataset):
                    n = math.prod(obj.shape) if obj.shape is not None else 0
                    # variable-length strings live in the file's heap: the file size (added below) bounds them
                    declared[0] += n * obj.dtype.itemsize
                    if declared[0] > limit:
                        raise NIRError(
                            f"{path}: dataset {obj.name} of shape {obj.shape} brings the declared "
                            f"data past {limit} bytes (read(..., max_bytes=N) or "
                            "BIOSNN_NIR_MAX_BYTES=N to accept it)"
                        )

        visit(f, 0)
        if declared[0] + path.stat().st_size > limit:
            raise NIRError(f"{path}: the file and its declared data exceed {limit} bytes")
        return f
    except BaseException:
        f.close()
        raise


def read(path: str | os.PathLike, max_bytes: int | None = None):
    """The validated ``nir.NIRGraph`` in the file ``path``; every defect a :class:`NIRError` naming the file
    (``FileNotFoundError`` when there is none)."""
    import nir

    path = Path(path)
    known = {n for n in dir(nir) if isinstance(getattr(nir, n), type) and issubclass(getattr(nir, n), nir.NIRNode)}
    for name, kind in describe(path, max_bytes)["nodes"].items():  # nir itself fails on these with a bare assert
        if kind not in known:
            raise NIRError(
                f"{path}: node {name!r}: type {kind!r} is not a NIR node type (nir {nir.__version__} "
                f"knows {', '.join(sorted(known - {'NIRNode'}))})"
            )
    try:
        graph = nir.read(path)
    except NIRError:
        raise
    except Exception as e:  # nir raises whatever its node constructors raise (KeyError, TypeError, asserts ...)
        msg = " ".join(str(e).split())[:300] or "no message"
        raise NIRError(f"{path}: nir could not read it as a NIR graph ({type(e).__name__}: {msg})") from None
    validate(graph, str(path))
    return graph


def _text(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def describe(path: str | os.PathLike, max_bytes: int | None = None) -> dict:
    """Metadata, node types and edges of the NIR file ``path``, read without any node's arrays (size-checked as
    :func:`read` checks)."""
    import h5py

    path = Path(path)
    with _open_checked(path, _limit(max_bytes)) as f:
        node = f["node"]

        def plain(obj):
            if isinstance(obj, h5py.Group):
                return {k: plain(obj[k]) for k in obj}
            v = obj[()]
            if isinstance(v, np.ndarray):
                return (
                    [_text(x) if isinstance(x, bytes) else x for x in v.tolist()]
                    if v.size <= 64
                    else f"array {v.shape} {v.dtype}"
                )
            return _text(v) if isinstance(v, (bytes, str)) else (v.item() if hasattr(v, "item") else v)

        nodes = node.get("nodes")
        if not isinstance(nodes, h5py.Group):
            raise NIRError(f"{path}: the graph has no 'nodes' group")
        types = {}
        for k in nodes:
            t = nodes[k].get("type") if isinstance(nodes[k], h5py.Group) else None
            if not isinstance(t, h5py.Dataset) or t.shape != ():
                raise NIRError(f"{path}: node {k!r} has no type")
            types[k] = _text(t[()])
        edges = node.get("edges")
        if not isinstance(edges, h5py.Dataset) or (edges.shape and (len(edges.shape) != 2 or edges.shape[1] != 2)):
            raise NIRError(f"{path}: the graph's edges are not a list of (source, target) pairs")
        pairs = [[_text(s), _text(t)] for s, t in edges[()]] if edges.shape and edges.shape[0] else []
        meta = plain(node["metadata"]) if isinstance(node.get("metadata"), h5py.Group) else {}
        version = _text(f["version"][()]) if isinstance(f.get("version"), h5py.Dataset) else None
    return {"nir_version": version, "metadata": meta, "nodes": types, "edges": pairs}


# ----------------------------------------------------------------------------------------------- validation
_NEURONS = {"IF", "LIF", "LI", "I", "CubaLIF", "CubaLI"}
_POSITIVE = ("tau", "tau_mem", "tau_syn", "r")  # time constants and input resistance: > 0
_SKIP = {"metadata", "input_type", "output_type"}


def _real(where: str, field: str, v) -> np.ndarray:
    try:
        a = np.asarray(v)
    except Exception:  # ragged lists and the like
        raise NIRError(f"{where}: {field} is not an array of numbers") from None
    if a.dtype.kind not in "biuf":
        raise NIRError(f"{where}: {field} must hold real numbers, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise NIRError(f"{where}: {field} holds NaN or infinite values")
    return a


def validate(graph, source: str = "graph") -> None:
    """Check ``graph`` (a ``nir.NIRGraph``) as the module says; a :class:`NIRError` naming ``source``, the node
    and the field of the first defect."""
    import nir

    if not isinstance(graph, nir.NIRGraph):
        raise NIRError(f"{source}: not a NIR graph (a {type(graph).__name__})")
    if not isinstance(graph.nodes, dict) or not graph.nodes:
        raise NIRError(f"{source}: the graph has no nodes")
    kinds = {k: type(n).__name__ for k, n in graph.nodes.items()}
    for name, node in graph.nodes.items():
        where = f"{source}: node {name!r}"
        if isinstance(node, nir.NIRGraph):
            raise NIRError(f"{where}: a nested graph; bioSNN reads flat graphs only")
        if not isinstance(node, nir.NIRNode) or type(node).__module__.split(".")[0] != "nir":
            raise NIRError(f"{where}: {type(node).__name__} is not a NIR node")
        _check_node(where, node, nir)
    inputs = [k for k, t in kinds.items() if t == "Input"]
    if len(inputs) != 1:
        raise NIRError(f"{source}: need exactly one Input node, the graph has {len(inputs)}")
    if "Output" not in kinds.values():
        raise NIRError(f"{source}: the graph has no Output node")
    for e in graph.edges:
        if len(e) != 2 or not all(isinstance(x, str) for x in e):
            raise NIRError(f"{source}: edge {e!r} is not a pair of node names")
        for end in e:
            if end not in graph.nodes:
                raise NIRError(f"{source}: edge {e[0]} -> {e[1]} names {end!r}, which is not a node")
    meta = graph.metadata or {}
    if not isinstance(meta, dict):
        raise NIRError(f"{source}: the graph's metadata is not a mapping")
    if "dt" in meta:
        dt = meta["dt"]
        if (
            isinstance(dt, (bool, np.bool_))
            or not isinstance(dt, (int, float, np.integer, np.floating))
            or not math.isfinite(float(dt))
            or float(dt) <= 0
        ):
            raise NIRError(f"{source}: metadata dt must be a positive number of seconds, got {dt!r}")
    if "time_steps" in meta:
        t = meta["time_steps"]
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)) or int(t) < 1:
            raise NIRError(f"{source}: metadata time_steps must be a positive integer, got {t!r}")


def _check_node(where: str, node, nir) -> None:
    import dataclasses

    kind = type(node).__name__
    arrays = {}
    for f in dataclasses.fields(node):
        if f.name in _SKIP:
            continue
        v = getattr(node, f.name)
        if isinstance(v, str) and f.name == "padding":  # Conv padding may be "same" / "valid"
            if v not in ("same", "valid"):
                raise NIRError(f"{where}: padding {v!r} is neither numbers nor 'same'/'valid'")
            continue
        if v is None:
            continue
        arrays[f.name] = _real(where, f.name, v)
    for key in ("input_type", "output_type"):
        types = getattr(node, key, None)
        if isinstance(types, dict):
            for port, shape in types.items():
                s = _real(where, f"{key}[{port!r}]", shape)
                if s.size and (s.ndim != 1 or s.dtype.kind == "f" and np.any(s != np.round(s)) or np.any(s < 0)):
                    raise NIRError(f"{where}: {key}[{port!r}] is not a shape (non-negative integers): {s.tolist()}")
    if kind in _NEURONS:
        for f in _POSITIVE:
            if f in arrays and np.any(arrays[f] <= 0):
                raise NIRError(
                    f"{where}: {f} must be > 0 (NIR's {kind} equation divides by it or takes no input "
                    f"with it), got min {arrays[f].min():g}"
                )
        try:
            np.broadcast_shapes(*(a.shape for a in arrays.values()))
        except ValueError:
            raise NIRError(
                f"{where}: its parameters have shapes that do not broadcast together "
                f"{ {k: a.shape for k, a in arrays.items()} }"
            ) from None
    elif kind in ("Linear", "Affine"):
        w = arrays.get("weight")
        if w is None or w.ndim != 2:
            raise NIRError(f"{where}: {kind} weight must be 2-D (out, in), got {None if w is None else w.shape}")
        if kind == "Affine" and arrays.get("bias", np.zeros(w.shape[0])).shape != (w.shape[0],):
            raise NIRError(f"{where}: bias of shape {arrays['bias'].shape} does not match {w.shape[0]} outputs")
    elif kind in ("Conv1d", "Conv2d"):
        dims = 1 if kind == "Conv1d" else 2
        w = arrays.get("weight")
        if w is None or w.ndim != dims + 2:
            raise NIRError(f"{where}: {kind} weight must be {dims + 2}-D, got {None if w is None else w.shape}")
        if "bias" in arrays and arrays["bias"].size not in (1, w.shape[0]):
            raise NIRError(f"{where}: bias of shape {arrays['bias'].shape} does not match {w.shape[0]} channels")
        for f in ("stride", "dilation", "groups"):
            if f in arrays and np.any(arrays[f] < 1):
                raise NIRError(f"{where}: {f} must be >= 1, got {arrays[f].tolist()}")
        if "padding" in arrays and np.any(arrays["padding"] < 0):
            raise NIRError(f"{where}: padding must be >= 0, got {arrays['padding'].tolist()}")
    elif kind in ("AvgPool2d", "SumPool2d"):
        for f in ("kernel_size", "stride"):
            if f in arrays and np.any(arrays[f] < 1):
                raise NIRError(f"{where}: {f} must be >= 1, got {arrays[f].tolist()}")
        if "padding" in arrays and np.any(arrays["padding"] < 0):
            raise NIRError(f"{where}: padding must be >= 0, got {arrays['padding'].tolist()}")

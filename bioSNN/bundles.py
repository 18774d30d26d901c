"""The bioSNN weight bundle: one versioned file for every trained network, from either engine.

A bundle is a zip file (``.npz``, readable by ``numpy.load``) holding

- ``bundle.json``: the description — populations (size, neuron model, parameters with units), projections
  (source, target, weight array, connectivity), the device config, provenance (dataset, seed, git commit)
  and free-form ``extra`` fields;
- one ``<key>.npy`` member per array (weights, thresholds, masks, optimizer state ...).

Two verbs, as in NIR: :func:`write` (atomic: temporary file + rename) and :func:`read` (validates format,
version, array shapes and dtypes; never unpickles). Every defect becomes a :class:`BundleError` naming the file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path, json_default

__all__ = [
    "FORMAT",
    "VERSION",
    "MAX_BYTES",
    "BundleError",
    "Population",
    "Projection",
    "Bundle",
    "write",
    "read",
    "describe",
    "provenance",
]

FORMAT = "biosnn-bundle"
VERSION = 2  # 2: dense weights (target, source), as in NIR and PyTorch; 1: (source, target), read and converted
_META = "bundle.json"


class BundleError(ValueError):
    """A bundle is malformed, truncated, of an unknown version or inconsistent with its arrays."""


def _check_params(owner: str, params: Mapping[str, Any]) -> dict:
    out = {}
    for k, p in params.items():
        if not isinstance(p, Mapping) or "value" not in p or "unit" not in p:
            raise BundleError(f"{owner}: parameter {k!r} must be {{'value': ..., 'unit': str}}, got {p!r}")
        out[k] = {"value": p["value"], "unit": str(p["unit"])}
    return out


@dataclass(frozen=True)
class Population:
    """A group of neurons of one model.

    ``params`` maps names (NIR names where they exist: ``tau``, ``r``, ``v_leak``, ``v_threshold``,
    ``v_reset``) to ``{"value": number or list, "unit": "mV" | "ms" | "1" ...}``.
    """

    name: str
    size: int
    model: str
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise BundleError(f"population name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.size, (int, np.integer)) or isinstance(self.size, bool) or self.size < 1:
            raise BundleError(f"population {self.name!r}: size must be a positive integer, got {self.size!r}")
        if not isinstance(self.model, str):
            raise BundleError(f"population {self.name!r}: model must be a string, got {self.model!r}")
        object.__setattr__(self, "params", _check_params(f"population {self.name!r}", self.params))


@dataclass(frozen=True)
class Projection:
    """Synapses from ``source`` to ``target``; ``weights`` names the array holding them.

    ``connectivity``: ``"dense"`` (weights ``(target.size, source.size)``: row ``j`` holds the synapses onto target
    neuron ``j``, the layout of NIR's ``Affine``/``Linear`` and PyTorch's ``nn.Linear``, in both engines),
    ``"one_to_one"`` (``(size,)``) or any other string (``"conv2d"``, ``"linear"`` after pooling ...) whose array
    shape is then not checked against the population sizes. Arrays that go with a dense projection's weights
    (``<prefix>.alive`` masks beside ``<prefix>.w``) have the same layout.
    """

    name: str
    source: str
    target: str
    weights: str
    connectivity: str = "dense"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        for key in ("name", "source", "target", "weights", "connectivity"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise BundleError(
                    f"projection {self.name!r}: {key} must be a non-empty string, got {getattr(self, key)!r}"
                )
        object.__setattr__(self, "params", _check_params(f"projection {self.name!r}", self.params))


@dataclass(frozen=True)
class Bundle:
    """A network's arrays and description; validated on construction."""

    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    arrays: dict[str, np.ndarray]
    engine: str = "torch"
    name: str = ""
    device: dict | None = None
    provenance: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "populations", tuple(self.populations))
        object.__setattr__(self, "projections", tuple(self.projections))
        arrays = {}
        for k, a in self.arrays.items():
            a = np.asarray(a)
            if a.dtype.hasobject:
                raise BundleError(f"array {k!r} holds Python objects; bundles store plain numeric arrays only")
            if not k or "/" in k or k == _META[:-5] or k.startswith("."):
                raise BundleError(f"invalid array name {k!r}")
            arrays[k] = a
        object.__setattr__(self, "arrays", arrays)
        pops = {}
        for p in self.populations:
            if p.name in pops:
                raise BundleError(f"population {p.name!r} appears twice")
            pops[p.name] = p
        seen = set()
        for pr in self.projections:
            if pr.name in seen:
                raise BundleError(f"projection {pr.name!r} appears twice")
            seen.add(pr.name)
            for end in (pr.source, pr.target):
                if end not in pops:
                    raise BundleError(f"projection {pr.name!r} refers to unknown population {end!r}")
            if pr.weights not in arrays:
                raise BundleError(f"projection {pr.name!r}: weight array {pr.weights!r} is missing")
            shape = arrays[pr.weights].shape
            expected = {
                "dense": (pops[pr.target].size, pops[pr.source].size),
                "one_to_one": (pops[pr.source].size,),
            }.get(pr.connectivity)
            if pr.connectivity == "one_to_one" and pops[pr.source].size != pops[pr.target].size:
                raise BundleError(
                    f"projection {pr.name!r}: one_to_one needs equal sizes, got "
                    f"{pops[pr.source].size} and {pops[pr.target].size}"
                )
            if expected is not None and shape != expected:
                raise BundleError(
                    f"projection {pr.name!r}: {pr.connectivity} weights must have shape {expected}, "
                    f"array {pr.weights!r} has {shape}"
                )

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(f"no population {name!r}; have {[p.name for p in self.populations]}")

    def projection(self, name: str) -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise KeyError(f"no projection {name!r}; have {[p.name for p in self.projections]}")

    def describe(self) -> dict:
        """The JSON description stored as ``bundle.json``."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "engine": self.engine,
            "populations": [asdict(p) for p in self.populations],
            "projections": [asdict(p) for p in self.projections],
            "arrays": {k: {"shape": list(a.shape), "dtype": a.dtype.str} for k, a in self.arrays.items()},
            "device": self.device,
            "provenance": self.provenance,
            "extra": self.extra,
        }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(dataset: str | None = None, seed: int | None = None, **more) -> dict:
    """Where a bundle came from: dataset, seed, git commit of bioSNN, bioSNN version, UTC time, plus ``more``."""
    from . import __version__

    return {
        "dataset": dataset,
        "seed": seed,
        "git_commit": _git_commit(),
        "biosnn_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **more,
    }


def write(path: str | os.PathLike, bundle: Bundle) -> Path:
    """Write ``bundle`` to ``path`` atomically (a crash leaves the previous file or none)."""
    meta = json.dumps(bundle.describe(), indent=2, default=json_default).encode("utf-8")
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(_META, meta)
            for k, a in bundle.arrays.items():
                with zf.open(f"{k}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, a, allow_pickle=False)
    return Path(path)


# what read() accepts at most, decompressed, over all arrays of one bundle (the largest networks bioSNN trains,
# optimizer state included, take a few hundred MB); pass max_bytes or set BIOSNN_BUNDLE_MAX_BYTES for more
MAX_BYTES = 1 << 30


def _max_bytes(max_bytes: int | None) -> int:
    if max_bytes is not None:
        return int(max_bytes)
    env = os.environ.get("BIOSNN_BUNDLE_MAX_BYTES")
    return int(env) if env else MAX_BYTES


def _check_meta(meta, path: Path) -> dict:
    """The parsed ``bundle.json``, checked for the types :func:`read` relies on (format, version, sections)."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(
            f"{path}: format is {meta.get('format') if isinstance(meta, dict) else meta!r}, expected {FORMAT!r}"
        )
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise BundleError(
            f"{path}: bundle version {version!r} is not supported (this bioSNN reads 1..{VERSION}); upgrade bioSNN"
        )
    for key, kind in (
        ("arrays", dict),
        ("populations", list),
        ("projections", list),
        ("provenance", dict),
        ("extra", dict),
    ):
        if key in meta and not isinstance(meta[key], kind):
            what = "list" if kind is list else "object"
            raise BundleError(f"{path}: {key!r} of the description must be a JSON {what}")
    for name in ("populations", "projections"):
        if name not in meta:
            raise BundleError(f"{path}: malformed description (no {name!r})")
        for item in meta[name]:
            if not isinstance(item, dict):
                raise BundleError(f"{path}: every entry of {name!r} must be a JSON object, got {item!r}")
    if meta.get("device") is not None and not isinstance(meta["device"], dict):
        raise BundleError(f"{path}: 'device' must be a JSON object or null")
    for k, spec in meta.get("arrays", {}).items():
        shape = spec.get("shape") if isinstance(spec, dict) else None
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise BundleError(f"{path}: array {k!r} has no valid shape in the description ({spec!r})")
        try:
            dtype = np.dtype(spec.get("dtype"))
        except TypeError:
            raise BundleError(f"{path}: array {k!r} has no valid dtype in the description ({spec!r})") from None
        if dtype.hasobject:
            raise BundleError(f"{path}: array {k!r} is described as holding Python objects")
    return meta


def _open(path: str | os.PathLike) -> tuple[Path, zipfile.ZipFile, dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no bundle at {path}")
    zf = zipfile.ZipFile(path)
    try:
        if _META not in zf.namelist():
            raise BundleError(f"{path} is not a bioSNN bundle (no {_META})")
        info = zf.getinfo(_META)
        if info.file_size > 64 << 20:
            raise BundleError(f"{path}: its description ({_META}) declares {info.file_size} bytes; at most 64 MiB")
        meta = _check_meta(json.loads(zf.read(_META).decode("utf-8")), path)
    except BaseException:
        zf.close()
        raise
    return path, zf, meta


def _damaged(path, e: Exception) -> BundleError:
    return BundleError(f"{path} is damaged or not a bioSNN bundle ({type(e).__name__}: {e})")


_DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    KeyError,
    TypeError,
    UnicodeDecodeError,
    json.JSONDecodeError,
    ValueError,
    OSError,
    AttributeError,
    NotImplementedError,
    OverflowError,
)


def describe(path: str | os.PathLike) -> dict:
    """The description (``bundle.json``) of the bundle at ``path``, checked as :func:`read` checks it, without
    reading any array."""
    try:
        path, zf, meta = _open(path)
        zf.close()
    except (BundleError, FileNotFoundError):
        raise
    except _DAMAGE as e:
        raise _damaged(path, e) from e
    _structure(meta, path)  # populations and projections as read() would build them
    return meta


def _structure(meta: dict, path: Path) -> tuple[tuple[Population, ...], tuple[Projection, ...]]:
    """The description's populations and projections, checked (sizes, parameters, ends that exist)."""
    try:
        pops = tuple(Population(**p) for p in meta["populations"])
        projs = tuple(Projection(**p) for p in meta["projections"])
    except BundleError as e:
        raise BundleError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BundleError(f"{path}: malformed description ({type(e).__name__}: {e})") from None
    names = {p.name for p in pops}
    for pr in projs:
        for end in (pr.source, pr.target):
            if end not in names:
                raise BundleError(f"{path}: projection {pr.name!r} refers to unknown population {end!r}")
    return pops, projs


def _read_member(zf: zipfile.ZipFile, member: str, spec: dict, path: Path) -> np.ndarray:
    """One ``.npy`` member, streamed: its header is checked against the description before any memory for the
    data is taken, so a file cannot make the reader allocate more than it declared and was allowed."""
    shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            h_shape, fortran, h_dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            h_shape, fortran, h_dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise BundleError(f"{path}: array member {member!r} has npy format {version}, not 1.0 or 2.0")
        if tuple(h_shape) != shape or h_dtype.str != dtype.str:
            raise BundleError(
                f"{path}: array {member[:-4]!r} is {h_dtype.str}{list(h_shape)}, described as {dtype.str}{list(shape)}"
            )
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = f.readinto(view[got : got + (1 << 24)])
            if not k:
                raise BundleError(f"{path}: array {member[:-4]!r} is truncated ({got} of {n} bytes)")
            got += k
        if f.read(1):
            raise BundleError(f"{path}: array {member[:-4]!r} holds more data than its shape")
    a = np.frombuffer(buf, dtype=dtype)
    return a.reshape(shape, order="F" if fortran else "C")


# writers known to have stored every dense projection (source, target) in version 1: bioSNN's Brian2 engine
_V1_SOURCE_TARGET_WRITERS = {("brian2", "diehl_cook"), ("brian2", "multimodal_stdp")}


def _upgrade_from_1(meta: dict, arrays: dict, path: Path) -> None:
    """Version 1 stored dense weights ``(source, target)``: transpose them, and the arrays of the same prefix and
    shape that go with them (pruning masks), into version 2's ``(target, source)``.

    Only where the layout is certain: a non-square array whose shape is ``(source, target)``, or a square one in
    a bundle its description says bioSNN's Brian2 engine wrote (which used that layout throughout). A square
    array of any other writer could be either layout, and a ``(target, source)`` shape contradicts version 1:
    both are refused, naming the array."""
    sizes = {p.get("name"): p.get("size") for p in meta["populations"] if isinstance(p, dict)}
    writer_known = (meta.get("engine"), meta.get("name")) in _V1_SOURCE_TARGET_WRITERS
    for pr in meta["projections"]:
        if not isinstance(pr, dict) or pr.get("connectivity", "dense") != "dense" or pr.get("weights") not in arrays:
            continue
        key = pr["weights"]
        shape = arrays[key].shape
        src, tgt = sizes.get(pr.get("source")), sizes.get(pr.get("target"))
        if len(shape) != 2:
            continue  # the Bundle check names the wrong shape
        if shape == (tgt, src) and src != tgt:
            raise BundleError(
                f"{path}: version-1 bundle, but dense array {key!r} has the (target, source) shape "
                f"{shape} of version 2; its layout is uncertain, so it is not converted"
            )
        if shape[0] == shape[1] and not writer_known:
            raise BundleError(
                f"{path}: version-1 bundle with a square dense array {key!r} {shape} from a writer "
                f"that does not say its layout (engine {meta.get('engine')!r}, name "
                f"{meta.get('name')!r}): (source, target) and (target, source) look the same, so it is "
                "not converted; write it again as version 2 with rows = target neurons"
            )
        prefix = key.rsplit(".", 1)[0] + "." if "." in key else None
        for k in [k for k in arrays if k == key or (prefix and k.startswith(prefix) and arrays[k].shape == shape)]:
            if arrays[k].ndim == 2:
                arrays[k] = np.ascontiguousarray(arrays[k].T)


def read(path: str | os.PathLike, max_bytes: int | None = None) -> Bundle:
    """Read and validate a bundle; never unpickles.

    ``max_bytes`` caps the decompressed size of all arrays together (default :data:`MAX_BYTES`, or
    ``$BIOSNN_BUNDLE_MAX_BYTES``), checked on the description before anything large is read.

    Raises
    ------
    BundleError
        Not a bundle, truncated or damaged, a newer format version (older ones are converted to this one),
        arrays missing, larger than allowed or of other shape/dtype than described, or an inconsistent
        description.
    FileNotFoundError
        ``path`` does not exist.
    """
    limit = _max_bytes(max_bytes)
    try:
        path, zf, meta = _open(path)
        with zf:
            names = set(zf.namelist())
            specs = meta.get("arrays", {})
            total = sum(
                int(np.prod(sp["shape"], dtype=np.int64)) * np.dtype(sp["dtype"]).itemsize for sp in specs.values()
            )
            if total > limit:
                raise BundleError(
                    f"{path}: its arrays declare {total} bytes, more than the {limit} allowed "
                    "(read(..., max_bytes=N) or BIOSNN_BUNDLE_MAX_BYTES=N to accept it)"
                )
            arrays = {}
            for k, spec in specs.items():
                member = f"{k}.npy"
                if member not in names:
                    raise BundleError(f"{path}: array {k!r} is described but missing")
                arrays[k] = _read_member(zf, member, spec, path)
    except (BundleError, FileNotFoundError):
        raise
    except _DAMAGE as e:
        raise _damaged(path, e) from e
    pops, projs = _structure(meta, path)
    if meta["version"] == 1:
        _upgrade_from_1(meta, arrays, path)
    try:
        return Bundle(
            populations=pops,
            projections=projs,
            arrays=arrays,
            engine=meta.get("engine", ""),
            name=meta.get("name", ""),
            device=meta.get("device"),
            provenance=meta.get("provenance", {}),
            extra=meta.get("extra", {}),
        )
    except BundleError as e:
        raise BundleError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BundleError(f"{path}: malformed description ({type(e).__name__}: {e})") from e

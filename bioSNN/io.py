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
import io as _io
import json
import os
import subprocess
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ._atomic import atomic_path, json_default

__all__ = ["FORMAT", "VERSION", "BundleError", "Population", "Projection", "Bundle", "write", "read", "provenance"]

FORMAT = "biosnn-bundle"
VERSION = 1
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
        if int(self.size) != self.size or self.size < 1:
            raise BundleError(f"population {self.name!r}: size must be a positive integer, got {self.size!r}")
        object.__setattr__(self, "params", _check_params(f"population {self.name!r}", self.params))


@dataclass(frozen=True)
class Projection:
    """Synapses from ``source`` to ``target``; ``weights`` names the array holding them.

    ``connectivity``: ``"dense"`` (weights ``(source.size, target.size)``), ``"one_to_one"`` (``(size,)``) or any
    other string (``"conv2d"`` ...) whose array shape is then not checked against the population sizes.
    """

    name: str
    source: str
    target: str
    weights: str
    connectivity: str = "dense"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
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
            expected = {"dense": (pops[pr.source].size, pops[pr.target].size),
                        "one_to_one": (pops[pr.source].size,)}.get(pr.connectivity)
            if pr.connectivity == "one_to_one" and pops[pr.source].size != pops[pr.target].size:
                raise BundleError(f"projection {pr.name!r}: one_to_one needs equal sizes, got "
                                  f"{pops[pr.source].size} and {pops[pr.target].size}")
            if expected is not None and shape != expected:
                raise BundleError(f"projection {pr.name!r}: {pr.connectivity} weights must have shape {expected}, "
                                  f"array {pr.weights!r} has {shape}")

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
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(dataset: str | None = None, seed: int | None = None, **more) -> dict:
    """Where a bundle came from: dataset, seed, git commit of bioSNN, bioSNN version, UTC time, plus ``more``."""
    from . import __version__

    return {"dataset": dataset, "seed": seed, "git_commit": _git_commit(), "biosnn_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **more}


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


def read(path: str | os.PathLike) -> Bundle:
    """Read and validate a bundle; never unpickles.

    Raises
    ------
    BundleError
        Not a bundle, truncated or damaged, a newer format version, arrays missing or of other shape/dtype
        than described, or an inconsistent description.
    FileNotFoundError
        ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no bundle at {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if _META not in names:
                raise BundleError(f"{path} is not a bioSNN bundle (no {_META})")
            meta = json.loads(zf.read(_META).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise BundleError(f"{path}: format is {meta.get('format') if isinstance(meta, dict) else meta!r}, "
                                  f"expected {FORMAT!r}")
            version = meta.get("version")
            if not isinstance(version, int) or not 1 <= version <= VERSION:
                raise BundleError(f"{path}: bundle version {version!r} is not supported (this bioSNN reads 1..{VERSION}); "
                                  "upgrade bioSNN")
            arrays = {}
            for k, spec in meta.get("arrays", {}).items():
                member = f"{k}.npy"
                if member not in names:
                    raise BundleError(f"{path}: array {k!r} is described but missing")
                a = np.lib.format.read_array(_io.BytesIO(zf.read(member)), allow_pickle=False)
                if list(a.shape) != list(spec["shape"]) or a.dtype.str != spec["dtype"]:
                    raise BundleError(f"{path}: array {k!r} is {a.dtype.str}{list(a.shape)}, "
                                      f"described as {spec['dtype']}{spec['shape']}")
                arrays[k] = a
    except BundleError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, TypeError, UnicodeDecodeError,
            json.JSONDecodeError, ValueError, OSError) as e:
        raise BundleError(f"{path} is damaged or not a bioSNN bundle ({type(e).__name__}: {e})") from e
    try:
        return Bundle(
            populations=tuple(Population(**p) for p in meta["populations"]),
            projections=tuple(Projection(**p) for p in meta["projections"]),
            arrays=arrays,
            engine=meta.get("engine", ""),
            name=meta.get("name", ""),
            device=meta.get("device"),
            provenance=meta.get("provenance", {}),
            extra=meta.get("extra", {}),
        )
    except (KeyError, TypeError) as e:
        raise BundleError(f"{path}: malformed description ({type(e).__name__}: {e})") from e

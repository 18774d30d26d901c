"""The on-disk formats of ``../shared/data``: ``.npz`` (no object arrays) and gzip JSON lines.

Reading never unpickles. Every read turns damage (truncation, bad zip or gzip stream, missing keys) into a
:class:`~bioSNN.data.fetch.DatasetCorruptError` naming the file. A *content digest* (sha256 over the arrays
or records, independent of how the file was compressed) lets a file converted on another machine be checked
against the published data.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .files import DatasetCorruptError

__all__ = ["read_npz", "write_npz", "read_jsonl_gz", "write_jsonl_gz", "array_digest", "records_digest"]


def read_npz(path: str | os.PathLike, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file into memory (``allow_pickle=False``).

    Raises
    ------
    DatasetCorruptError
        The file is not a readable npz, a member is truncated, holds objects, or a key in ``keys`` is missing.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = sorted(set(keys or ()) - set(z.files))
            if missing:
                raise DatasetCorruptError(f"{path} lacks the arrays {missing}; it holds {sorted(z.files)}")
            return {k: z[k] for k in z.files}
    except DatasetCorruptError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError) as e:
        raise DatasetCorruptError(f"{path} is damaged or not an npz file ({type(e).__name__}: {e})") from e


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write arrays to a compressed ``.npz`` atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return Path(path)


def read_jsonl_gz(path: str | os.PathLike) -> list[dict]:
    """Read a gzip JSON-lines file.

    Raises
    ------
    DatasetCorruptError
        The gzip stream is truncated or damaged, or a line is not JSON.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetCorruptError(f"{path} is damaged or not gzip JSON lines ({type(e).__name__}: {e})") from e


def write_jsonl_gz(path: str | os.PathLike, records: Iterable[Mapping]) -> Path:
    """Write records as gzip JSON lines atomically."""
    with atomic_path(path) as tmp:
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return Path(path)


def array_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over named arrays: key, dtype, shape and little-endian bytes, keys sorted.

    Strings are hashed as NUL-separated UTF-8, so the fixed width numpy picks for a string array does not
    change the digest.
    """
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.asarray(arrays[key])
        if a.dtype.kind in "US":
            dtype, payload = "str", "\0".join(map(str, a.ravel().tolist())).encode("utf-8")
        else:
            a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
            dtype, payload = a.dtype.str, memoryview(a).cast("B")
        h.update(f"{key}|{dtype}|{a.shape}|".encode())
        h.update(payload)
    return h.hexdigest()


def records_digest(records: Iterable[Mapping]) -> str:
    """sha256 over records in order, each as canonical JSON (sorted keys, UTF-8)."""
    h = hashlib.sha256()
    for r in records:
        h.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()

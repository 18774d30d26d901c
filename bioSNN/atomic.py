"""Atomic file writes: write to a temporary file beside the target, then ``os.replace``.

A crash or kill in the middle of a write leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path``.

    ``suffix`` is appended to the temporary name (e.g. ``".npz"``, since ``numpy.savez`` adds that
    extension to names lacking it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _fault_point(path, "before")
        os.replace(tmp, path)
        _fault_point(path, "after")
    finally:
        tmp.unlink(missing_ok=True)


# Fault injection for the kill-and-resume tests: BIOSNN_FAULT_KILL="PATTERN:N:WHEN[:WHO]" SIGKILLs at the N-th
# atomic write (in this process) of a file whose name matches the glob PATTERN, WHEN "before" (the new file is
# written but not yet in place: a kill during a checkpoint write) or "after" it replaced the old one (a kill
# between chunks); WHO "self" (default) or "parent" (the run's main process, seen from a worker). Unset: no-op.
_FAULT_ENV = "BIOSNN_FAULT_KILL"
_fault_count = [0]


def _fault_point(path: Path, when: str) -> None:
    spec = os.environ.get(_FAULT_ENV)
    if not spec:
        return
    import fnmatch
    import signal

    pattern, n, at, *who = spec.split(":")
    if not fnmatch.fnmatch(path.name, pattern):
        return
    if when == "before":  # one write, counted once
        _fault_count[0] += 1
    if at == when and _fault_count[0] == int(n):
        os.kill(os.getppid() if who == ["parent"] else os.getpid(), signal.SIGKILL)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=json_default) + "\n", encoding="utf-8")
    return Path(path)


def json_default(o):
    """``json.dumps`` fallback for numpy scalars and arrays and paths."""
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")

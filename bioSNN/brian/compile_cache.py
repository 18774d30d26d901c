"""Compile a Brian2 ``cpp_standalone`` project once per machine: binaries cached by what was compiled.

Brian2 generates a project (C++ sources, headers, a makefile) into a run's folder and compiles it there, so every
run, variant, ``biosnn inspect`` and test compiled the same code again (about a minute each on an idle 2-core
machine), and its default ``make -j`` started one compiler per source file at once.

:func:`build_project` is used instead of Brian2's compile step. The project's key is the SHA-256 of every source,
header and the makefile (relative names and contents; the initial values in ``static_arrays/`` are data the
binary reads when it runs, so they are not part of it), the compiler's version and ``$CXX``/``$CXXFLAGS``. A
binary built for that key before is copied into the project; otherwise ``make`` runs with at most ``jobs``
compilers (default: the CPUs this process may use, or ``$BIOSNN_COMPILE_JOBS``) and the binary is stored.

The cache lives in ``$XDG_CACHE_HOME/biosnn/standalone`` (``~/.cache`` by default), one folder per key holding
``main`` and its SHA-256. Entries are written to a temporary name and renamed, so concurrent runs never see half a
binary; an entry whose binary does not match its recorded digest is rebuilt. ``BIOSNN_COMPILE_CACHE=0`` turns the
cache off (every project compiles).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["build_project", "BuildResult", "project_key", "cache_dir", "compile_jobs"]

log = logging.getLogger(__name__)

_SOURCES = (".cpp", ".h", ".hpp", ".c", ".cu", ".cuh")
_SKIP_DIRS = {"static_arrays", "results"}


@dataclass(frozen=True)
class BuildResult:
    """How a project got its binary: ``cached`` (copied from the cache) or compiled in ``seconds``."""

    key: str
    cached: bool
    seconds: float


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "biosnn" / "standalone"


def compile_jobs() -> int:
    """Compilers ``make`` may run at once: ``$BIOSNN_COMPILE_JOBS``, else the CPUs this process may use."""
    env = os.environ.get("BIOSNN_COMPILE_JOBS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _compiler_identity() -> str:
    cxx = os.environ.get("CXX", "g++")
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = "unknown"
    return f"{cxx}\n{version}\n{os.environ.get('CXXFLAGS', '')}\n{os.environ.get('LDFLAGS', '')}"


def project_key(directory: str | os.PathLike) -> str:
    """SHA-256 of what compiling the project in ``directory`` depends on (see the module)."""
    directory = Path(directory)
    h = hashlib.sha256(_compiler_identity().encode())
    files = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in names:
            if name.endswith(_SOURCES) or name in ("makefile", "Makefile", "win_makefile"):
                files.append(Path(root) / name)
    for f in sorted(files):
        rel = f.relative_to(directory).as_posix()
        h.update(len(rel).to_bytes(4, "little") + rel.encode())
        data = _canonical(f.read_bytes())
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


# Brian2 writes one pair of lines per clock that sets its time to the start (``_array_<clock>_timestep[0] = 0;``,
# ``_array_<clock>_t[0] = 0.0;``), iterating over a Python set of clocks: their order follows object ids and
# changes from process to process, while the code means the same (each line sets its own scalar). For the key
# such a block is taken in sorted order, so the same network finds its binary again.
_CLOCK_LINE = re.compile(rb"^\s*_array_\w+_clock_(?:timestep|t)\[0\] = [^;]+;\s*$")


def _canonical(data: bytes) -> bytes:
    lines = data.split(b"\n")
    out, block = [], []
    for line in lines + [b""]:
        if _CLOCK_LINE.match(line):
            block.append(line)
            continue
        out.extend(sorted(block))
        block = []
        out.append(line)
    return b"\n".join(out[:-1])


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _cached_binary(entry: Path) -> Path | None:
    binary, digest = entry / "main", entry / "main.sha256"
    if not (binary.is_file() and digest.is_file()):
        return None
    if _digest(binary) != digest.read_text().strip():
        log.warning("compile cache entry %s is damaged (its binary does not match its digest); rebuilding", entry)
        return None
    return binary


def build_project(directory: str | os.PathLike, jobs: int | None = None, timeout: float = 3600) -> BuildResult:
    """Give the generated ``cpp_standalone`` project in ``directory`` its ``main`` binary: from the cache when the
    same code was compiled before, else by ``make -j<jobs>`` (and then cached). Logs which of the two happened."""
    directory = Path(directory)
    jobs = jobs or compile_jobs()
    t0 = time.perf_counter()
    key = project_key(directory)
    use_cache = os.environ.get("BIOSNN_COMPILE_CACHE", "1") != "0"
    entry = cache_dir() / key
    binary = _cached_binary(entry) if use_cache else None
    if binary is not None:
        _copy_atomic(binary, directory / "main")
        log.info(
            "Brian2 project %s: binary reused from the compile cache (%.1f s)", directory.name, time.perf_counter() - t0
        )
        return BuildResult(key, True, time.perf_counter() - t0)
    log.info(
        "Brian2 project %s: compiling with %d job(s) (30-60 s on 2 idle cores; cached for the next run) ...",
        directory.name,
        jobs,
    )
    out = subprocess.run(["make", f"-j{jobs}"], cwd=directory, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(
            f"compiling the Brian2 project in {directory} failed (make exit {out.returncode}):\n"
            f"{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
        )
    seconds = time.perf_counter() - t0
    if use_cache:
        try:
            _copy_atomic(directory / "main", entry / "main")
            digest = entry / "main.sha256"
            fd, tmp = tempfile.mkstemp(prefix=".main.sha256.", suffix=".tmp", dir=entry)
            with os.fdopen(fd, "w") as f:
                f.write(_digest(entry / "main") + "\n")
            os.replace(tmp, digest)
        except OSError as e:  # a full or read-only cache must not fail the run that compiled fine
            log.warning("could not store the compiled binary in %s (%s)", entry, e)
    log.info("Brian2 project %s: compiled in %.0f s", directory.name, seconds)
    return BuildResult(key, False, seconds)


def build_device(directory: str | os.PathLike, compile: bool = True) -> BuildResult | None:
    """Brian2's ``device.build`` of the active standalone device into ``directory``, with the compile step of a
    ``cpp_standalone`` project done by :func:`build_project` (other devices — brian2cuda — compile as Brian2 does).
    Returns how the binary came (``None`` when Brian2 compiled or nothing was compiled)."""
    import brian2 as b2

    plain_cpp = type(b2.get_device()).__name__ == "CPPStandaloneDevice"
    b2.device.build(directory=str(directory), compile=compile and not plain_cpp, run=False, with_output=False)
    if compile and plain_cpp:
        return build_project(directory)
    return None

"""Run folders: ``runs/NAME-<timestamp>/`` with ``config.json``, ``metrics.json``, figures, checkpoints.

Everything is written atomically, so a run killed at any point can be resumed from its folder. While a process
runs a folder it holds the folder's :class:`RunLock`; its worker processes (:func:`map_in_workers`) die with it;
:class:`RunClock` keeps the wall time of every segment (start and resumes) in ``run.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from pathlib import Path

from .atomic import write_json
from .config import SCHEMA_VERSION

__all__ = [
    "new_run_dir",
    "read_finished",
    "is_run_config",
    "read_run_config",
    "main_bundle",
    "check_same_config",
    "write_merged",
    "write_json",
    "RunLock",
    "RunLockedError",
    "RunClock",
    "Interrupted",
    "stop_on_sigterm",
    "die_with_parent",
    "map_in_workers",
    "WorkerDiedError",
    "remove_stale_temporaries",
]


def new_run_dir(root: str | Path, name: str) -> Path:
    """Create and return a fresh ``root/name-YYYYmmdd-HHMMSS`` folder (suffixed ``-2``, ``-3`` ... if taken)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        d = root / (f"{name}-{stamp}" if i == 1 else f"{name}-{stamp}-{i}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run folder under {root}")


def read_finished(run_dir: str | Path, experiment: str) -> tuple[dict, dict]:
    """``(config, metrics)`` of a finished run of ``experiment`` (its resolved ``config.json`` values and its
    ``metrics.json``); a clear error when the folder is not one."""
    run_dir = Path(run_dir)
    for name in ("metrics.json", "config.json"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir}: no {name} (not a finished {experiment} run)")
    saved = json.loads((run_dir / "config.json").read_text())
    if saved.get("experiment") != experiment:
        raise ValueError(f"{run_dir}: a {saved.get('experiment')!r} run, not a {experiment} run")
    return saved["config"], json.loads((run_dir / "metrics.json").read_text())


def is_run_config(d) -> bool:
    """Whether ``d`` (a parsed ``config.json``) is a run folder's config: an experiment name and its config."""
    return isinstance(d, dict) and isinstance(d.get("config"), dict) and isinstance(d.get("experiment"), str)


def read_run_config(run_dir: str | Path, name: str | None, known: tuple[str, ...] = ()) -> dict:
    """The ``config.json`` of run folder ``run_dir``, checked to be a run of experiment ``name`` (None: any of
    ``known``, or any at all when ``known`` is empty); every defect a :class:`~bioSNN.config.ConfigError`."""
    from .config import ConfigError

    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no config.json there (not a run folder)")
    if path.stat().st_size > 16 << 20:
        raise ConfigError(f"{path}: {path.stat().st_size} bytes; a run config is at most 16 MiB")
    try:
        saved = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ConfigError(f"{path} is not valid JSON ({' '.join(str(e).split())})") from None
    if not is_run_config(saved):
        raise ConfigError(f"{path} is not a run config (needs 'experiment' and 'config')")
    if known and saved["experiment"] not in known:
        raise ConfigError(f"{path}: unknown experiment {saved['experiment']!r}")
    if name is not None and saved["experiment"] != name:
        raise ConfigError(
            f"{run_dir} is a {saved['experiment']!r} run; resume it with `biosnn run "
            f"{saved['experiment']} --resume {run_dir}`"
        )
    return saved


def main_bundle(run: str | Path) -> Path:
    """The bundle of a finished run folder's main network: ``metrics.json``'s ``main_bundle``, a file name inside
    the folder. Runs made before that key existed are read from their ``main`` label ("DIET T=5" → diet_T5.npz)
    or the demo's ``model.npz``."""
    from .config import ConfigError

    run = Path(run)
    metrics = run / "metrics.json"
    if not metrics.is_file():
        raise ConfigError(f"{run}: no metrics.json; give a finished run folder or a bundle")
    try:
        m = json.loads(metrics.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ConfigError(f"{metrics} is not valid JSON ({' '.join(str(e).split())})") from None
    if not isinstance(m, dict):
        raise ConfigError(f"{metrics}: not a JSON object")
    name = m.get("main_bundle")
    if name is not None:
        if not isinstance(name, str) or Path(name).name != name or name.startswith("."):
            raise ConfigError(f"{metrics}: main_bundle must name a file in the run folder, got {name!r}")
        candidates = [run / name]
    else:  # older runs: the file name follows the display label
        main = str(m.get("main", ""))
        kind, _, t = main.partition(" T=")
        candidates = [run / f"{kind.lower()}_T{t}.npz"] if t else []
        candidates += [run / f"{main.replace(' ', '_').replace('=', '')}.npz", run / "model.npz"]
    for c in candidates:
        if c.is_file():
            return c
    have = sorted(p.name for p in run.glob("*.npz"))
    raise ConfigError(
        f"{run}: no bundle of its main network {m.get('main')!r} (bundles there: {have}); give one of them"
    )


def check_same_config(base: dict, cfg: dict, allowed, run: str | Path, first: str | Path) -> None:
    """For merging runs: a clear error naming the first key (sorted) whose value in ``cfg`` (of ``run``) differs
    from ``base`` (of ``first``), keys in ``allowed`` excepted."""
    for key in sorted(set(base) | set(cfg)):
        if key not in allowed and base.get(key) != cfg.get(key):
            raise ValueError(
                f"{run}: config key {key!r} differs ({cfg.get(key)!r} vs {base.get(key)!r} in "
                f"{first}); pass --ignore {key} if it does not matter for the variants taken"
            )


def write_merged(out: Path, experiment: str, metrics: dict, config: dict) -> None:
    """The two files a merge of run folders leaves in ``out``: ``metrics.json`` and a ``config.json`` marked
    ``merged`` whose ``config`` is the sources' shared one with what the merge joined (its command, from
    :func:`bioSNN.cli.reproduce_command`, trains everything merged in one run)."""
    write_json(out / "metrics.json", metrics)
    write_json(
        out / "config.json", {"schema": SCHEMA_VERSION, "experiment": experiment, "merged": True, "config": config}
    )


# ---------------------------------------------------------------------------------------------------------------
# One process per run folder, workers that die with it, and wall time summed over the segments of a resumed run

LOCK_FILE = ".lock"
RUN_LOG = "run.json"  # every start and resume of the run: command line, start time, seconds, how it ended


class RunLockedError(RuntimeError):
    """The run folder is held by another live process."""


class RunLock:
    """An exclusive lock on a run folder (``fcntl.flock`` on ``DIR/.lock``), held while a process runs it.

    The kernel releases the lock when the holder exits, however it exits (a SIGKILL included), so a stale lock
    never blocks a resume. The file records who holds it, for the message a second process gets.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            os.close(fd)
            try:
                h = json.loads(holder)
                who = f"process {h['pid']} (`{h['command']}`, since {h['since']})"
            except (ValueError, KeyError, TypeError):
                who = "another process"
            raise RunLockedError(
                f"{self.path.parent} is in use by {who}; wait for it to end or stop it first"
            ) from None
        info = {
            "pid": os.getpid(),
            "command": " ".join(sys.argv),
            "since": _dt.datetime.now().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class WorkerDiedError(RuntimeError):
    """A worker process of the run ended abruptly (killed, out of memory); the others were stopped."""


def map_in_workers(fn, jobs: list, workers: int) -> list:
    """``[fn(j) for j in jobs]`` in ``workers`` spawned processes that die with this one; a worker that dies
    stops the map with :class:`WorkerDiedError` instead of leaving it waiting for ever (as
    ``multiprocessing.Pool`` does)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        with ProcessPoolExecutor(
            min(workers, len(jobs)),
            mp_context=mp.get_context("spawn"),
            initializer=_worker_init,
            initargs=(os.getpid(),),
        ) as pool:
            try:
                return list(pool.map(fn, jobs))
            except KeyboardInterrupt:  # SIGTERM reaches this process only: stop the workers, don't wait on them
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.kill()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    except BrokenProcessPool:
        raise WorkerDiedError(
            "a worker process died (killed, or out of memory?); every variant keeps its last checkpoint"
        ) from None


def _worker_init(parent: int) -> None:
    """A worker of :func:`map_in_workers`: it dies with its parent, and bioSNN's messages (one line per phase,
    compile and training progress) reach the same console as the parent's."""
    import logging

    die_with_parent(parent)
    logger = logging.getLogger("bioSNN")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def die_with_parent(parent: int | None = None) -> None:
    """Make this (worker) process get SIGKILL when its parent dies (Linux ``PR_SET_PDEATHSIG``); ``parent``: the
    pid it was started by, so that a parent that died before the request took effect is noticed too.

    A pool initializer: without it, killing a run's main process leaves its workers training on and writing
    checkpoints that a resume started meanwhile would read half-updated. Elsewhere a no-op."""
    import ctypes
    import signal

    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent is not None and os.getppid() != parent:  # reparented: the parent is already gone
        os._exit(1)


def remove_stale_temporaries(run_dir: str | Path) -> int:
    """Delete the temporary files of atomic writes that a killed process left in ``run_dir`` (call it only while
    holding the folder's :class:`RunLock`: then no live writer owns them); returns how many."""
    n = 0
    for p in Path(run_dir).rglob(".*.tmp*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by a signal (SIGINT: Ctrl-C; SIGTERM: ``kill``, ``timeout``, a batch system);
    a :class:`KeyboardInterrupt`, so everything that cleans up after Ctrl-C cleans up after both."""

    def __init__(self, signum: int):
        import signal

        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name


def stop_on_sigterm() -> None:
    """Turn SIGTERM into :class:`Interrupted` in the main thread (Python's default ends the process at once,
    without ``finally`` blocks: the run's log would say ``running`` for ever)."""
    import signal

    def handler(signum, _frame):
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, handler)


class RunClock:
    """Wall time of a run over all its segments (the first start and every resume), kept in ``DIR/run.json``.

    Each segment records its command, start, seconds and how it ended: ``finished``, ``failed``,
    ``interrupted`` (with the ``signal``: SIGINT or SIGTERM) or ``killed`` (the process vanished without a
    word: SIGKILL, power loss). The current segment's seconds are rewritten every ``beat`` seconds by a daemon
    thread; a killed segment's length is settled at the next resume from its last sign of life — the later of
    that heartbeat and the newest file the run wrote — so it is short by less than ``beat`` seconds at most.
    :meth:`total` adds up every segment."""

    def __init__(self, run_dir: str | Path, command: list[str], beat: float = 10.0):
        import threading
        import time

        self.path = Path(run_dir) / RUN_LOG
        self._t0 = time.perf_counter()
        self._beat = beat
        log = json.loads(self.path.read_text()) if self.path.exists() else {"segments": []}
        for seg in log["segments"]:
            if seg["status"] == "running":  # the process that wrote it died without a word
                self._settle_killed(seg)
        self._log = log
        self._seg = {
            "command": command or sys.argv,
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "start_time": time.time(),
            "seconds": 0.0,
            "status": "running",
        }
        log["segments"].append(self._seg)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._write()
        self._thread = threading.Thread(target=self._run, daemon=True, name="biosnn-run-clock")
        self._thread.start()

    def _settle_killed(self, seg: dict) -> None:
        seg["status"] = "killed"
        start = seg.get("start_time")
        if start is None:  # a log of an older bioSNN: its last heartbeat is all there is
            return
        last = max(
            (p.stat().st_mtime for p in self.path.parent.rglob("*") if p.is_file() and p.name != LOCK_FILE),
            default=start,
        )
        seg["seconds"] = max(float(seg["seconds"]), last - start)
        seg["ended"] = _dt.datetime.fromtimestamp(start + seg["seconds"]).isoformat(timespec="seconds")

    def _write(self) -> None:
        import time

        with self._lock:
            self._seg["seconds"] = time.perf_counter() - self._t0
            write_json(self.path, self._log)

    def _run(self) -> None:
        while not self._stop.wait(self._beat):
            try:
                self._write()
            except OSError:  # a full disk must not kill the run from this thread; the next beat tries again
                pass

    def stop(self, status: str, signal_name: str | None = None) -> float:
        """End this segment as ``status`` (finished, failed, interrupted — by ``signal_name``), write the log;
        the run's total seconds."""
        self._stop.set()
        self._seg["status"] = status
        if signal_name:
            self._seg["signal"] = signal_name
        self._seg["ended"] = _dt.datetime.now().isoformat(timespec="seconds")
        self._write()
        return float(sum(s["seconds"] for s in self._log["segments"]))

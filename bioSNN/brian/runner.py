"""Running a built network chunk by chunk on a Brian2 backend, with explicit seeds.

A *chunk* of ``chunk`` slots is one simulation run. Learnable state lives in numpy between chunks and is set
before each run: on ``cpp_standalone``/``cuda_standalone`` through the binary's command line (Brian2
``run_args``), so the program is generated and compiled once and every chunk re-runs it with new weights,
thresholds, masks and item sequence (a 60,000-image epoch needs one build); on the runtime backends by
restoring the network's initial state and assigning the values.

Every chunk starts at t = 0 from the network's initial state with random numbers seeded from ``seed`` (the
caller derives it from the run's seed and the chunk's number), on every backend — so a run rebuilt from a
checkpoint and told how many chunks ran draws exactly the numbers the uninterrupted run would have drawn. The
seed reaches a ``cpp_standalone`` binary as a run argument (the controller's ``rng_seed``); on the runtime
backends Brian2's generator (numpy's global one) is seeded for the run and put back as it was afterwards.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from .backend import Backend
from .builder import BrianNetwork
from .compile_cache import build_device

__all__ = ["ChunkRunner"]


class ChunkRunner:
    """Runs the chunks of ``bn`` (built inside the block of backend ``be``) for ``duration_ms`` each."""

    def __init__(self, bn: BrianNetwork, be: Backend, duration_ms: float):
        import brian2 as b2

        self.bn, self.backend, self.duration_ms = bn, be, duration_ms
        self.build_seconds = 0.0
        self.build_result = None  # how the binary came: bioSNN.brian.compile_cache.BuildResult
        self._built = False
        if not be.standalone:
            bn.network.store("initial")  # restored before every chunk
            return
        # Brian2 writes each run argument array to static_arrays/init_<name>_<hash>.dat and reuses a file of that
        # name if it exists; a process killed while writing one leaves it short, and a resumed run with the same
        # state would read it. They are rewritten whenever missing, so a new network starts without them.
        for stale in (Path(be.directory) / "static_arrays").glob("init_*.dat"):
            stale.unlink()
        if sys.platform.startswith("linux"):
            # the binary dies with the process that runs it: a killed run leaves no simulation writing results
            # that a resumed run would read (prctl(PR_SET_PDEATHSIG))
            for h in ("<sys/prctl.h>", "<signal.h>", "<unistd.h>"):
                if h not in b2.device.headers:
                    b2.device.headers.append(h)
            b2.device.insert_code("main", "prctl(PR_SET_PDEATHSIG, SIGKILL);")
        if be.name == "cpp_standalone":
            # run arguments are applied here, after every initialisation, and the random generators are then
            # reseeded from the controller's rng_seed: successive runs of the one binary draw new noise
            b2.device.apply_run_args()
            seed = b2.device.get_array_name(bn.controller.variables["rng_seed"])
            threads = max(1, be.threads)
            b2.device.insert_code(
                "main",
                (
                    f"{{ const unsigned long _s = (unsigned long) brian::{seed}[0]; "
                    f"for (int _i = 0; _i < {threads}; _i++) brian::_random_generators[_i].seed(_s + _i); }}"
                ),
            )

    def segments(self, t_offset_ms: float) -> list[tuple[float, set]]:
        """The chunk starting ``t_offset_ms`` into the run cut at its monitors' window edges: ``(duration_ms,
        monitors active)`` per piece, edges on the time step. A monitor is switched on only inside its window, so
        nothing outside it is ever recorded."""
        import brian2 as b2

        dt = float(self.bn.clock.dt / b2.ms)
        D = self.duration_ms
        windows = {
            id(m): (spec.start_ms - t_offset_ms, spec.start_ms + spec.keep_ms - t_offset_ms)
            for spec, mons in self.bn.monitors.items()
            for m in mons
        }
        cuts = {0.0, D}
        for lo, hi in windows.values():
            cuts.update(round(c / dt) * dt for c in (lo, hi) if 0 < c < D)
        cuts = sorted(cuts)
        out = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            on = {i for i, (lo, hi) in windows.items() if lo < b - 1e-9 and hi > a + 1e-9}
            out.append((b - a, on))
        return out

    def _run_segments(self, t_offset_ms: float) -> None:
        import brian2 as b2

        mons = [m for ms_ in self.bn.monitors.values() for m in ms_]
        for duration, on in self.segments(t_offset_ms):
            for m in mons:
                m.active = id(m) in on
            self.bn.network.run(duration * b2.ms, namespace={})

    def build(self, compile: bool = True) -> None:
        """Generate (and compile) the standalone project; see :meth:`EnsembleNetwork.build`."""

        if not self.backend.standalone:
            raise RuntimeError(f"backend {self.backend.name!r} compiles at run time; nothing to build")
        if self._built:
            return
        # one binary for every chunk: its monitors record the part of a chunk the windows give the first one
        for spec in self.bn.monitors:
            if spec.start_ms > 0 and spec.start_ms + spec.keep_ms > self.duration_ms:
                raise ValueError(
                    f"monitor of {spec.population!r}: on a standalone backend a recording window must "
                    f"start at 0 or end within the first chunk ({self.duration_ms:g} ms); got "
                    f"start_ms={spec.start_ms:g}, keep_ms={spec.keep_ms:g}"
                )
        self._run_segments(0.0)
        tb = time.perf_counter()
        self.build_result = build_device(self.backend.directory, compile)
        self.build_seconds = time.perf_counter() - tb
        self._built = True

    def profiling_info(self) -> dict[str, float]:
        """Seconds per code object of the latest chunk, largest first (a backend built with ``profile=True``)."""
        if not (self.backend.standalone and self.backend.profile):
            raise RuntimeError("profiling needs a standalone backend with profile=True")
        fname = Path(self.backend.directory) / "results" / "profiling_info.txt"
        if not fname.exists():
            raise RuntimeError(f"no profiling info in {fname}: run a chunk first")
        rows = [line.split() for line in fname.read_text().splitlines() if line.strip()]
        return dict(sorted(((k, float(v)) for k, v in rows), key=lambda kv: -kv[1]))

    def run(self, args: dict, seed: int, t_offset_ms: float = 0.0) -> float:
        """One chunk with the initial values ``args`` (``VariableView``/``TimedArray`` → value) and random
        numbers seeded from ``seed``, ``t_offset_ms`` into the run (for the monitors' windows); the wall seconds
        of the simulation (build excluded)."""
        import brian2 as b2

        t0 = time.perf_counter()
        if self.backend.standalone:
            if not self._built:
                self.build()
                t0 = time.perf_counter()
            if self.backend.name == "cuda_standalone" and not self.backend.gpu:
                raise RuntimeError("this backend was generated for compilation only (gpu=False); it cannot run")
            b2.device.run(run_args={**args, self.bn.controller.rng_seed: float(seed)}, with_output=False)
            return time.perf_counter() - t0
        self.bn.network.restore("initial")
        saved = np.random.get_state()  # b2.seed seeds numpy's global generator: leave it as it was
        try:
            b2.seed(seed)
            for var, value in args.items():
                if isinstance(var, b2.TimedArray):
                    var.values[:] = value
                else:
                    var[:] = value
            self._run_segments(t_offset_ms)
        finally:
            np.random.set_state(saved)
        return time.perf_counter() - t0

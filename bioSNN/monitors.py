"""Opt-in, subsampled recording: which variables of which neurons, how often.

A :class:`MonitorSpec` names a population and what to record; an engine turns it into its own monitors
(Brian2 ``StateMonitor``/``SpikeMonitor``) and hands back plain numpy arrays in a :class:`Recording`.
Nothing is recorded unless asked for, and state is recorded only for the listed neurons at the given
interval, so long training runs never fill memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["MonitorSpec", "Recording"]


@dataclass(frozen=True)
class MonitorSpec:
    """What to record of one population.

    Attributes
    ----------
    population
        Population name (``"input"``, ``"exc"``, ``"inh"`` in the Diehl & Cook network).
    variables
        State variables to record (e.g. ``("v", "theta", "ge")``); empty for spikes only.
    indices
        Neurons whose state is recorded.
    dt_ms
        Recording interval in ms (a multiple of the simulation step).
    spikes
        Also record all spikes of the population.
    keep_ms
        Length of the recording window (ms of simulated time from ``start_ms``).
    start_ms
        Start of the recording window. The engines record only inside the window, so memory stays bounded
        however long the run (Brian2 switches its monitors on and off around the window; a standalone binary
        records the same part of every chunk, so there a window must start at 0 or end within the first chunk).
    """

    population: str
    variables: tuple[str, ...] = ()
    indices: tuple[int, ...] = (0,)
    dt_ms: float = 1.0
    spikes: bool = False
    keep_ms: float = 5000.0
    start_ms: float = 0.0

    def __post_init__(self):
        if self.dt_ms <= 0:
            raise ValueError(f"dt_ms must be > 0, got {self.dt_ms}")
        if self.keep_ms <= 0 or self.start_ms < 0:
            raise ValueError(
                f"the recording window needs keep_ms > 0 and start_ms >= 0, got {self.keep_ms}, {self.start_ms}"
            )

    def records_at(self, t_ms: float) -> bool:
        """Whether simulated time ``t_ms`` lies in the recording window (what an engine records while running)."""
        return self.start_ms - 1e-9 <= t_ms < self.start_ms + self.keep_ms - 1e-9
        if not self.variables and not self.spikes:
            raise ValueError(f"monitor of {self.population!r} records nothing: give variables or spikes=True")


@dataclass
class Recording:
    """Recorded data of one :class:`MonitorSpec` as numpy arrays (times in seconds, SI units for state).

    ``state[var]`` has shape ``(len(indices), n_samples)``; ``spike_i``/``spike_t`` list all spikes.
    Successive simulation chunks are appended, with times continuing.
    """

    spec: MonitorSpec
    t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    state: dict = field(default_factory=dict)
    spike_i: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    spike_t: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def from_samples(cls, spec: MonitorSpec, t: list, samples: dict, spike_i: list, spike_t: list) -> Recording:
        """The recording of an engine that collected, step by step, sample times ``t`` (s), per variable a list of
        ``(len(indices),)`` arrays, and spikes (indices, times in s)."""
        rec = cls(spec)
        state = {v: np.stack(x, 1) if x else np.zeros((len(spec.indices), 0)) for v, x in samples.items()}
        rec.append(np.asarray(t), state, np.asarray(spike_i, np.int64), np.asarray(spike_t), 0.0)
        return rec

    @property
    def window(self) -> tuple[float, float]:
        """The recording window in seconds, ``[start, end)``."""
        return self.spec.start_ms * 1e-3, (self.spec.start_ms + self.spec.keep_ms) * 1e-3

    def append(self, t, state: dict, spike_i, spike_t, t_offset: float) -> None:
        """Add one chunk's data (times relative to the chunk start, which is ``t_offset`` s into the run)."""
        lo, hi = self.window
        t = np.asarray(t) + t_offset
        keep = (t >= lo) & (t < hi)
        self.t = np.concatenate([self.t, t[keep]])
        for k, v in state.items():
            v = np.asarray(v)[:, keep]
            self.state[k] = v if k not in self.state else np.concatenate([self.state[k], v], axis=1)
        st = np.asarray(spike_t) + t_offset
        keep = (st >= lo) & (st < hi)
        self.spike_i = np.concatenate([self.spike_i, np.asarray(spike_i, np.int64)[keep]])
        self.spike_t = np.concatenate([self.spike_t, st[keep]])

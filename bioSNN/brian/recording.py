"""What a chunk of a Diehl & Cook network produced, read from its Brian2 monitors as numpy arrays.

:class:`ChunkReader` turns the monitors of one chunk (every chunk starts at t = 0 with empty monitors) into
per-presentation spike counts of each ensemble, the repeats of each item and the index of the item each slot
showed, and appends the user's recordings (:class:`~bioSNN.monitors.MonitorSpec`) to their
:class:`~bioSNN.monitors.Recording` on the run's continuous time axis.
"""

from __future__ import annotations

import numpy as np

from ..monitors import Recording
from .builder import BrianNetwork
from .ensemble import DiehlCookConfig

__all__ = ["ChunkReader"]


class ChunkReader:
    """Reads the chunks of ``bn`` (ensembles ``configs``; timing and repeat rule from ``cfg``)."""

    def __init__(self, bn: BrianNetwork, configs: dict[str, DiehlCookConfig], cfg: DiehlCookConfig):
        self.bn, self.configs, self.cfg = bn, configs, cfg
        self.recordings = {spec: Recording(spec) for spec in bn.monitors}
        self.t_offset = 0.0  # seconds simulated before the current chunk (for recordings)

    def counts(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Per accepted presentation of the chunk just run: spike counts of each ensemble's excitatory neurons,
        repeats, and the index of the item in the chunk's sequence; the user's recordings are appended too."""
        cfg, bn = self.cfg, self.bn
        k = np.asarray(bn.slots.k[0])
        reps = np.asarray(bn.slots.repeats[0])
        per_slot = {}
        for n, c in self.configs.items():
            mon = bn.exc_spikes[n]
            sp_i, sp_t = np.asarray(mon.i[:]), np.asarray(mon.t[:])
            slot = np.floor(sp_t / (cfg.t_slot * 1e-3) + 1e-6).astype(np.int64)
            keep = (slot >= 0) & (slot < len(k))
            counts = np.bincount(slot[keep] * c.n_exc + sp_i[keep], minlength=len(k) * c.n_exc)
            per_slot[n] = counts.reshape(len(k), c.n_exc)
        last_ok = all(per_slot[n][-1].sum() >= cfg.min_spikes for n in self.configs) or reps[-1] >= cfg.max_repeats
        accepted = np.append(k[1:] > k[:-1], last_ok)
        self._collect_recordings()
        self.t_offset += cfg.chunk * cfg.t_slot * 1e-3
        return {n: c[accepted] for n, c in per_slot.items()}, reps[accepted], k[accepted]

    def _collect_recordings(self) -> None:
        from brian2 import StateMonitor

        for spec, mons in self.bn.monitors.items():
            state, st, si, stt = {}, np.zeros(0), np.zeros(0, np.int64), np.zeros(0)
            for m in mons:
                if isinstance(m, StateMonitor):
                    st = np.asarray(m.t[:])
                    state = {v: np.asarray(getattr(m, v)) for v in spec.variables}
                else:
                    si, stt = np.asarray(m.i[:]), np.asarray(m.t[:])
            self.recordings[spec].append(st, state, si, stt, self.t_offset)

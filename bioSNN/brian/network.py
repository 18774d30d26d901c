"""The Diehl & Cook (2015) network in Brian2, driven as whole simulations of many item presentations.

Structure: ``input`` (Poisson, one neuron per pixel) → ``exc`` (conductance LIF, adaptive θ) one-to-one →
``inh`` → all-but-self back onto ``exc`` (lateral inhibition, soft winner-take-all). :class:`EnsembleNetwork`
runs several such ensembles on one time line — e.g. an image and an audio ensemble shown paired stimuli — and
can join their excitatory populations by plastic cross-modal synapses (:class:`CrossConfig`, thesis part 2);
:class:`DiehlCookNetwork` is the single-ensemble case.

The network is assembled from parts with one role each:

- :mod:`bioSNN.brian.ensemble` — the description (:class:`DiehlCookConfig`, :class:`CrossConfig`);
- :mod:`bioSNN.brian.builder` — the Brian2 objects, including the schedule of presentations and the
  operations between them (repeat rule, normalisation, resets) as scheduled operations inside the simulation;
- :mod:`bioSNN.brian.runner` — running chunk after chunk on the chosen backend, with explicit seeds;
- :mod:`bioSNN.brian.recording` — per-presentation spike counts and the user's recordings, as numpy arrays.

This class holds the learnable state in numpy, pushes it to the simulator before every chunk and reads it back
after; between chunks Python may prune, quantize and checkpoint (:mod:`bioSNN.brian.training`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..monitors import MonitorSpec
from .backend import Backend
from .builder import build as build_objects
from .builder import prefix as _prefix
from .ensemble import CrossConfig, DiehlCookConfig
from .recording import ChunkReader
from .runner import ChunkRunner

__all__ = ["DiehlCookConfig", "DiehlCookNetwork", "EnsembleNetwork", "CrossConfig", "Presentation"]


@dataclass
class Presentation:
    """What a pass over a sequence of stimuli produced.

    Attributes
    ----------
    counts
        ``(n_items, n_exc)`` spikes of each excitatory neuron during the accepted presentation of each item — of
        the only ensemble, or a dict ``{ensemble: counts}`` for several.
    repeats
        ``(n_items,)`` how often each item had to be shown again with a higher rate.
    slots
        Presentations simulated (accepted + repeats + unused padding of the last chunk).
    seconds
        Wall time of the simulation runs (build excluded).
    """

    counts: np.ndarray | dict
    repeats: np.ndarray
    slots: int
    seconds: float


class EnsembleNetwork:
    """One or more Diehl & Cook ensembles on one time line, optionally joined by cross-modal synapses.

    ``ensembles`` maps a name to ``(config, stimuli)``, stimuli being ``(n_items, n_input)`` uint8 intensities
    (pixels, or audio features scaled to 0–255). Every slot shows one item to every ensemble at the same time
    (items paired by the caller). Groups are named ``<ensemble>_input``, ``<ensemble>_exc``, ``<ensemble>_inh``
    (plain ``input``/``exc``/``inh`` for an ensemble named ``""``), cross-modal synapses ``<a>_to_<b>``.
    Timing, repeat rule, chunking and seed come from the first ensemble's config and must agree across ensembles.
    The repeat rule needs ``min_spikes`` in *every* ensemble.

    Build inside a :func:`~bioSNN.brian.backend.backend` block and use it inside the same block. Learnable state
    lives in numpy and is pushed to the simulator before every chunk and read back after: ``state[name]`` holds
    ``w`` (``(n_input, n_exc)``), ``alive`` (mask; pruned synapses are 0 and never change) and ``theta`` (mV);
    ``cross_state["a_to_b"]`` holds ``w`` and ``alive`` (``(n_exc_a, n_exc_b)``). ``eta_scale`` multiplies the
    learning rate of every plastic projection (input and cross-modal) from the next chunk on: a caller anneals
    STDP by lowering it between chunks (e.g. from ``on_chunk``, with :func:`~bioSNN.brian.stdp.eta_schedule`);
    1 is the rule's own rate. ``cross_gain`` (starting at ``cross.gain``) scales the cross-modal transmission
    from the next chunk on, also without a rebuild on the standalone backends.
    """

    _SHARED = ("t_present", "t_rest", "dt", "min_spikes", "max_repeats", "rate_boost", "chunk", "seed")

    def __init__(
        self,
        ensembles: dict[str, tuple[DiehlCookConfig, np.ndarray]],
        be: Backend,
        monitors: tuple[MonitorSpec, ...] = (),
        cross: CrossConfig | None = None,
        replay: dict | None = None,
    ):
        if not ensembles:
            raise ValueError("need at least one ensemble")
        names = list(ensembles)
        if "" in names and len(names) > 1:
            raise ValueError("the unnamed ensemble '' can only be used alone")
        for name in names:
            if name and not name.isidentifier() or name == "slots":
                raise ValueError(f"ensemble names must be identifiers other than 'slots', got {name!r}")
        cfg = ensembles[names[0]][0]
        for name, (c, stim) in ensembles.items():
            for key in self._SHARED:
                if getattr(c, key) != getattr(cfg, key):
                    raise ValueError(f"ensemble {name!r}: {key}={getattr(c, key)} differs from {getattr(cfg, key)}")
            stim = np.asarray(stim)
            if stim.ndim != 2 or stim.shape[1] != c.n_input:
                raise ValueError(f"ensemble {name!r}: stimuli must be (n_items, {c.n_input}), got {stim.shape}")
            if stim.dtype != np.uint8:
                raise ValueError(f"ensemble {name!r}: stimuli must be uint8 intensities 0-255, got {stim.dtype}")
        if cross is not None and len(names) != 2:
            raise ValueError(f"cross-modal synapses join exactly two ensembles, got {len(names)}")
        self.cfg, self.backend, self.cross_cfg = cfg, be, cross
        self.configs = {n: ensembles[n][0] for n in names}
        self.stimuli = {n: np.asarray(ensembles[n][1]) for n in names}
        self.names = names
        # the initial state, drawn from the network's seed
        rng = np.random.default_rng(cfg.seed)
        self.state = {}
        for n in names:
            c = self.configs[n]
            self.state[n] = {
                "w": rng.uniform(c.w_init_low, c.w_init_high, (c.n_input, c.n_exc)),
                "alive": np.ones((c.n_input, c.n_exc), bool),
                "theta": np.full(c.n_exc, c.exc.theta_init),
            }
        self.cross_state = {}
        if cross is not None:
            a, b = names
            for src, dst in ((a, b), (b, a)):
                shape = (self.configs[src].n_exc, self.configs[dst].n_exc)
                self.cross_state[f"{src}_to_{dst}"] = {
                    "w": rng.uniform(cross.w_init_low, cross.w_init_high, shape),
                    "alive": np.ones(shape, bool),
                }
        self.eta_scale = 1.0
        self.cross_gain = cross.gain if cross is not None else 0.0
        self.replay = replay  # input spikes of one chunk instead of the Poisson inputs (see builder.build)
        self.brian = build_objects(self.configs, self.stimuli, cross, monitors, replay, vectorize=be.vectorize)
        self.groups, self.synapses = self.brian.groups, self.brian.synapses
        self._runner = ChunkRunner(self.brian, be, cfg.chunk * cfg.t_slot)
        self._reader = ChunkReader(self.brian, self.configs, cfg)
        self.recordings = self._reader.recordings
        self._order_checked = False
        # chunks simulated so far: chunk k's random numbers are seeded from (seed, k), so a network rebuilt to
        # resume a run sets this from its checkpoint and draws the same numbers as before
        self.chunks_run = 0
        self.last_chunk: Presentation | None = None  # the items of the latest chunk, for ``on_chunk`` callbacks

    @property
    def build_seconds(self) -> float:
        """Seconds the standalone project took to generate and compile (0 on runtime backends)."""
        return self._runner.build_seconds

    @property
    def build_result(self):
        """How a ``cpp_standalone`` binary came (:class:`bioSNN.brian.compile_cache.BuildResult`: from the compile
        cache or compiled); ``None`` before the build and on other backends."""
        return self._runner.build_result

    def _state_args(self, seqs: dict, plastic: bool) -> dict:
        from brian2 import mV

        args, eta = {}, self._non_negative("eta_scale", "")
        for n in self.names:
            px, st = _prefix(n), self.state[n]
            syn, exc = self.synapses[f"{px}input_exc"], self.groups[f"{px}exc"]
            args.update(
                {
                    syn.w: st["w"].ravel(),
                    syn.alive: st["alive"].ravel().astype(float),
                    exc.theta: st["theta"] * mV,
                    syn.learning: float(plastic),
                    exc.plastic: float(plastic),
                    syn.eta_scale: eta,
                    self.brian.sequences[n]: seqs[n],
                }
            )
        gain = self._non_negative("cross_gain", " (excitatory only)") if self.cross_state else 0.0
        for key, st in self.cross_state.items():
            syn = self.synapses[key]
            args.update(
                {
                    syn.w: st["w"].ravel(),
                    syn.alive: st["alive"].ravel().astype(float),
                    syn.learning: float(plastic),
                    syn.eta_scale: eta,
                    syn.cross_gain: gain,
                }
            )
        return args

    def _non_negative(self, name: str, what: str) -> float:
        """The attribute ``name`` as a float, or a clear error unless finite and >= 0."""
        value = float(getattr(self, name))
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0{what}, got {getattr(self, name)!r}")
        return value

    def _run_chunk(self, seqs: dict, plastic: bool):
        seconds = self._runner.run(
            self._state_args(seqs, plastic), self.cfg.seed * 1_000_003 + self.chunks_run, self._reader.t_offset * 1e3
        )
        self.chunks_run += 1
        self._read_state()
        return self._reader.counts(), seconds

    def build(self, compile: bool = True) -> None:
        """Generate (and compile) the standalone project for chunks of ``cfg.chunk`` presentations.

        Called by the first :meth:`present`; call it directly to check that code generation and compilation
        work without running anything (e.g. ``cuda_standalone`` on a machine without a GPU).
        """
        self._runner.build(compile)

    def profiling_info(self) -> dict[str, float]:
        """Seconds spent in each code object (state updates, thresholds, synaptic pathways, scheduled
        operations) during the latest chunk, largest first; needs a standalone backend with ``profile=True``."""
        return self._runner.profiling_info()

    def plastic_projections(self):
        """``(key, state, w_sum)`` of every plastic projection: each ensemble's input synapses (key: the ensemble's
        name, ``state[name]``) and each cross-modal projection (key ``a_to_b``, ``cross_state[key]``); ``w_sum``
        is the per-neuron sum that normalisation keeps (None: a cross projection without one)."""
        for n in self.names:
            yield n, self.state[n], self.configs[n].w_sum
        for key, st in self.cross_state.items():
            yield key, st, (self.cross_cfg.w_sum or None)

    def _all_to_all(self):
        """(synapses, n_pre, n_post, state dict) of every learnable all-to-all projection."""
        for n in self.names:
            c = self.configs[n]
            yield self.synapses[f"{_prefix(n)}input_exc"], c.n_input, c.n_exc, self.state[n]
        for key, st in self.cross_state.items():
            yield self.synapses[key], st["w"].shape[0], st["w"].shape[1], st

    def _read_state(self):
        for syn, n_pre, n_post, st in self._all_to_all():
            if not self._order_checked:  # synapses never move after creation: check their order once
                i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
                if not (
                    np.array_equal(i, np.repeat(np.arange(n_pre), n_post))
                    and np.array_equal(j, np.tile(np.arange(n_post), n_pre))
                ):
                    raise RuntimeError(f"{syn.name} synapses are not in source-major order; cannot map weights")
            st["w"] = np.asarray(syn.w[:], dtype=float).reshape(n_pre, n_post).copy()
        self._order_checked = True
        for n in self.names:
            exc = self.groups[f"{_prefix(n)}exc"]
            self.state[n]["theta"] = np.asarray(exc.theta[:] / 1e-3, dtype=float).copy()  # volt -> mV

    def present(
        self,
        item_ids,
        plastic: bool,
        on_chunk: Callable[[int], None] | None = None,
        progress: bool = True,
        desc: str = "items",
    ) -> Presentation:
        """Show ``stimuli[name][item_ids[name]]`` to every ensemble at once, in order; learn if ``plastic``.

        ``item_ids``: one index array per ensemble (a dict, all of the same length), or a single array when
        there is one ensemble. ``on_chunk(n_done)`` runs after every chunk (prune, quantize, checkpoint — it may
        change the state, which is pushed to the simulator before the next chunk). Returns per-item responses.
        """
        from tqdm.auto import tqdm

        if not isinstance(item_ids, dict):
            if len(self.names) != 1:
                raise ValueError(f"give one index array per ensemble as a dict with keys {self.names}")
            item_ids = {self.names[0]: item_ids}
        if set(item_ids) != set(self.names):
            raise ValueError(f"item ids for ensembles {sorted(item_ids)}, network has {self.names}")
        ids = {n: np.asarray(item_ids[n], dtype=np.int32) for n in self.names}
        lengths = {len(v) for v in ids.values()}
        if len(lengths) != 1:
            raise ValueError(f"paired item id arrays must have equal lengths, got {sorted(lengths)}")
        for n, v in ids.items():
            if v.size and (v.min() < 0 or v.max() >= len(self.stimuli[n])):
                raise IndexError(f"{n or 'image'} ids must lie in [0, {len(self.stimuli[n])})")
        total = lengths.pop()
        counts = {n: np.zeros((total, self.configs[n].n_exc), np.int32) for n in self.names}
        repeats = np.zeros(total, np.int32)
        pos, slots, seconds = 0, 0, 0.0
        chunk = self.cfg.chunk
        with tqdm(total=total, desc=desc, unit="item", disable=not progress) as bar:
            while pos < total:
                seqs = {}
                for n, v in ids.items():
                    seq = v[pos : pos + chunk]
                    # the last chunk's unused slots show the blank item: no input spikes, so no learning, and
                    # the network only rests there (θ decays as in a rest while plastic: < 1 % over 200 slots)
                    seqs[n] = np.concatenate([seq, np.full(chunk - len(seq), len(self.stimuli[n]), np.int32)])
                if self.replay is not None and pos > 0:
                    raise ValueError("replayed input spikes cover one chunk; these items need more (raise chunk)")
                (c, r, k), s = self._run_chunk(seqs, plastic)
                done = min(len(r), total - pos)
                if done == 0:
                    raise RuntimeError("a whole chunk passed without an accepted presentation")
                for n in self.names:
                    counts[n][pos : pos + done] = c[n][:done]
                repeats[pos : pos + done] = r[:done]
                pos += done
                slots += chunk
                seconds += s
                bar.update(done)
                self.last_chunk = Presentation({n: c[n][:done] for n in self.names}, r[:done], chunk, s)
                if on_chunk is not None:
                    on_chunk(pos)
        return Presentation(counts, repeats, slots, seconds)


class DiehlCookNetwork(EnsembleNetwork):
    """The single-ensemble Diehl & Cook network: groups ``input``, ``exc``, ``inh``; state as ``w``, ``alive``,
    ``theta``; :meth:`present` takes an array of image ids and returns ``counts`` as one array."""

    def __init__(
        self,
        cfg: DiehlCookConfig,
        images: np.ndarray,
        be: Backend,
        monitors: tuple[MonitorSpec, ...] = (),
        replay: tuple | None = None,
    ):
        images = np.asarray(images)
        if images.ndim != 2 or images.shape[1] != cfg.n_input:
            raise ValueError(f"images must be (n_images, {cfg.n_input}), got {images.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 intensities 0-255, got {images.dtype}")
        super().__init__({"": (cfg, images)}, be, monitors, replay=None if replay is None else {"": replay})
        self.images = images

    @property
    def w(self) -> np.ndarray:
        """``(n_input, n_exc)`` input weights."""
        return self.state[""]["w"]

    @w.setter
    def w(self, value: np.ndarray) -> None:
        self.state[""]["w"] = value

    @property
    def alive(self) -> np.ndarray:
        """``(n_input, n_exc)`` mask of the synapses not pruned."""
        return self.state[""]["alive"]

    @alive.setter
    def alive(self, value: np.ndarray) -> None:
        self.state[""]["alive"] = value

    @property
    def theta(self) -> np.ndarray:
        """``(n_exc,)`` adaptive thresholds (mV)."""
        return self.state[""]["theta"]

    @theta.setter
    def theta(self, value: np.ndarray) -> None:
        self.state[""]["theta"] = value

    def present(
        self,
        image_ids,
        plastic: bool,
        on_chunk: Callable[[int], None] | None = None,
        progress: bool = True,
        desc: str = "images",
    ) -> Presentation:
        ids = np.asarray(image_ids, dtype=np.int32)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.images)):
            raise IndexError(f"image ids must lie in [0, {len(self.images)})")

        def one(done):  # callbacks see this ensemble's counts as one array, as the result has them
            self.last_chunk.counts = self.last_chunk.counts[""]
            on_chunk(done)

        p = super().present({"": ids}, plastic, one if on_chunk is not None else None, progress, desc)
        p.counts = p.counts[""]
        return p

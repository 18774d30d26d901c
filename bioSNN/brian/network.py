"""The Diehl & Cook (2015) network in Brian2, driven as whole simulations of many image presentations.

Structure: ``input`` (Poisson, one neuron per pixel) → ``exc`` (conductance LIF, adaptive θ) one-to-one →
``inh`` → all-but-self back onto ``exc`` (lateral inhibition, soft winner-take-all).

How an epoch runs
-----------------
Time is cut into *slots* of ``t_present + t_rest``. Everything that D&C do in Python between images happens
inside the simulation, as scheduled operations at the start of each slot (``run_regularly``):

1. a one-neuron controller counts the excitatory spikes of the slot that ended; with fewer than
   ``min_spikes`` it shows the same image again with the input rate raised by ``rate_boost`` (up to
   ``max_repeats`` times), else it advances to the next image of the sequence (a ``TimedArray``);
2. each excitatory neuron's incoming weights are summed and rescaled to ``w_sum`` (while plastic);
3. with ``t_rest = 0`` the state is reset explicitly instead of decaying during the rest.

Input neurons fire with probability ``rate·dt`` where ``rate = pixel/255 · (max_rate + repeats·rate_boost)``
during the presentation and 0 during the rest; pixels come from a ``TimedArray`` holding all images.

A *chunk* of ``chunk`` slots is one simulation run. On ``cpp_standalone``/``cuda_standalone`` the program is
generated and compiled once and every chunk re-runs the binary with new weights, thresholds, masks and image
sequence (Brian2 ``run_args``), so a 60,000-image epoch needs one build. Between chunks Python may prune,
quantize and checkpoint. On runtime backends the same network object simply runs chunk after chunk.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..monitors import MonitorSpec, Recording
from .backend import Backend
from .neurons import ExcitatoryParams, InhibitoryParams, excitatory_model, inhibitory_model
from .stdp import PowerLawSTDP, TraceSTDP

__all__ = ["DiehlCookConfig", "DiehlCookNetwork", "Presentation"]


@dataclass(frozen=True)
class DiehlCookConfig:
    """Network and presentation parameters (defaults: Diehl & Cook 2015 on MNIST).

    Attributes
    ----------
    n_input, n_exc
        Input neurons (pixels) and excitatory (= inhibitory) neurons.
    max_rate : Hz
        Input rate of a pixel of intensity 255 (63.75 Hz = intensity / 4).
    rate_boost : Hz
        Added to ``max_rate`` for each repeat of an image that evoked fewer than ``min_spikes`` spikes.
    min_spikes, max_repeats
        Repeat rule.
    t_present, t_rest, dt : ms
        Presentation, rest and simulation step. ``t_rest = 0`` resets the state explicitly between images.
    w_init_low, w_init_high
        Initial input weights drawn uniformly from this range.
    w_sum
        Sum of each excitatory neuron's input weights after normalisation (78 for 784 inputs).
    w_exc_inh, w_inh_exc
        Fixed weights exc → inh (one-to-one) and inh → exc (all but self).
    rule
        ``"power_law"`` (thesis) or ``"diehl_cook"`` (trace rule), with parameters in ``power_law``/``trace``.
    chunk
        Slots per simulation run (between two chances to prune, quantize, checkpoint).
    seed
        Seed of the initial weights and of Brian2's random numbers.
    """

    n_input: int = 784
    n_exc: int = 100
    max_rate: float = 63.75
    rate_boost: float = 32.0
    min_spikes: int = 5
    max_repeats: int = 10
    t_present: float = 350.0
    t_rest: float = 150.0
    dt: float = 0.5
    w_init_low: float = 0.003
    w_init_high: float = 0.303
    w_sum: float = 78.0
    w_exc_inh: float = 10.4
    w_inh_exc: float = 17.0
    exc: ExcitatoryParams = field(default_factory=ExcitatoryParams)
    inh: InhibitoryParams = field(default_factory=InhibitoryParams)
    rule: str = "power_law"
    power_law: PowerLawSTDP = field(default_factory=PowerLawSTDP)
    trace: TraceSTDP = field(default_factory=TraceSTDP)
    chunk: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.rule not in ("power_law", "diehl_cook"):
            raise ValueError(f"rule must be 'power_law' or 'diehl_cook', got {self.rule!r}")
        if self.chunk <= self.max_repeats:
            raise ValueError(f"chunk ({self.chunk}) must exceed max_repeats ({self.max_repeats})")
        for name in ("n_input", "n_exc", "min_spikes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.t_present <= 0 or self.t_rest < 0 or self.dt <= 0:
            raise ValueError("need t_present > 0, t_rest >= 0, dt > 0 (ms)")

    @property
    def stdp(self) -> PowerLawSTDP | TraceSTDP:
        return self.power_law if self.rule == "power_law" else self.trace

    @property
    def t_slot(self) -> float:
        return self.t_present + self.t_rest


@dataclass
class Presentation:
    """What a pass over a sequence of images produced.

    Attributes
    ----------
    counts
        ``(n_images, n_exc)`` spikes of each excitatory neuron during the accepted presentation of each image.
    repeats
        ``(n_images,)`` how often each image had to be shown again with a higher rate.
    slots
        Presentations simulated (accepted + repeats + unused padding of the last chunk).
    seconds
        Wall time of the simulation runs (build excluded).
    """

    counts: np.ndarray
    repeats: np.ndarray
    slots: int
    seconds: float


class DiehlCookNetwork:
    """Build inside a :func:`~bioSNN.brian.backend.backend` block and use it inside the same block.

    The learnable state lives in numpy and is pushed to the simulator before every chunk and read back after:
    ``w`` (``(n_input, n_exc)`` input weights), ``alive`` (mask; pruned synapses are 0 and never change),
    ``theta`` (adaptive thresholds, mV).
    """

    def __init__(self, cfg: DiehlCookConfig, images: np.ndarray, be: Backend,
                 monitors: tuple[MonitorSpec, ...] = ()):
        import brian2 as b2
        from brian2 import Hz, ms

        images = np.asarray(images)
        if images.ndim != 2 or images.shape[1] != cfg.n_input:
            raise ValueError(f"images must be (n_images, {cfg.n_input}), got {images.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 intensities 0-255, got {images.dtype}")
        self.cfg, self.backend, self.images = cfg, be, images
        n_in, n = cfg.n_input, cfg.n_exc
        rng = np.random.default_rng(cfg.seed)
        self.w = rng.uniform(cfg.w_init_low, cfg.w_init_high, (n_in, n))
        self.alive = np.ones((n_in, n), bool)
        self.theta = np.full(n, cfg.exc.theta_init)  # mV
        self.recordings = {spec: Recording(spec) for spec in monitors}
        self.build_seconds = 0.0
        self._built = False
        self._order_checked = False
        self._t_offset = 0.0  # seconds simulated before the current chunk (for recordings)

        b2.defaultclock.dt = cfg.dt * ms
        b2.seed(cfg.seed)
        t_slot = cfg.t_slot * ms
        ns = {"t_slot": t_slot, "t_present": cfg.t_present * ms, "max_rate": cfg.max_rate * Hz,
              "rate_boost": cfg.rate_boost * Hz, "min_spikes": cfg.min_spikes, "max_repeats": cfg.max_repeats,
              "w_target": cfg.w_sum, "w_ei": cfg.w_exc_inh, "w_ie": cfg.w_inh_exc}
        self._pixels = b2.TimedArray(images, dt=1 * ms, name="pixels")
        self._seq = b2.TimedArray(np.zeros(cfg.chunk, np.int32), dt=1 * ms, name="sequence")
        ns.update(pixels=self._pixels, sequence=self._seq)

        ctrl = b2.NeuronGroup(1, "k : integer\nimg : integer\nrepeats : integer\ncount : integer",
                              name="controller", namespace=ns)
        ctrl.run_regularly("""accept = int(count >= min_spikes or repeats >= max_repeats)
k += accept
repeats = (repeats + 1) * (1 - accept)
img = int(sequence(k * ms) + 0.5)
count = 0""", dt=t_slot, when="start", order=-10, name="controller_step")
        ctrl.k, ctrl.repeats, ctrl.count = -1, cfg.max_repeats, 0

        inp = b2.NeuronGroup(n_in, """
rate = int(t - t_slot * floor(t / t_slot + 1e-6) < t_present) * pixels(img_in * ms, i) / 255.0 * (max_rate + rate_boost * repeats_in) : Hz
img_in : integer (linked)
repeats_in : integer (linked)
""", threshold="rand() < rate * dt", name="input", namespace=ns)
        inp.img_in = b2.linked_var(ctrl, "img", index=np.zeros(n_in, dtype=int))
        inp.repeats_in = b2.linked_var(ctrl, "repeats", index=np.zeros(n_in, dtype=int))

        em, im = excitatory_model(cfg.exc), inhibitory_model(cfg.inh)
        exc = b2.NeuronGroup(n, em.equations + "wsum : 1\n", threshold=em.threshold, reset=em.reset,
                             refractory=em.refractory, method="euler", name="exc", namespace={**em.namespace, **ns})
        inh = b2.NeuronGroup(n, im.equations, threshold=im.threshold, reset=im.reset, refractory=im.refractory,
                             method="euler", name="inh", namespace={**im.namespace, **ns})
        exc.v, inh.v = cfg.exc.v_leak * b2.mV, cfg.inh.v_leak * b2.mV

        sm = cfg.stdp.synapse_model()
        syn = b2.Synapses(inp, exc, sm.model, on_pre=sm.on_pre, on_post=sm.on_post, name="input_exc",
                          namespace={**sm.namespace, **ns})
        syn.connect()
        ei = b2.Synapses(exc, inh, on_pre="ge_post += w_ei", name="exc_inh", namespace=ns)
        ei.connect(j="i")
        ie = b2.Synapses(inh, exc, on_pre="gi_post += w_ie", name="inh_exc", namespace=ns)
        ie.connect(condition="i != j")
        counter = b2.Synapses(exc, ctrl, on_pre="count_post += 1", name="spike_counter")
        counter.connect()

        # per-slot weight normalisation (D&C normalise after every image), as scheduled operations
        exc.run_regularly("wsum = 0", dt=t_slot, when="start", order=-9, name="norm_clear")
        syn.run_regularly("wsum_post += w", dt=t_slot, when="start", order=-8, name="norm_sum")
        syn.run_regularly("w = w * (1 - learning + learning * w_target / (wsum_post + 1e-12))",
                          dt=t_slot, when="start", order=-7, name="norm_scale")
        if cfg.t_rest == 0:  # no rest: explicit reset of the state at each new presentation
            exc.run_regularly("v = exc_v_leak\nge = 0\ngi = 0", dt=t_slot, when="start", order=-6,
                              name="exc_reset")
            inh.run_regularly("v = inh_v_leak\nge = 0\ngi = 0", dt=t_slot, when="start", order=-6,
                              name="inh_reset")
            trace_vars = ["xpre"] if cfg.rule == "power_law" else ["pre", "post1", "post2"]
            syn.run_regularly("\n".join(f"{v} = 0" for v in trace_vars), dt=t_slot, when="start", order=-6,
                              name="trace_reset")

        self._spikes = b2.SpikeMonitor(exc, name="exc_spikes")
        self._slots = b2.StateMonitor(ctrl, ["k", "repeats"], record=0, dt=t_slot, when="start", order=-5,
                                      name="slot_monitor")
        self.groups = {"input": inp, "exc": exc, "inh": inh, "controller": ctrl}
        self.synapses = {"input_exc": syn, "exc_inh": ei, "inh_exc": ie}
        self._user_monitors = {}
        objects = [ctrl, inp, exc, inh, syn, ei, ie, counter, self._spikes, self._slots]
        for spec in monitors:
            if spec.population not in self.groups:
                raise ValueError(f"monitor on unknown population {spec.population!r}; have {list(self.groups)}")
            g = self.groups[spec.population]
            mons = []
            if spec.variables:
                mons.append(b2.StateMonitor(g, list(spec.variables), record=list(spec.indices),
                                            dt=spec.dt_ms * ms))
            if spec.spikes:
                mons.append(b2.SpikeMonitor(g))
            self._user_monitors[spec] = mons
            objects += mons
        self.net = b2.Network(*objects)
        if be.name == "cpp_standalone":
            # reseed per chunk from the environment, so successive runs of the one binary draw new noise
            threads = max(1, be.threads)
            b2.device.insert_code("main", (
                '{ const char* _s = std::getenv("BIOSNN_SEED"); if (_s) { '
                f'for (int _i = 0; _i < {threads}; _i++) '
                'brian::_random_generators[_i].seed(std::strtoul(_s, NULL, 10) + _i); } }'))
        self._chunks_run = 0
        self._seen = {"spikes": 0, "slots": 0}
        self._user_seen = {spec: [0, 0] for spec in monitors}

    # ----------------------------------------------------------------------------------------------------
    def _state_args(self, seq: np.ndarray, plastic: bool) -> dict:
        syn, exc = self.synapses["input_exc"], self.groups["exc"]
        from brian2 import mV

        return {syn.w: self.w.ravel(), syn.alive: self.alive.ravel().astype(float), exc.theta: self.theta * mV,
                syn.learning: float(plastic), exc.plastic: float(plastic), self._seq: seq}

    def _run_chunk(self, seq: np.ndarray, plastic: bool):
        import brian2 as b2

        cfg = self.cfg
        duration = cfg.chunk * cfg.t_slot * b2.ms
        args = self._state_args(seq, plastic)
        t0 = time.perf_counter()
        if self.backend.standalone:
            if not self._built:
                self.build()
                t0 = time.perf_counter()
            if self.backend.name == "cuda_standalone" and not self.backend.gpu:
                raise RuntimeError("this backend was generated for compilation only (gpu=False); it cannot run")
            os.environ["BIOSNN_SEED"] = str(cfg.seed * 1_000_003 + self._chunks_run)  # read by the binary
            b2.device.run(run_args=args, with_output=False)
            self._seen = {"spikes": 0, "slots": 0}  # every standalone run starts with empty monitors
            self._user_seen = {s: [0, 0] for s in self._user_seen}
        else:
            ctrl = self.groups["controller"]
            ctrl.k, ctrl.repeats, ctrl.count = -1, cfg.max_repeats, 0
            for var, value in args.items():
                if var is self._seq:
                    self._seq.values[:] = value
                else:
                    var[:] = value
            self.net.run(duration, namespace={})
        seconds = time.perf_counter() - t0
        self._chunks_run += 1
        self._read_state()
        return self._chunk_counts(), seconds

    def build(self, compile: bool = True) -> None:
        """Generate (and compile) the standalone project for chunks of ``cfg.chunk`` presentations.

        Called by the first :meth:`present`; call it directly to check that code generation and compilation
        work without running anything (e.g. ``cuda_standalone`` on a machine without a GPU).
        """
        import brian2 as b2

        if not self.backend.standalone:
            raise RuntimeError(f"backend {self.backend.name!r} compiles at run time; nothing to build")
        if self._built:
            return
        self.net.run(self.cfg.chunk * self.cfg.t_slot * b2.ms, namespace={})
        tb = time.perf_counter()
        b2.device.build(directory=self.backend.directory, compile=compile, run=False, with_output=False)
        self.build_seconds = time.perf_counter() - tb
        self._built = True

    def _read_state(self):
        syn, exc = self.synapses["input_exc"], self.groups["exc"]
        n_in, n = self.cfg.n_input, self.cfg.n_exc
        if not self._order_checked:  # synapses never move after creation: check their order once
            i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
            if not (np.array_equal(i, np.repeat(np.arange(n_in), n)) and np.array_equal(j, np.tile(np.arange(n), n_in))):
                raise RuntimeError("input_exc synapses are not in source-major order; cannot map weights")
            self._order_checked = True
        self.w = np.asarray(syn.w[:], dtype=float).reshape(n_in, n).copy()
        self.theta = np.asarray(exc.theta[:] / 1e-3, dtype=float).copy()  # volt -> mV

    def _chunk_counts(self):
        """Per accepted presentation of this chunk: spike counts and repeats."""
        cfg = self.cfg
        t_start = self._t_offset if not self.backend.standalone else 0.0
        sp_i = np.asarray(self._spikes.i[:])[self._seen["spikes"]:]
        sp_t = np.asarray(self._spikes.t[:])[self._seen["spikes"]:]
        k = np.asarray(self._slots.k[0])[self._seen["slots"]:]
        reps = np.asarray(self._slots.repeats[0])[self._seen["slots"]:]
        self._seen["spikes"] += len(sp_i)
        self._seen["slots"] += len(k)
        slot = np.floor((sp_t - t_start) / (cfg.t_slot * 1e-3) + 1e-6).astype(np.int64)
        keep = (slot >= 0) & (slot < len(k))
        per_slot = np.bincount(slot[keep] * cfg.n_exc + sp_i[keep], minlength=len(k) * cfg.n_exc)
        per_slot = per_slot.reshape(len(k), cfg.n_exc)
        last_ok = per_slot[-1].sum() >= cfg.min_spikes or reps[-1] >= cfg.max_repeats
        accepted = np.append(k[1:] > k[:-1], last_ok)
        self._collect_user_monitors(t_start)
        self._t_offset += cfg.chunk * cfg.t_slot * 1e-3
        return per_slot[accepted], reps[accepted], k[accepted]

    def _collect_user_monitors(self, t_start):
        from brian2 import StateMonitor

        for spec, mons in self._user_monitors.items():
            seen = self._user_seen[spec]
            state, st, si, stt = {}, np.zeros(0), np.zeros(0, np.int64), np.zeros(0)
            for m in mons:
                if isinstance(m, StateMonitor):
                    st = np.asarray(m.t[:])[seen[0]:] - t_start
                    state = {v: np.asarray(getattr(m, v))[:, seen[0]:] for v in spec.variables}
                    seen[0] += len(st)
                else:
                    si = np.asarray(m.i[:])[seen[1]:]
                    stt = np.asarray(m.t[:])[seen[1]:] - t_start
                    seen[1] += len(si)
            self.recordings[spec].append(st, state, si, stt, self._t_offset)

    # ----------------------------------------------------------------------------------------------------
    def present(self, image_ids, plastic: bool, on_chunk: Callable[[int], None] | None = None,
                progress: bool = True, desc: str = "images") -> Presentation:
        """Show ``self.images[image_ids]`` in order, learning if ``plastic``; returns per-image responses.

        ``on_chunk(n_done)`` runs after every chunk (prune, quantize, checkpoint — it may change ``w``,
        ``alive`` and ``theta``, which are pushed to the simulator before the next chunk).
        """
        from tqdm.auto import tqdm

        ids = np.asarray(image_ids, dtype=np.int32)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.images)):
            raise IndexError(f"image ids must lie in [0, {len(self.images)})")
        n = len(ids)
        counts = np.zeros((n, self.cfg.n_exc), np.int32)
        repeats = np.zeros(n, np.int32)
        pos, slots, seconds = 0, 0, 0.0
        with tqdm(total=n, desc=desc, unit="img", disable=not progress) as bar:
            while pos < n:
                seq = ids[pos:pos + self.cfg.chunk]
                seq = np.concatenate([seq, np.full(self.cfg.chunk - len(seq), seq[-1], np.int32)])
                (c, r, k), s = self._run_chunk(seq, plastic)
                done = min(len(c), n - pos)
                if done == 0:
                    raise RuntimeError("a whole chunk passed without an accepted presentation")
                counts[pos:pos + done], repeats[pos:pos + done] = c[:done], r[:done]
                pos += done
                slots += self.cfg.chunk
                seconds += s
                bar.update(done)
                if on_chunk is not None:
                    on_chunk(pos)
        return Presentation(counts, repeats, slots, seconds)

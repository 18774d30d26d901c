"""The Diehl & Cook (2015) network in Brian2, driven as whole simulations of many image presentations.

Structure: ``input`` (Poisson, one neuron per pixel) → ``exc`` (conductance LIF, adaptive θ) one-to-one →
``inh`` → all-but-self back onto ``exc`` (lateral inhibition, soft winner-take-all). :class:`EnsembleNetwork`
runs several such ensembles on one time line — e.g. an image and an audio ensemble shown paired stimuli — and
can join their excitatory populations by plastic cross-modal synapses (:class:`CrossConfig`, thesis part 2);
:class:`DiehlCookNetwork` is the single-ensemble case.

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
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np

from ..monitors import MonitorSpec, Recording
from .backend import Backend
from .neurons import INTEGRATIONS, ExcitatoryParams, InhibitoryParams, excitatory_model, inhibitory_model
from .stdp import PowerLawSTDP, SynapseModel, TraceSTDP

__all__ = ["DiehlCookConfig", "DiehlCookNetwork", "EnsembleNetwork", "CrossConfig", "Presentation"]


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
    input_delay : ms
        Input → excitatory transmission delays drawn uniformly from [0, input_delay] per synapse (fixed by
        ``seed``); Diehl & Cook's code uses 10 ms, 0 gives no delays.
    w_exc_inh, w_inh_exc
        Fixed weights exc → inh (one-to-one) and inh → exc (all but self).
    rule
        ``"power_law"`` (thesis) or ``"diehl_cook"`` (trace rule), with parameters in ``power_law``/``trace``.
    integration
        Membrane numerics: ``"exponential_euler"``, ``"step_mean"`` (exponential Euler with each conductance's
        exact mean over the step) or ``"euler"`` (forward Euler, Diehl & Cook's; unstable under synchronous
        inhibition) — see :func:`bioSNN.brian.neurons._membrane`.
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
    input_delay: float = 0.0
    w_exc_inh: float = 10.4
    w_inh_exc: float = 17.0
    exc: ExcitatoryParams = field(default_factory=ExcitatoryParams)
    inh: InhibitoryParams = field(default_factory=InhibitoryParams)
    rule: str = "power_law"
    power_law: PowerLawSTDP = field(default_factory=PowerLawSTDP)
    trace: TraceSTDP = field(default_factory=TraceSTDP)
    # step_mean: at N = 100 on 15k MNIST images 76.1 % vs 74.3 % with plain exponential Euler
    integration: str = "step_mean"
    chunk: int = 1000
    seed: int = 0

    RULES: ClassVar[dict] = {
        "max_rate": ">0", "rate_boost": ">=0", "max_repeats": ">=0", "w_init_low": ">=0", "w_init_high": ">=0",
        "w_sum": ">0", "w_exc_inh": ">=0", "w_inh_exc": ">=0", "seed": ">=0"}

    def __post_init__(self):
        if self.integration not in INTEGRATIONS:
            raise ValueError(f"integration must be one of {INTEGRATIONS}, got {self.integration!r}")
        if self.rule not in ("power_law", "diehl_cook"):
            raise ValueError(f"rule must be 'power_law' or 'diehl_cook', got {self.rule!r}")
        if self.chunk <= self.max_repeats:
            raise ValueError(f"chunk ({self.chunk}) must exceed max_repeats ({self.max_repeats})")
        for name in ("n_input", "n_exc", "min_spikes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.t_present <= 0 or self.t_rest < 0 or self.dt <= 0:
            raise ValueError("need t_present > 0, t_rest >= 0, dt > 0 (ms)")
        if not 0 <= self.input_delay < self.t_rest + self.t_present:
            raise ValueError(f"input_delay must lie in [0, t_present + t_rest), got {self.input_delay} ms")

    @property
    def stdp(self) -> PowerLawSTDP | TraceSTDP:
        return self.power_law if self.rule == "power_law" else self.trace

    @property
    def t_slot(self) -> float:
        return self.t_present + self.t_rest


@dataclass(frozen=True)
class CrossConfig:
    """Plastic excitatory synapses between the excitatory populations of two ensembles, in both directions.

    Each presynaptic spike adds ``gain · w`` to the target's excitatory conductance; ``w`` learns with the
    power-law STDP rule (``stdp``) while the network is plastic. ``gain = 0`` leaves the ensembles independent.

    Attributes
    ----------
    gain
        Multiplier of the cross-modal weights onto the target conductance (dimensionless, >= 0): the network's
        starting value. It is a shared run-time variable (``cross_gain`` of the synapses), so
        :attr:`EnsembleNetwork.cross_gain` can change it between chunks without a rebuild — e.g. to test a
        network trained with its cross synapses with them switched off.
    w_init_low, w_init_high
        Initial weights, uniform.
    w_sum
        Each target neuron's incoming cross weights are rescaled to this sum after every presentation while
        plastic (like the input weights); 0 disables it.
    stdp
        Plasticity rule of the cross-modal synapses.
    """

    gain: float = 1.0
    w_init_low: float = 0.0
    w_init_high: float = 0.05
    w_sum: float = 0.0
    stdp: PowerLawSTDP = field(default_factory=PowerLawSTDP)

    RULES: ClassVar[dict] = {"gain": ">=0", "w_init_low": ">=0", "w_init_high": ">=0", "w_sum": ">=0"}

    def __post_init__(self):
        if self.gain < 0:
            raise ValueError(f"cross-modal gain must be >= 0 (excitatory only), got {self.gain}")
        if not 0 <= self.w_init_low <= self.w_init_high:
            raise ValueError(f"need 0 <= w_init_low <= w_init_high, got {self.w_init_low}, {self.w_init_high}")

    def synapse_model(self):
        """The STDP synapse with its transmission scaled by the shared variable ``cross_gain``, which whoever
        builds the ``Synapses`` sets (as ``learning`` and ``eta_scale``)."""
        sm = self.stdp.synapse_model()
        on_pre = sm.on_pre.replace("ge_post += w", "ge_post += cross_gain * w")
        if on_pre == sm.on_pre:
            raise RuntimeError("the STDP model's transmission line changed; update CrossConfig.synapse_model")
        return SynapseModel(sm.model + "cross_gain : 1 (shared)\n", on_pre, sm.on_post, sm.namespace)


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


def _prefix(name: str) -> str:
    return f"{name}_" if name else ""


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

    def __init__(self, ensembles: dict[str, tuple[DiehlCookConfig, np.ndarray]], be: Backend,
                 monitors: tuple[MonitorSpec, ...] = (), cross: CrossConfig | None = None):
        import brian2 as b2
        from brian2 import Hz, ms

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
        rng = np.random.default_rng(cfg.seed)
        self.state = {}
        for n in names:
            c = self.configs[n]
            self.state[n] = {"w": rng.uniform(c.w_init_low, c.w_init_high, (c.n_input, c.n_exc)),
                             "alive": np.ones((c.n_input, c.n_exc), bool),
                             "theta": np.full(c.n_exc, c.exc.theta_init)}
        self.cross_state = {}
        if cross is not None:
            a, b = names
            for src, dst in ((a, b), (b, a)):
                shape = (self.configs[src].n_exc, self.configs[dst].n_exc)
                self.cross_state[f"{src}_to_{dst}"] = {"w": rng.uniform(cross.w_init_low, cross.w_init_high, shape),
                                                       "alive": np.ones(shape, bool)}
        self.eta_scale = 1.0
        self.cross_gain = cross.gain if cross is not None else 0.0
        self.recordings = {spec: Recording(spec) for spec in monitors}
        self.build_seconds = 0.0
        self._built = False
        self._order_checked = False
        self._t_offset = 0.0  # seconds simulated before the current chunk (for recordings)

        b2.defaultclock.dt = cfg.dt * ms
        b2.seed(cfg.seed)
        t_slot = cfg.t_slot * ms
        ns = {"t_slot": t_slot, "t_present": cfg.t_present * ms, "rate_boost": cfg.rate_boost * Hz,
              "min_spikes": cfg.min_spikes, "max_repeats": cfg.max_repeats}
        self._seqs = {n: b2.TimedArray(np.zeros(cfg.chunk, np.int32), dt=1 * ms, name=f"{_prefix(n)}sequence")
                      for n in names}
        ns.update({f"{_prefix(n)}sequence": self._seqs[n] for n in names})
        counts_ok = " and ".join(f"{_prefix(n)}count >= min_spikes" for n in names)
        ctrl_vars = "k : integer\nrepeats : integer\n" + "".join(
            f"{_prefix(n)}item : integer\n{_prefix(n)}count : integer\n" for n in names)
        ctrl = b2.NeuronGroup(1, ctrl_vars, name="controller", namespace=ns)
        ctrl.run_regularly(
            f"accept = int(({counts_ok}) or repeats >= max_repeats)\nk += accept\n"
            "repeats = (repeats + 1) * (1 - accept)\n"
            + "".join(f"{_prefix(n)}item = int({_prefix(n)}sequence(k * ms) + 0.5)\n{_prefix(n)}count = 0\n"
                      for n in names),
            dt=t_slot, when="start", order=-10, name="controller_step")
        ctrl.k, ctrl.repeats = -1, cfg.max_repeats

        self.groups = {"controller": ctrl}
        self.synapses = {}
        self._spikes = {}
        self._pixels = {}
        objects = [ctrl]
        cross_targets = set(names) if cross is not None else set()
        for n in names:
            objects += self._build_ensemble(b2, n, ns, ctrl, t_slot, n in cross_targets)
        if cross is not None:
            objects += self._build_cross(b2, cross, ns, t_slot)
        self._slots = b2.StateMonitor(ctrl, ["k", "repeats"], record=0, dt=t_slot, when="start", order=-5,
                                      name="slot_monitor")
        objects.append(self._slots)
        self._user_monitors = {}
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
        if not be.standalone:
            self.net.store("initial")  # restored before every chunk (see _run_chunk)
        if be.standalone and sys.platform.startswith("linux"):
            # the binary dies with the process that runs it: a killed run leaves no simulation writing results
            # that a resumed run would read (prctl(PR_SET_PDEATHSIG))
            for h in ("<sys/prctl.h>", "<signal.h>", "<unistd.h>"):
                if h not in b2.device.headers:
                    b2.device.headers.append(h)
            b2.device.insert_code("main", "prctl(PR_SET_PDEATHSIG, SIGKILL);")
        if be.name == "cpp_standalone":
            # reseed per chunk from the environment, so successive runs of the one binary draw new noise
            threads = max(1, be.threads)
            b2.device.insert_code("main", (
                '{ const char* _s = std::getenv("BIOSNN_SEED"); if (_s) { '
                f'for (int _i = 0; _i < {threads}; _i++) '
                'brian::_random_generators[_i].seed(std::strtoul(_s, NULL, 10) + _i); } }'))
        # chunks simulated so far: the standalone binary's random numbers of chunk k are seeded from (seed, k), so a
        # network rebuilt to resume a run sets this from its checkpoint and draws the same numbers as before
        self.chunks_run = 0
        self.last_chunk: Presentation | None = None  # the items of the latest chunk, for ``on_chunk`` callbacks
        self._seen = {"slots": 0, **{n: 0 for n in names}}
        self._user_seen = {spec: [0, 0] for spec in monitors}

    def _build_ensemble(self, b2, n: str, ns: dict, ctrl, t_slot, with_cross: bool) -> list:
        from brian2 import Hz, ms

        c, px = self.configs[n], _prefix(n)
        ens_ns = {**ns, "max_rate": c.max_rate * Hz, "w_target": c.w_sum, "w_ei": c.w_exc_inh, "w_ie": c.w_inh_exc}
        # one blank item after the stimuli: it pads a chunk's unused slots (see ``present``)
        table = np.vstack([self.stimuli[n], np.zeros((1, c.n_input), np.uint8)])
        pixels = b2.TimedArray(table, dt=1 * ms, name=f"{px}pixels")
        self._pixels[n] = pixels
        ens_ns["stimulus"] = pixels
        inp = b2.NeuronGroup(c.n_input, """
rate = int(t - t_slot * floor(t / t_slot + 1e-6) < t_present) * stimulus(img_in * ms, i) / 255.0 * (max_rate + rate_boost * repeats_in) : Hz
img_in : integer (linked)
repeats_in : integer (linked)
""", threshold="rand() < rate * dt", name=f"{px}input", namespace=ens_ns)
        inp.img_in = b2.linked_var(ctrl, f"{px}item", index=np.zeros(c.n_input, dtype=int))
        inp.repeats_in = b2.linked_var(ctrl, "repeats", index=np.zeros(c.n_input, dtype=int))
        em = excitatory_model(c.exc, c.integration, c.dt)
        im = inhibitory_model(c.inh, c.integration, c.dt)
        extra = "wsum : 1\n" + ("wsumx : 1\n" if with_cross else "")
        exc = b2.NeuronGroup(c.n_exc, em.equations + extra, threshold=em.threshold, reset=em.reset,
                             refractory=em.refractory, method=em.method, name=f"{px}exc",
                             namespace={**em.namespace, **ens_ns})
        inh = b2.NeuronGroup(c.n_exc, im.equations, threshold=im.threshold, reset=im.reset, refractory=im.refractory,
                             method=im.method, name=f"{px}inh", namespace={**im.namespace, **ens_ns})
        exc.v, inh.v = c.exc.v_leak * b2.mV, c.inh.v_leak * b2.mV
        sm = c.stdp.synapse_model()
        syn = b2.Synapses(inp, exc, sm.model, on_pre=sm.on_pre, on_post=sm.on_post, name=f"{px}input_exc",
                          namespace={**sm.namespace, **ens_ns})
        syn.connect()
        if c.input_delay > 0:  # fixed per synapse, drawn in numpy so runtime and standalone agree
            syn.delay = np.random.default_rng([c.seed, 7]).uniform(0.0, c.input_delay, c.n_input * c.n_exc) * ms
        ei = b2.Synapses(exc, inh, on_pre="ge_post += w_ei", name=f"{px}exc_inh", namespace=ens_ns)
        ei.connect(j="i")
        ie = b2.Synapses(inh, exc, on_pre="gi_post += w_ie", name=f"{px}inh_exc", namespace=ens_ns)
        ie.connect(condition="i != j")
        counter = b2.Synapses(exc, ctrl, on_pre=f"{px}count_post += 1", name=f"{px}spike_counter")
        counter.connect()
        # per-slot weight normalisation (D&C normalise after every image), as scheduled operations
        exc.run_regularly("wsum = 0", dt=t_slot, when="start", order=-9, name=f"{px}norm_clear")
        syn.run_regularly("wsum_post += w", dt=t_slot, when="start", order=-8, name=f"{px}norm_sum")
        syn.run_regularly("w = w * (1 - learning + learning * w_target / (wsum_post + 1e-12))",
                          dt=t_slot, when="start", order=-7, name=f"{px}norm_scale")
        objects = [inp, exc, inh, syn, ei, ie, counter]
        if self.cfg.t_rest == 0:  # no rest: explicit reset of the state at each new presentation
            exc.run_regularly("v = exc_v_leak\nge = 0\ngi = 0", dt=t_slot, when="start", order=-6,
                              name=f"{px}exc_reset")
            inh.run_regularly("v = inh_v_leak\nge = 0\ngi = 0", dt=t_slot, when="start", order=-6,
                              name=f"{px}inh_reset")
            trace_vars = ["xpre"] if c.rule == "power_law" else ["pre", "post1", "post2"]
            syn.run_regularly("\n".join(f"{v} = 0" for v in trace_vars), dt=t_slot, when="start", order=-6,
                              name=f"{px}trace_reset")
        self._spikes[n] = b2.SpikeMonitor(exc, name=f"{px}exc_spikes")
        self.groups.update({f"{px}input": inp, f"{px}exc": exc, f"{px}inh": inh})
        self.synapses.update({f"{px}input_exc": syn, f"{px}exc_inh": ei, f"{px}inh_exc": ie})
        return objects + [self._spikes[n]]

    def _build_cross(self, b2, cross: CrossConfig, ns: dict, t_slot) -> list:
        sm = cross.synapse_model()
        objects = []
        for key in self.cross_state:
            src, dst = key.split("_to_")
            pre, post = self.groups[f"{_prefix(src)}exc"], self.groups[f"{_prefix(dst)}exc"]
            syn = b2.Synapses(pre, post, sm.model, on_pre=sm.on_pre, on_post=sm.on_post, name=key,
                              namespace={**sm.namespace, **ns, "wx_target": cross.w_sum})
            syn.connect()
            if cross.w_sum > 0:
                post.run_regularly("wsumx = 0", dt=t_slot, when="start", order=-9, name=f"{key}_norm_clear")
                syn.run_regularly("wsumx_post += w", dt=t_slot, when="start", order=-8, name=f"{key}_norm_sum")
                syn.run_regularly("w = w * (1 - learning + learning * wx_target / (wsumx_post + 1e-12))",
                                  dt=t_slot, when="start", order=-7, name=f"{key}_norm_scale")
            if self.cfg.t_rest == 0:
                syn.run_regularly("xpre = 0", dt=t_slot, when="start", order=-6, name=f"{key}_trace_reset")
            self.synapses[key] = syn
            objects.append(syn)
        return objects

    # ----------------------------------------------------------------------------------------------------
    def _state_args(self, seqs: dict, plastic: bool) -> dict:
        from brian2 import mV

        args, eta = {}, self._non_negative("eta_scale", "")
        for n in self.names:
            px, st = _prefix(n), self.state[n]
            syn, exc = self.synapses[f"{px}input_exc"], self.groups[f"{px}exc"]
            args.update({syn.w: st["w"].ravel(), syn.alive: st["alive"].ravel().astype(float),
                         exc.theta: st["theta"] * mV, syn.learning: float(plastic), exc.plastic: float(plastic),
                         syn.eta_scale: eta, self._seqs[n]: seqs[n]})
        gain = self._non_negative("cross_gain", " (excitatory only)") if self.cross_state else 0.0
        for key, st in self.cross_state.items():
            syn = self.synapses[key]
            args.update({syn.w: st["w"].ravel(), syn.alive: st["alive"].ravel().astype(float),
                         syn.learning: float(plastic), syn.eta_scale: eta, syn.cross_gain: gain})
        return args

    def _non_negative(self, name: str, what: str) -> float:
        """The attribute ``name`` as a float, or a clear error unless finite and >= 0."""
        value = float(getattr(self, name))
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0{what}, got {getattr(self, name)!r}")
        return value

    def _run_chunk(self, seqs: dict, plastic: bool):
        import brian2 as b2

        cfg = self.cfg
        duration = cfg.chunk * cfg.t_slot * b2.ms
        args = self._state_args(seqs, plastic)
        t0 = time.perf_counter()
        if self.backend.standalone:
            if not self._built:
                self.build()
                t0 = time.perf_counter()
            if self.backend.name == "cuda_standalone" and not self.backend.gpu:
                raise RuntimeError("this backend was generated for compilation only (gpu=False); it cannot run")
            os.environ["BIOSNN_SEED"] = str(cfg.seed * 1_000_003 + self.chunks_run)  # read by the binary
            b2.device.run(run_args=args, with_output=False)
        else:
            # as a standalone binary does, every chunk starts from the network's initial state (t = 0, empty
            # monitors) with random numbers seeded from (seed, chunk): a resumed run goes on exactly
            self.net.restore("initial")
            b2.seed(cfg.seed * 1_000_003 + self.chunks_run)
            for var, value in args.items():
                if isinstance(var, b2.TimedArray):
                    var.values[:] = value
                else:
                    var[:] = value
            self.net.run(duration, namespace={})
        self._seen = {k: 0 for k in self._seen}  # every chunk starts with empty monitors
        self._user_seen = {s: [0, 0] for s in self._user_seen}
        seconds = time.perf_counter() - t0
        self.chunks_run += 1
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
                if not (np.array_equal(i, np.repeat(np.arange(n_pre), n_post))
                        and np.array_equal(j, np.tile(np.arange(n_post), n_pre))):
                    raise RuntimeError(f"{syn.name} synapses are not in source-major order; cannot map weights")
            st["w"] = np.asarray(syn.w[:], dtype=float).reshape(n_pre, n_post).copy()
        self._order_checked = True
        for n in self.names:
            exc = self.groups[f"{_prefix(n)}exc"]
            self.state[n]["theta"] = np.asarray(exc.theta[:] / 1e-3, dtype=float).copy()  # volt -> mV

    def _chunk_counts(self):
        """Per accepted presentation of this chunk: spike counts of each ensemble, repeats and slot index."""
        cfg = self.cfg
        t_start = 0.0  # every chunk runs from t = 0
        k = np.asarray(self._slots.k[0])[self._seen["slots"]:]
        reps = np.asarray(self._slots.repeats[0])[self._seen["slots"]:]
        self._seen["slots"] += len(k)
        per_slot = {}
        for n in self.names:
            mon, n_exc = self._spikes[n], self.configs[n].n_exc
            sp_i = np.asarray(mon.i[:])[self._seen[n]:]
            sp_t = np.asarray(mon.t[:])[self._seen[n]:]
            self._seen[n] += len(sp_i)
            slot = np.floor((sp_t - t_start) / (cfg.t_slot * 1e-3) + 1e-6).astype(np.int64)
            keep = (slot >= 0) & (slot < len(k))
            counts = np.bincount(slot[keep] * n_exc + sp_i[keep], minlength=len(k) * n_exc)
            per_slot[n] = counts.reshape(len(k), n_exc)
        last_ok = all(per_slot[n][-1].sum() >= cfg.min_spikes for n in self.names) or reps[-1] >= cfg.max_repeats
        accepted = np.append(k[1:] > k[:-1], last_ok)
        self._collect_user_monitors(t_start)
        self._t_offset += cfg.chunk * cfg.t_slot * 1e-3
        return {n: c[accepted] for n, c in per_slot.items()}, reps[accepted], k[accepted]

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
    def present(self, item_ids, plastic: bool, on_chunk: Callable[[int], None] | None = None,
                progress: bool = True, desc: str = "items") -> Presentation:
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
                    seq = v[pos:pos + chunk]
                    # the last chunk's unused slots show the blank item: no input spikes, so no learning, and
                    # the network only rests there (θ decays as in a rest while plastic: < 1 % over 200 slots)
                    seqs[n] = np.concatenate([seq, np.full(chunk - len(seq), len(self.stimuli[n]), np.int32)])
                (c, r, k), s = self._run_chunk(seqs, plastic)
                done = min(len(r), total - pos)
                if done == 0:
                    raise RuntimeError("a whole chunk passed without an accepted presentation")
                for n in self.names:
                    counts[n][pos:pos + done] = c[n][:done]
                repeats[pos:pos + done] = r[:done]
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

    def __init__(self, cfg: DiehlCookConfig, images: np.ndarray, be: Backend,
                 monitors: tuple[MonitorSpec, ...] = ()):
        images = np.asarray(images)
        if images.ndim != 2 or images.shape[1] != cfg.n_input:
            raise ValueError(f"images must be (n_images, {cfg.n_input}), got {images.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 intensities 0-255, got {images.dtype}")
        super().__init__({"": (cfg, images)}, be, monitors)
        self.images = images

    def _get(key):
        return property(lambda self: self.state[""][key], lambda self, v: self.state[""].__setitem__(key, v))

    w = _get("w")
    alive = _get("alive")
    theta = _get("theta")
    del _get

    def present(self, image_ids, plastic: bool, on_chunk: Callable[[int], None] | None = None,
                progress: bool = True, desc: str = "images") -> Presentation:
        ids = np.asarray(image_ids, dtype=np.int32)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.images)):
            raise IndexError(f"image ids must lie in [0, {len(self.images)})")
        def one(done):  # callbacks see this ensemble's counts as one array, as the result has them
            self.last_chunk.counts = self.last_chunk.counts[""]
            on_chunk(done)

        p = super().present({"": ids}, plastic, one if on_chunk is not None else None, progress, desc)
        p.counts = p.counts[""]
        return p

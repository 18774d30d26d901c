"""Brian2 objects of a Diehl & Cook network, built from its description (:mod:`bioSNN.brian.ensemble`).

Time is cut into *slots* of ``t_present + t_rest``. Everything that D&C do in Python between images happens
inside the simulation, as scheduled operations at the start of each slot (``run_regularly``):

1. the *schedule*: a one-neuron ``controller`` counts the excitatory spikes of the slot that ended; with fewer
   than ``min_spikes`` (in every ensemble) it shows the same item again with the input rate raised by
   ``rate_boost`` (up to ``max_repeats`` times), else it advances to the next item of the sequence (a
   ``TimedArray`` per ensemble);
2. each excitatory neuron's incoming weights are summed and rescaled to ``w_sum`` (while plastic);
3. with ``t_rest = 0`` the state is reset explicitly instead of decaying during the rest.

Input neurons fire with probability ``rate·dt`` where ``rate = pixel/255 · (max_rate + repeats·rate_boost)``
during the presentation and 0 during the rest; pixels come from a ``TimedArray`` holding all items and one
blank item after them (it pads a chunk's unused slots).

Every object runs on one :class:`brian2.Clock` of the network's own (``dt``), so building a network changes no
process-wide Brian2 state (``defaultclock``, seeds); the caller passes the seed of the initial weights and of
the simulator's random numbers explicitly (:mod:`bioSNN.brian.runner`). The exception is ``cuda_standalone``:
brian2cuda 1.0a7's synapse templates name ``defaultclock`` in their code, so there the network runs on the
default clock, whose ``dt`` the :func:`~bioSNN.brian.backend.backend` block puts back when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..monitors import MonitorSpec
from .ensemble import CrossConfig, DiehlCookConfig
from .neurons import branch_free, excitatory_model, inhibitory_model
from .stdp import schedule_trace_update

__all__ = ["BrianNetwork", "build", "prefix"]


def prefix(name: str) -> str:
    """Name prefix of an ensemble's objects: ``image_`` for ``image``, nothing for the unnamed ensemble."""
    return f"{name}_" if name else ""


@dataclass
class BrianNetwork:
    """The Brian2 objects of one network, by role.

    Attributes
    ----------
    network
        The ``brian2.Network`` holding every object.
    clock
        The clock of every object that runs at ``dt``.
    controller
        The schedule's one-neuron group (``k``: index of the current item, ``repeats``, per ensemble ``item`` and
        ``count``, and ``rng_seed``, the seed a standalone binary reseeds its random numbers from).
    sequences
        Per ensemble, the ``TimedArray`` of the chunk's item ids.
    groups, synapses
        By name: ``<e>_input``, ``<e>_exc``, ``<e>_inh``; ``<e>_input_exc``, ``<e>_exc_inh``, ``<e>_inh_exc``,
        cross-modal ``a_to_b`` (prefix ``<e>_`` only for named ensembles).
    exc_spikes
        Per ensemble, the ``SpikeMonitor`` of its excitatory neurons (per-slot counts).
    slots
        ``StateMonitor`` of the controller's ``k`` and ``repeats`` at the start of every slot.
    monitors
        Per :class:`~bioSNN.monitors.MonitorSpec`, the Brian2 monitors recording it.
    """

    network: object
    clock: object
    controller: object
    sequences: dict
    groups: dict = field(default_factory=dict)
    synapses: dict = field(default_factory=dict)
    exc_spikes: dict = field(default_factory=dict)
    slots: object = None
    monitors: dict = field(default_factory=dict)


def build(
    configs: dict[str, DiehlCookConfig],
    stimuli: dict[str, np.ndarray],
    cross: CrossConfig | None = None,
    monitors: tuple[MonitorSpec, ...] = (),
    replay: dict | None = None,
    vectorize: bool = True,
) -> BrianNetwork:
    """Build the network inside the active Brian2 device (see :func:`bioSNN.brian.backend.backend`).

    ``configs`` and ``stimuli`` (``(n_items, n_input)`` uint8) are keyed by ensemble name; timing, repeat rule and
    chunk come from the first ensemble (the caller checks that they agree). ``replay``: per ensemble, input
    spikes ``(steps, indices)`` of one chunk that replace the Poisson input (a ``SpikeGeneratorGroup``), to feed
    another engine's input spike trains to this one."""
    import brian2 as b2
    from brian2 import Hz, ms

    names = list(configs)
    cfg = configs[names[0]]
    from brian2.devices.device import all_devices

    if b2.get_device() is all_devices.get("cuda_standalone"):
        b2.defaultclock.dt = cfg.dt * ms
        clock = b2.defaultclock
    else:
        clock = b2.Clock(dt=cfg.dt * ms, name="network_clock")
    t_slot = cfg.t_slot * ms
    ns = {
        "t_slot": t_slot,
        "t_present": cfg.t_present * ms,
        "rate_boost": cfg.rate_boost * Hz,
        "min_spikes": cfg.min_spikes,
        "max_repeats": cfg.max_repeats,
    }
    seqs = {n: b2.TimedArray(np.zeros(cfg.chunk, np.int32), dt=1 * ms, name=f"{prefix(n)}sequence") for n in names}
    ns.update({f"{prefix(n)}sequence": seqs[n] for n in names})
    ctrl = _controller(b2, names, cfg, ns, clock, t_slot)
    bn = BrianNetwork(None, clock, ctrl, seqs, groups={"controller": ctrl})
    objects = [ctrl]
    for n in names:
        objects += _ensemble(
            b2,
            bn,
            n,
            configs[n],
            stimuli[n],
            ns,
            t_slot,
            with_cross=cross is not None,
            replay=(replay or {}).get(n),
            vectorize=vectorize,
        )
    if cross is not None:
        objects += _cross(b2, bn, cross, names, ns, t_slot, cfg.t_rest)
    bn.slots = b2.StateMonitor(ctrl, ["k", "repeats"], record=0, dt=t_slot, when="start", order=-5, name="slot_monitor")
    objects.append(bn.slots)
    for spec in monitors:
        if spec.population not in bn.groups:
            raise ValueError(f"monitor on unknown population {spec.population!r}; have {list(bn.groups)}")
        g = bn.groups[spec.population]
        mons = []
        if spec.variables:
            mons.append(b2.StateMonitor(g, list(spec.variables), record=list(spec.indices), dt=spec.dt_ms * ms))
        if spec.spikes:
            mons.append(b2.SpikeMonitor(g))
        bn.monitors[spec] = mons
        objects += mons
    bn.network = b2.Network(*objects)
    return bn


def _controller(b2, names, cfg: DiehlCookConfig, ns: dict, clock, t_slot):
    """The schedule: accept the slot that ended or repeat its item (see the module), then show the next item."""
    counts_ok = " and ".join(f"{prefix(n)}count >= min_spikes" for n in names)
    ctrl_vars = "k : integer\nrepeats : integer\nrng_seed : 1\n" + "".join(
        f"{prefix(n)}item : integer\n{prefix(n)}count : integer\n" for n in names
    )
    ctrl = b2.NeuronGroup(1, ctrl_vars, name="controller", namespace=ns, clock=clock)
    ctrl.run_regularly(
        f"accept = int(({counts_ok}) or repeats >= max_repeats)\nk += accept\n"
        "repeats = (repeats + 1) * (1 - accept)\n"
        + "".join(f"{prefix(n)}item = int({prefix(n)}sequence(k * ms) + 0.5)\n{prefix(n)}count = 0\n" for n in names),
        dt=t_slot,
        when="start",
        order=-10,
        name="controller_step",
    )
    ctrl.k, ctrl.repeats = -1, cfg.max_repeats
    return ctrl


def _ensemble(
    b2,
    bn: BrianNetwork,
    n: str,
    c: DiehlCookConfig,
    stimuli: np.ndarray,
    ns: dict,
    t_slot,
    with_cross: bool,
    replay: tuple | None = None,
    vectorize: bool = True,
) -> list:
    from brian2 import Hz, ms

    px, clock, ctrl = prefix(n), bn.clock, bn.controller
    ens_ns = {**ns, "max_rate": c.max_rate * Hz, "w_target": c.w_sum, "w_ei": c.w_exc_inh, "w_ie": c.w_inh_exc}
    # one blank item after the stimuli: it pads a chunk's unused slots (see EnsembleNetwork.present)
    table = np.vstack([stimuli, np.zeros((1, c.n_input), np.uint8)])
    ens_ns["stimulus"] = b2.TimedArray(table, dt=1 * ms, name=f"{px}pixels")
    # traces held per neuron (see bioSNN.brian.stdp) unless each synapse needs its own: delayed transmission, or
    # replayed input spikes (a SpikeGeneratorGroup holds no variables)
    per_neuron = c.traces == "neuron" and c.input_delay == 0 and replay is None
    sm = c.stdp.synapse_model(traces="neuron" if per_neuron else "synapse")
    if replay is not None:  # another engine's input spikes of this chunk
        steps, idx = (np.asarray(a, np.int64) for a in replay)
        inp = b2.SpikeGeneratorGroup(c.n_input, idx, steps * c.dt * ms, name=f"{px}input", clock=clock)
    else:
        inp = _input_group(b2, c, px, ens_ns, sm, clock, t_slot)
        inp.img_in = b2.linked_var(ctrl, f"{px}item", index=np.zeros(c.n_input, dtype=int))
        inp.repeats_in = b2.linked_var(ctrl, "repeats", index=np.zeros(c.n_input, dtype=int))
    em = excitatory_model(c.exc, c.integration, c.dt)
    im = inhibitory_model(c.inh, c.integration, c.dt)
    method = branch_free if vectorize else (lambda m: m)
    extra = "wsum : 1\n" + ("wsumx : 1\n" if with_cross else "")
    exc = b2.NeuronGroup(
        c.n_exc,
        em.equations + extra + sm.post_equations,
        threshold=em.threshold,
        reset=em.reset + ("\n" + sm.post_reset if sm.post_reset else ""),
        refractory=em.refractory,
        method=method(em.method),
        name=f"{px}exc",
        namespace={**em.namespace, **ens_ns},
        clock=clock,
    )
    inh = b2.NeuronGroup(
        c.n_exc,
        im.equations,
        threshold=im.threshold,
        reset=im.reset,
        refractory=im.refractory,
        method=method(im.method),
        name=f"{px}inh",
        namespace={**im.namespace, **ens_ns},
        clock=clock,
    )
    exc.v, inh.v = c.exc.v_leak * b2.mV, c.inh.v_leak * b2.mV
    syn = b2.Synapses(
        inp,
        exc,
        sm.model,
        on_pre=sm.on_pre,
        on_post=sm.on_post,
        name=f"{px}input_exc",
        namespace={**sm.namespace, **ens_ns},
        clock=clock,
    )
    syn.connect()
    if c.input_delay > 0:  # fixed per synapse, drawn in numpy so runtime and standalone agree
        syn.delay = np.random.default_rng([c.seed, 7]).uniform(0.0, c.input_delay, c.n_input * c.n_exc) * ms
    ei = b2.Synapses(exc, inh, on_pre="ge_post += w_ei", name=f"{px}exc_inh", namespace=ens_ns, clock=clock)
    ei.connect(j="i")
    ie = b2.Synapses(inh, exc, on_pre="gi_post += w_ie", name=f"{px}inh_exc", namespace=ens_ns, clock=clock)
    ie.connect(condition="i != j")
    counter = b2.Synapses(exc, ctrl, on_pre=f"{px}count_post += 1", name=f"{px}spike_counter", clock=clock)
    counter.connect()
    # per-slot weight normalisation (D&C normalise after every image), as scheduled operations
    exc.run_regularly("wsum = 0", dt=t_slot, when="start", order=-9, name=f"{px}norm_clear")
    syn.run_regularly("wsum_post += w", dt=t_slot, when="start", order=-8, name=f"{px}norm_sum")
    syn.run_regularly(
        "w = w * (1 - learning + learning * w_target / (wsum_post + 1e-12))",
        dt=t_slot,
        when="start",
        order=-7,
        name=f"{px}norm_scale",
    )
    objects = [inp, exc, inh, syn, ei, ie, counter]
    if c.t_rest == 0:  # no rest: explicit reset of the state at each new presentation
        exc.run_regularly("v = exc_v_leak\nge = 0\ngi = 0", dt=t_slot, when="start", order=-6, name=f"{px}exc_reset")
        inh.run_regularly("v = inh_v_leak\nge = 0\ngi = 0", dt=t_slot, when="start", order=-6, name=f"{px}inh_reset")
        for where, names in sm.trace_vars.items():
            owner = {"synapse": syn, "pre": inp, "post": exc}[where]
            owner.run_regularly(
                "\n".join(f"{v} = 0" for v in names),
                dt=t_slot,
                when="start",
                order=-6,
                name=f"{px}trace_reset" + ("" if where == "synapse" else f"_{where}"),
            )
    bn.exc_spikes[n] = b2.SpikeMonitor(exc, name=f"{px}exc_spikes")
    bn.groups.update({f"{px}input": inp, f"{px}exc": exc, f"{px}inh": inh})
    bn.synapses.update({f"{px}input_exc": syn, f"{px}exc_inh": ei, f"{px}inh_exc": ie})
    return objects + [bn.exc_spikes[n]]


# the rate of input neuron i during the presentation part of a slot (0 during the rest)
_RATE = "stimulus(img_in * ms, i) / 255.0 * (max_rate + rate_boost * repeats_in)"
# steps until the next spike of a per-step Bernoulli(p_spike) process, counting the current step as the first:
# the inverse of its geometric distribution, P(gap <= k) = 1 - (1 - p)^k. The 1e-30 keeps a silent input
# (p = 0) at a finite, astronomically late step and is far below the resolution of log(1 - p) for any p > 0;
# gaps are capped at 1e9 steps (5·10^5 s at dt 0.5 ms) before ``ceil``, which is an int32 on the numpy backend.
_GAP = "clip(ceil(clip(log(1 - rand()) / (log(1 - p_spike) - 1e-30), 0, 1e9)), 1, 1e9)"


def _input_group(b2, c: DiehlCookConfig, px: str, ens_ns: dict, sm, clock, t_slot):
    """The Poisson input neurons: each fires with probability ``rate·dt`` in every step of the presentation.

    ``poisson="per_step"`` draws a uniform number per neuron and step (the customary form); ``"intervals"``
    draws, per neuron, the number of steps to its next spike — at the start of each slot and after each of its
    spikes — from the geometric distribution of that same per-step process (memoryless, so redrawing when the
    rate changes is exact). The spike trains have the same distribution; the intervals form draws ~2,300 numbers
    per MNIST image instead of ~780,000 and evaluates no rate in the steps between spikes."""
    eqs = "img_in : integer (linked)\nrepeats_in : integer (linked)\n" + sm.pre_equations
    ns = {**ens_ns, **sm.pre_namespace}
    if c.poisson == "per_step":
        eqs += f"rate = int(t - t_slot * floor(t / t_slot + 1e-6) < t_present) * {_RATE} : Hz\n"
        inp = b2.NeuronGroup(
            c.n_input,
            eqs,
            threshold="rand() < rate * dt",
            reset=sm.pre_reset or None,
            name=f"{px}input",
            namespace=ns,
            clock=clock,
        )
    else:
        ns["present_steps"] = int(round(c.t_present / c.dt))
        eqs += "p_spike : 1\nnext_step : 1\nend_step : integer\n"
        reset = f"next_step = t_in_timesteps + {_GAP}\n" + sm.pre_reset
        inp = b2.NeuronGroup(
            c.n_input,
            eqs,
            threshold="t_in_timesteps >= next_step and t_in_timesteps < end_step",
            reset=reset,
            name=f"{px}input",
            namespace=ns,
            clock=clock,
        )
        inp.next_step = 1e18  # no spike before the slot's first draw
        # the slot's first draw, after the controller has chosen the item and the repeat count (order -10)
        inp.run_regularly(
            f"p_spike = clip({_RATE} * dt, 0, 1 - 1e-12)\nend_step = t_in_timesteps + present_steps\n"
            f"next_step = t_in_timesteps - 1 + {_GAP}",
            dt=t_slot,
            when="start",
            order=-4,
            name=f"{px}input_draw",
        )
    if sm.pre_reset:
        schedule_trace_update(inp)
    return inp


def _cross(b2, bn: BrianNetwork, cross: CrossConfig, names: list[str], ns: dict, t_slot, t_rest: float) -> list:
    """Plastic cross-modal synapses between the two ensembles' excitatory populations, both directions."""
    sm = cross.synapse_model()
    objects = []
    a, b = names
    for src, dst in ((a, b), (b, a)):
        key = f"{src}_to_{dst}"
        pre, post = bn.groups[f"{prefix(src)}exc"], bn.groups[f"{prefix(dst)}exc"]
        syn = b2.Synapses(
            pre,
            post,
            sm.model,
            on_pre=sm.on_pre,
            on_post=sm.on_post,
            name=key,
            namespace={**sm.namespace, **ns, "wx_target": cross.w_sum},
            clock=bn.clock,
        )
        syn.connect()
        if cross.w_sum > 0:
            post.run_regularly("wsumx = 0", dt=t_slot, when="start", order=-9, name=f"{key}_norm_clear")
            syn.run_regularly("wsumx_post += w", dt=t_slot, when="start", order=-8, name=f"{key}_norm_sum")
            syn.run_regularly(
                "w = w * (1 - learning + learning * wx_target / (wsumx_post + 1e-12))",
                dt=t_slot,
                when="start",
                order=-7,
                name=f"{key}_norm_scale",
            )
        if t_rest == 0:
            syn.run_regularly("xpre = 0", dt=t_slot, when="start", order=-6, name=f"{key}_trace_reset")
        bn.synapses[key] = syn
        objects.append(syn)
    return objects

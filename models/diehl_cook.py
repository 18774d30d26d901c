"""The trained (frozen) Diehl & Cook network in PyTorch: the Brian2 engine's equations and schedule, batched.

After STDP training in Brian2, labelling and testing only present images to a fixed network: excitatory
conductance LIF neurons with their trained adaptive thresholds θ (now constant), one inhibitory partner each,
exc → inh one-to-one and inh → exc all-but-self, and the input weights (pruned synapses are 0, quantized ones
on their device levels). :class:`FrozenDiehlCook` simulates exactly what :mod:`bioSNN.brian.builder` builds,
step by step in float64 on the Brian2 engine's ``dt``:

- one step is Brian2's schedule: state update (exponential Euler of the membrane with the conductances held at
  their step-start values, scaled by the ``step_mean`` factors; exact decay of ``ge``, ``gi``; the membrane
  frozen while refractory), thresholds (excitatory: ``v > θ − θ_offset + v_threshold`` and more than
  ``spike_gap`` since the last spike; both: not refractory), synaptic events (input → ``ge`` of exc, exc →
  ``ge`` of inh, inh → ``gi`` of exc), resets;
- slots of ``t_present + t_rest``; at the start of every slot the controller accepts the slot that ended (at
  least ``min_spikes`` excitatory spikes, or ``max_repeats`` reached) or shows the same image again with its
  input rate raised by ``rate_boost``; with ``t_rest = 0`` the state is reset explicitly;
- input neuron i fires at a step with probability ``pixel_i/255 · (max_rate + repeats·rate_boost) · dt`` during
  the presentation.

:meth:`FrozenDiehlCook.coupled` builds the multimodal network: named ensembles (each the network above) on one
schedule (an item is accepted when *every* ensemble fired ``min_spikes``), joined by cross-modal excitatory
projections whose spikes add ``cross_gain · w`` to the target's excitatory conductance in the same step; what
adds to one conductance is added in the order Brian2 runs its pathways (sorted by name).

Two kernels step the same equations: ``fused`` (the default on the CPU) runs each slot of every stream in one
compiled C loop (``diehl_cook_kernel.c``, built on first use by :mod:`bioSNN.models._kernel`; a stream's state
stays in cache, exp on vector lanes, streams on OpenMP threads), ``tensor`` steps all streams with tensor
operations (any device). Fed the same input spikes they give the same spikes (tests).

Images are batched as independent *streams*: each stream shows its own run of images one after another from the
initial state, as one Brian2 chunk does. With one stream per Brian2 chunk and the same input spikes
(``input_spikes``, or those recorded with ``record=True``) the two engines compute the same spikes up to the
rounding of sums (see the tests and ``experiments/results/engine_equality_n400``). Streams are what the tensor
kernel needs to be fast (many side by side) and what spreads the fused kernel over cores; each one starts its
first image from the rest state instead of from the previous image's decayed one, so the experiments use one
stream per ``chunk`` images, as many fresh starts as the Brian2 engine makes.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from bioSNN.brian.ensemble import DiehlCookConfig

__all__ = ["FrozenDiehlCook", "Streams"]

MS = 1e-3  # Brian2's ms in seconds; parameters are multiplied as Brian2 multiplies them


@dataclass
class Streams:
    """What :meth:`FrozenDiehlCook.present` produced: ``counts`` ``(n_items, n_exc)`` of each item's accepted
    presentation, ``repeats`` ``(n_items,)``, ``slots`` simulated per stream, and, when recorded, per stream the
    input spikes ``(step, input index)`` and the excitatory spikes ``(step, neuron)`` (steps from the stream's
    start); ``recordings``: per :class:`~bioSNN.monitors.MonitorSpec` asked for, the
    :class:`~bioSNN.monitors.Recording` of the first stream (as the Brian2 engine records a run). For a coupled
    network ``counts``, ``input_spikes`` and ``exc_spikes`` are dicts by ensemble name."""

    counts: np.ndarray
    repeats: np.ndarray
    slots: int
    input_spikes: list | None = None
    exc_spikes: list | None = None
    recordings: dict = field(default_factory=dict)


@dataclass
class _Ensemble:
    """One ensemble's constants as both kernels use them (SI units)."""

    name: str
    cfg: DiehlCookConfig
    w: torch.Tensor  # (n_input, n_exc)
    theta: torch.Tensor  # V
    v_fire: torch.Tensor  # V: theta - theta_offset + v_threshold, as Brian2 evaluates it
    mean: dict  # step_mean conductance factors per population ("e", "i")
    ref_e: int
    ref_i: int
    # what adds to the excitatory conductance, in Brian2's order (its pathways sorted by name): "input" or the
    # index of a cross projection
    sources: list = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{self.name}_" if self.name else ""


@dataclass
class _Cross:
    name: str  # "<src>_to_<dst>"
    src: int
    dst: int
    w: torch.Tensor  # (n_src, n_dst)


class FrozenDiehlCook:
    """A trained Diehl & Cook network (config ``cfg``; input weights ``w`` ``(n_input, n_exc)``, θ in mV) for
    presenting images without learning. :meth:`coupled` builds several named ensembles joined by cross-modal
    projections (the multimodal network)."""

    def __init__(self, cfg: DiehlCookConfig, w: np.ndarray, theta_mv: np.ndarray, device: str | torch.device = "cpu"):
        self._setup({"": (cfg, w, theta_mv)}, {}, 0.0, device)

    @classmethod
    def coupled(
        cls,
        ensembles: dict[str, tuple[DiehlCookConfig, np.ndarray, np.ndarray]],
        cross: dict[str, np.ndarray] | None = None,
        cross_gain: float = 1.0,
        device: str | torch.device = "cpu",
    ) -> FrozenDiehlCook:
        """Named ensembles (``name: (cfg, w, theta_mv)``, e.g. ``image`` and ``audio``) joined by cross-modal
        excitatory projections ``cross`` (``"<src>_to_<dst>": w`` ``(n_src exc, n_dst exc)``): each excitatory
        spike of ``src`` adds ``cross_gain · w`` to the excitatory conductance of ``dst``, as
        :class:`~bioSNN.brian.network.EnsembleNetwork` transmits. Timing and repeat rule are the first
        ensemble's (they must agree)."""
        net = cls.__new__(cls)
        net._setup(ensembles, dict(cross or {}), cross_gain, device)
        return net

    def _setup(self, ensembles: dict, cross: dict, cross_gain: float, device) -> None:
        if not ensembles:
            raise ValueError("a network needs at least one ensemble")
        if len(ensembles) > 1 and "" in ensembles:
            raise ValueError("ensembles of a coupled network need names")
        from bioSNN.models._kernel import MAX_CROSS, MAX_ENS

        if len(ensembles) > MAX_ENS or len(cross) > MAX_CROSS:
            raise ValueError(
                f"at most {MAX_ENS} ensembles and {MAX_CROSS} cross projections, got {len(ensembles)} and {len(cross)}"
            )
        self.device = torch.device(device)
        f64 = dict(dtype=torch.float64, device=self.device)
        first = next(iter(ensembles.values()))[0]
        self.cfg = first
        self.dt = first.dt * MS
        self.steps_per_slot = int(round(first.t_slot / first.dt))
        self.ens: list[_Ensemble] = []
        for name, (cfg, w, theta_mv) in ensembles.items():
            for key in ("dt", "t_present", "t_rest", "min_spikes", "max_repeats", "rate_boost"):
                if getattr(cfg, key) != getattr(first, key):
                    raise ValueError(
                        f"ensemble {name!r}: {key} {getattr(cfg, key)} differs from the first "
                        f"ensemble's {getattr(first, key)}; ensembles share one schedule"
                    )
            w, theta_mv = np.asarray(w, np.float64), np.asarray(theta_mv, np.float64)
            if w.shape != (cfg.n_input, cfg.n_exc) or theta_mv.shape != (cfg.n_exc,):
                raise ValueError(
                    f"{f'ensemble {name!r}: ' if name else ''}weights {w.shape} and theta "
                    f"{theta_mv.shape} do not fit a {cfg.n_input}x{cfg.n_exc} network"
                )
            e, i = cfg.exc, cfg.inh
            theta = torch.as_tensor(theta_mv * MS, **f64)
            mean = {}
            for pop, p in (("e", e), ("i", i)):
                if cfg.integration == "step_mean":  # computed as bioSNN.brian.neurons does (in ms)
                    mean[pop] = (
                        p.tau_ge / cfg.dt * (1 - math.exp(-cfg.dt / p.tau_ge)),
                        p.tau_gi / cfg.dt * (1 - math.exp(-cfg.dt / p.tau_gi)),
                    )
                elif cfg.integration == "exponential_euler":
                    mean[pop] = (1.0, 1.0)
                else:
                    raise ValueError(
                        f"integration {cfg.integration!r}: the PyTorch engine runs exponential_euler and step_mean"
                    )
            if cfg.input_delay > 0:
                raise ValueError(
                    f"input_delay {cfg.input_delay} ms: the PyTorch engine runs networks without transmission delays"
                )
            self.ens.append(
                _Ensemble(
                    name,
                    cfg,
                    torch.as_tensor(w, **f64),
                    theta,
                    theta - e.theta_offset * MS + e.v_threshold * MS,
                    mean,
                    int((e.refractory * MS + 1e-3 * self.dt) / self.dt),  # Brian2's timestep(refractory, dt)
                    int((i.refractory * MS + 1e-3 * self.dt) / self.dt),
                )
            )
        index = {x.name: k for k, x in enumerate(self.ens)}
        self.cross: list[_Cross] = []
        for key, w in cross.items():
            src, sep, dst = key.partition("_to_")
            if not sep or src not in index or dst not in index or src == dst:
                raise ValueError(
                    f"cross projection {key!r}: name it '<src>_to_<dst>' with two of the ensembles {list(index)}"
                )
            w = np.asarray(w, np.float64)
            shape = (self.ens[index[src]].cfg.n_exc, self.ens[index[dst]].cfg.n_exc)
            if w.shape != shape:
                raise ValueError(f"cross projection {key!r}: weights {w.shape}, the ensembles need {shape}")
            self.cross.append(_Cross(key, index[src], index[dst], torch.as_tensor(w, **f64)))
        self.cross_gain = float(cross_gain)
        for k, x in enumerate(self.ens):  # Brian2 runs a step's pathways sorted by name
            named = [(f"{x.prefix}input_exc_pre", "input")] + [
                (f"{c.name}_pre", c_idx) for c_idx, c in enumerate(self.cross) if c.dst == k
            ]
            x.sources = [src for _, src in sorted(named)]

    @property
    def names(self) -> list[str]:
        return [x.name for x in self.ens]

    @property
    def coupled_net(self) -> bool:
        return self.ens[0].name != ""

    # the single ensemble's arrays (the network of __init__)
    @property
    def w(self) -> torch.Tensor:
        return self.ens[0].w

    @property
    def theta(self) -> torch.Tensor:
        return self.ens[0].theta

    @property
    def v_fire(self) -> torch.Tensor:
        return self.ens[0].v_fire

    @property
    def monitorable(self) -> dict[str, tuple[str, ...]]:
        """Populations a :class:`~bioSNN.monitors.MonitorSpec` may name, with their variables (Brian2's names)."""
        return {f"{x.prefix}{pop}": var for x in self.ens for pop, var in MONITORABLE.items()}

    @classmethod
    def from_bundle(cls, bundle, cfg: DiehlCookConfig | None = None, device="cpu") -> FrozenDiehlCook:
        """The network of a ``diehl_cook`` or ``multimodal_stdp`` bundle (see :mod:`bioSNN.brian.bundle`), from
        the configuration the bundle records (``extra["network"]``; ``cfg`` overrides it for a single ensemble);
        a multimodal network's cross-modal gain is the one its projections record."""
        from bioSNN.brian.bundle import state_from_bundle
        from bioSNN.config import apply_overrides

        recs = bundle.extra.get("network", {})
        if cfg is not None:
            recs = {"": None}
        if not recs:
            raise ValueError(f"bundle {bundle.name!r} records no network configuration; pass cfg=")
        configs = {n: cfg if rec is None else apply_overrides(DiehlCookConfig(), rec) for n, rec in recs.items()}
        state, cross_state, _ = state_from_bundle(bundle, configs)
        if list(configs) == [""]:
            c = configs[""]
            return cls(c, state[""]["w"], state[""]["theta"], device)
        gains = {float(p.params["gain"]["value"]) for p in bundle.projections if p.name in cross_state}
        if len(gains) > 1:
            raise ValueError(f"bundle {bundle.name!r}: its cross projections record different gains {sorted(gains)}")
        return cls.coupled(
            {n: (configs[n], state[n]["w"], state[n]["theta"]) for n in configs},
            {k: v["w"] for k, v in cross_state.items()},
            gains.pop() if gains else 0.0,
            device,
        )

    # ---------------------------------------------------------------------------------------------- stepping
    def _membrane(self, v, ge, gi, nr, p, mean):
        """Brian2's exponential-Euler update of ``v`` (its generated expression, term by term), frozen while
        refractory."""
        tau = p.tau * MS
        e_exc, e_inh, v_leak = p.e_exc * MS, p.e_inh * MS, p.v_leak * MS
        ge_mean, gi_mean = mean
        ba = (e_exc * ge_mean * ge / tau + e_inh * gi_mean * gi / tau + v_leak / tau) / (
            -ge_mean * ge / tau - gi_mean * gi / tau - 1.0 / tau
        )
        new = -ba + (ba + v) * torch.exp(self.dt * (-ge_mean * ge / tau - gi_mean * gi / tau - 1.0 / tau))
        return torch.where(nr, new, v)

    def present(
        self,
        images,
        item_ids=None,
        streams: int = 1,
        generator: torch.Generator | None = None,
        input_spikes=None,
        record: bool = False,
        max_slots: int | None = None,
        kernel: str = "auto",
        threads: int | None = None,
        monitors: tuple = (),
    ) -> Streams:
        """Show ``images[item_ids]`` (uint8 ``(n, n_input)``; all images by default), split into ``streams``
        contiguous runs simulated side by side; returns per-item counts and repeats. A coupled network takes
        ``images`` and ``item_ids`` per ensemble (dicts by name; item k of every ensemble is shown together) and
        returns counts, input and excitatory spikes per ensemble.

        Input spikes are drawn with ``generator``, or taken from ``input_spikes`` (one ``(steps, indices)`` pair per
        stream, e.g. recorded before with ``record=True``; per ensemble for a coupled network). ``max_slots``
        bounds the slots of a stream (default: every image shown ``max_repeats + 1`` times).

        ``kernel``: ``"tensor"`` steps all streams with tensor operations (any device; float64 uniforms from
        ``generator`` for the lit (stream, input) pairs of a step); ``"fused"`` runs each slot of every stream in
        one compiled CPU loop (:mod:`bioSNN.models._kernel`; one xoshiro256+ generator per stream, seeded from
        ``generator``); ``"auto"``: fused on the CPU where a C compiler works. The two draw different input spikes
        from the same generator; replayed spikes give both the same result.
        ``threads``: the fused kernel's OpenMP threads (default ``torch.get_num_threads()``; streams are split
        between them, the result does not depend on their number).

        ``monitors``: :class:`~bioSNN.monitors.MonitorSpec` s of the populations ``input`` (spikes), ``exc``
        (``v``, ``ge``, ``gi``, ``theta``; spikes) and ``inh`` (``v``, ``ge``, ``gi``; spikes) — ``<name>_exc``
        etc. in a coupled network, as Brian2 names them — recorded from the first stream as Brian2's monitors
        record (state at the start of a step, every ``dt_ms``, SI units; only inside the window). They run on the
        tensor kernel."""
        cfg, ens = self.cfg, self.ens
        if self.coupled_net:
            if not isinstance(images, dict) or set(images) != set(self.names):
                raise ValueError(f"a coupled network takes images per ensemble: a dict with keys {self.names}")
            if item_ids is not None and (not isinstance(item_ids, dict) or set(item_ids) != set(self.names)):
                raise ValueError(f"a coupled network takes item_ids per ensemble: a dict with keys {self.names}")
            imgs = [np.asarray(images[x.name]) for x in ens]
            id_list = [None if item_ids is None else item_ids[x.name] for x in ens]
            if input_spikes is not None:
                if not isinstance(input_spikes, dict) or set(input_spikes) != set(self.names):
                    raise ValueError(f"input_spikes of a coupled network: a dict with keys {self.names}")
                input_spikes = [input_spikes[x.name] for x in ens]
        else:
            imgs, id_list = [np.asarray(images)], [item_ids]
            input_spikes = None if input_spikes is None else [input_spikes]
        for x, im in zip(ens, imgs):
            if im.dtype != np.uint8 or im.ndim != 2 or im.shape[1] != x.cfg.n_input:
                raise ValueError(
                    f"{f'{x.name} ' if x.name else ''}images must be uint8 (n, {x.cfg.n_input}), "
                    f"got {im.dtype} {im.shape}"
                )
        id_list = [np.arange(len(im)) if ids is None else np.asarray(ids, np.int64) for im, ids in zip(imgs, id_list)]
        n = len(id_list[0])
        if any(len(ids) != n for ids in id_list):
            raise ValueError(f"item_ids of the ensembles differ in length: {[len(i) for i in id_list]}")
        if kernel not in ("auto", "tensor", "fused"):
            raise ValueError(f"kernel {kernel!r}: choose auto, tensor or fused")
        monitors = tuple(monitors)
        known_pops = self.monitorable
        for spec in monitors:
            known = known_pops.get(spec.population)
            if known is None:
                raise ValueError(f"monitor on unknown population {spec.population!r}; have {sorted(known_pops)}")
            if set(spec.variables) - set(known):
                raise ValueError(
                    f"population {spec.population!r} has no variable(s) "
                    f"{sorted(set(spec.variables) - set(known))}; it has {list(known)}"
                )
            every = spec.dt_ms / cfg.dt
            if abs(every - round(every)) > 1e-9:
                raise ValueError(f"monitor dt_ms={spec.dt_ms} is not a multiple of the time step {cfg.dt} ms")
        if monitors:
            if kernel == "fused":
                raise ValueError("monitors run on the tensor kernel (kernel='tensor' or 'auto')")
            kernel = "tensor"
        if kernel != "tensor" and self.device.type == "cpu":
            from bioSNN.models import _kernel

            fn = _kernel.load()
            if fn is None and kernel == "fused":
                raise RuntimeError("the fused kernel could not be built: no working C compiler (set CC)")
        else:
            fn = None
            if kernel == "fused":
                raise ValueError(f"the fused kernel runs on the CPU, the network is on {self.device}")
        streams = max(1, min(int(streams), n))
        bounds = np.linspace(0, n, streams + 1).round().astype(int)
        L = int(np.diff(bounds).max())
        seqs = []
        for ids in id_list:
            seq = np.full((streams, L), -1, np.int64)  # -1: nothing left to show (a blank image)
            for s in range(streams):
                seq[s, : bounds[s + 1] - bounds[s]] = ids[bounds[s] : bounds[s + 1]]
            seqs.append(seq)
        if input_spikes is not None and any(len(inp) != streams for inp in input_spikes):
            raise ValueError(f"input_spikes hold {[len(inp) for inp in input_spikes]} streams, {streams} asked for")
        B = streams
        sim = (
            _Fused(self, B, fn, generator, input_spikes, record, threads)
            if fn is not None
            else _Tensor(self, B, generator, input_spikes, record, monitors)
        )
        k = np.full(B, -1)
        repeats = np.full(B, cfg.max_repeats)
        counts = [np.zeros((n, x.cfg.n_exc), np.int32) for x in ens]
        reps = np.zeros(n, np.int32)
        item_pos = bounds[:-1]
        pix = [np.vstack([im, np.zeros((1, x.cfg.n_input), np.uint8)]) for x, im in zip(ens, imgs)]
        budget = max_slots or L * (cfg.max_repeats + 1) + 1
        slots = 0
        sc = [np.zeros((B, x.cfg.n_exc), np.int64) for x in ens]
        while slots < budget:
            # ---- slot start: the controller (accept when every ensemble fired enough, or repeat), then the items
            accept = np.all([c.sum(1) >= cfg.min_spikes for c in sc], axis=0) | (repeats >= cfg.max_repeats)
            for s in np.flatnonzero(accept & (k >= 0) & (k < L)):
                if seqs[0][s, k[s]] >= 0:
                    for e in range(len(ens)):
                        counts[e][item_pos[s] + k[s]] = sc[e][s]
                    reps[item_pos[s] + k[s]] = repeats[s]
            k = k + accept
            repeats = (repeats + 1) * (1 - accept)
            if np.all(k >= np.diff(bounds)):
                break
            p_fire = []
            for x, seq, px in zip(ens, seqs, pix):
                item = np.where(k < L, seq[np.arange(B), np.minimum(k, L - 1)], -1)
                # per-step firing probability of every input, as Brian2's PoissonGroup computes rates * dt
                p_fire.append(
                    px[np.where(item >= 0, item, len(px) - 1)]
                    / 255.0
                    * (x.cfg.max_rate + cfg.rate_boost * repeats)[:, None]
                    * self.dt
                )
            if cfg.t_rest == 0:
                sim.reset_state()
            sc = sim.slot(slots * self.steps_per_slot, p_fire, active=k < np.diff(bounds))
            slots += 1
        rec_in, rec_ex = sim.recorded()
        recordings = getattr(sim, "recordings", lambda: {})()
        if not self.coupled_net:
            return Streams(
                counts[0],
                reps,
                slots,
                None if rec_in is None else rec_in[0],
                None if rec_ex is None else rec_ex[0],
                recordings,
            )

        def by_name(per):
            return None if per is None else {x.name: p for x, p in zip(ens, per)}

        return Streams(by_name(counts), reps, slots, by_name(rec_in), by_name(rec_ex), recordings)


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def _pairs(rec):
    return [(np.array([a for a, _ in r], np.int64), np.array([b for _, b in r], np.int64)) for r in rec]


class _Tensor:
    """All streams stepped together with tensor operations (the reference kernel; any device). ``input_spikes``:
    per ensemble, per stream ``(steps, indices)``."""

    def __init__(self, net: FrozenDiehlCook, B: int, generator, input_spikes, record, monitors=()):
        dev = net.device
        self.net, self.B, self.generator, self.record = net, B, generator, record
        self.monitors = {
            spec: {"t": [], "state": {v: [] for v in spec.variables}, "i": [], "st": []} for spec in monitors
        }
        self.f64 = dict(dtype=torch.float64, device=dev)
        E = len(net.ens)
        # Brian2's lastspike before any spike (s)
        self.last_e = [torch.full((B, x.cfg.n_exc), -10000.0, **self.f64) for x in net.ens]
        self.last_i = [torch.full((B, x.cfg.n_exc), -10000.0, **self.f64) for x in net.ens]
        self.reset_state()
        self.rec_in = [[[] for _ in range(B)] for _ in range(E)] if record else None
        self.rec_ex = [[[] for _ in range(B)] for _ in range(E)] if record else None
        self.decay = [
            {
                p: (math.exp(-net.dt / (q.tau_ge * MS)), math.exp(-net.dt / (q.tau_gi * MS)))
                for p, q in (("e", x.cfg.exc), ("i", x.cfg.inh))
            }
            for x in net.ens
        ]
        self.cross_w = [net.cross_gain * c.w for c in net.cross]  # Brian2 adds cross_gain * w per spike
        self.replay = None
        if input_spikes is not None:  # all streams' spikes by step (stream, then recorded order within a step)
            self.replay = []
            for per_stream in input_spikes:
                r_step = np.concatenate([np.asarray(st, np.int64) for st, _ in per_stream])
                r_b = np.concatenate([np.full(len(st), s, np.int64) for s, (st, _) in enumerate(per_stream)])
                r_i = np.concatenate([np.asarray(ix, np.int64) for _, ix in per_stream])
                order = np.argsort(r_step, kind="stable")
                self.replay.append(
                    (r_step[order], torch.as_tensor(r_b[order], device=dev), torch.as_tensor(r_i[order], device=dev))
                )

    def reset_state(self):
        B, f64 = self.B, self.f64
        self.v_e = [torch.full((B, x.cfg.n_exc), x.cfg.exc.v_leak * MS, **f64) for x in self.net.ens]
        self.v_i = [torch.full((B, x.cfg.n_exc), x.cfg.inh.v_leak * MS, **f64) for x in self.net.ens]
        self.ge_e, self.gi_e, self.ge_i, self.gi_i = (
            [torch.zeros(B, x.cfg.n_exc, **f64) for x in self.net.ens] for _ in range(4)
        )

    def slot(self, step0: int, p_fire: list, active: np.ndarray) -> list:
        net, cfg = self.net, self.net.cfg
        dt, record = net.dt, self.record
        t_slot, t_present = cfg.t_slot * MS, cfg.t_present * MS
        ens = net.ens
        v_e, v_i, ge_e, gi_e, ge_i, gi_i = self.v_e, self.v_i, self.ge_e, self.gi_e, self.ge_i, self.gi_i
        last_e, last_i = self.last_e, self.last_i
        # only lit pixels can fire: draw for those (stream, input) pairs alone
        lit = []
        for pf in p_fire:
            pf = torch.as_tensor(pf, **self.f64)
            lb, li = torch.nonzero(pf > 0, as_tuple=True)
            lit.append((lb, li, pf[lb, li]))
        slot_counts = [torch.zeros(self.B, x.cfg.n_exc, dtype=torch.int64, device=net.device) for x in ens]
        for step in range(step0, step0 + net.steps_per_slot):
            t = step * dt
            if self.monitors:  # state at the start of the step, as Brian2's StateMonitor reads it
                self._sample(
                    step,
                    {
                        f"{x.prefix}{pop}": st
                        for e, x in enumerate(ens)
                        for pop, st in (
                            ("exc", {"v": v_e[e], "ge": ge_e[e], "gi": gi_e[e]}),
                            ("inh", {"v": v_i[e], "ge": ge_i[e], "gi": gi_i[e]}),
                        )
                    },
                )
            presenting = (t - t_slot * math.floor(t / t_slot + 1e-6)) < t_present
            s_e, s_i, inputs = [], [], []
            for e, x in enumerate(ens):
                p_e, p_i, decay = x.cfg.exc, x.cfg.inh, self.decay[e]
                # ---- groups: state update (old conductances), conductance decay
                nr_e = ((t - last_e[e] + 1e-3 * dt) / dt).floor() >= x.ref_e
                nr_i = ((t - last_i[e] + 1e-3 * dt) / dt).floor() >= x.ref_i
                v_e[e] = net._membrane(v_e[e], ge_e[e], gi_e[e], nr_e, p_e, x.mean["e"])
                v_i[e] = net._membrane(v_i[e], ge_i[e], gi_i[e], nr_i, p_i, x.mean["i"])
                ge_e[e], gi_e[e] = ge_e[e] * decay["e"][0], gi_e[e] * decay["e"][1]
                ge_i[e], gi_i[e] = ge_i[e] * decay["i"][0], gi_i[e] * decay["i"][1]
                # ---- thresholds (the input's too: this step's input spikes as (stream, input) pairs)
                if self.replay is not None:
                    r = self.replay[e]
                    lo, hi = np.searchsorted(r[0], [step, step + 1])
                    inputs.append((r[1][lo:hi], r[2][lo:hi]))
                elif presenting and len(lit[e][2]):
                    lb, li, lp = lit[e]
                    fire = torch.rand(len(lp), generator=self.generator, **self.f64) < lp
                    inputs.append((lb[fire], li[fire]))
                else:
                    inputs.append(None)
                s_e.append((v_e[e] > x.v_fire) & ((t - last_e[e]) > p_e.spike_gap * MS) & nr_e)
                s_i.append((v_i[e] > p_i.v_threshold * MS) & nr_i)
                last_e[e] = torch.where(s_e[e], torch.full_like(last_e[e], t), last_e[e])
                last_i[e] = torch.where(s_i[e], torch.full_like(last_i[e], t), last_i[e])
            # ---- synapses: onto each excitatory conductance source by source, in Brian2's order
            for e, x in enumerate(ens):
                for src in x.sources:
                    if src == "input":
                        if inputs[e] is not None and len(inputs[e][0]):
                            # each spike adds its weight row, in input order within a stream (as Brian2 does)
                            in_b, in_i = inputs[e]
                            ge_e[e].index_add_(0, in_b, x.w[in_i])
                            if record:
                                for s, ix in zip(in_b.tolist(), in_i.tolist()):
                                    self.rec_in[e][s].append((step, ix))
                    else:
                        c = net.cross[src]
                        sb, si = torch.nonzero(s_e[c.src], as_tuple=True)  # stream-major, neurons ascending
                        if len(sb):
                            ge_e[e].index_add_(0, sb, self.cross_w[src][si])
            for e, x in enumerate(ens):
                fe, fi = s_e[e].to(torch.float64), s_i[e].to(torch.float64)
                ge_i[e] = ge_i[e] + x.cfg.w_exc_inh * fe
                gi_e[e] = gi_e[e] + x.cfg.w_inh_exc * (fi.sum(1, keepdim=True) - fi)
                slot_counts[e] += s_e[e]
                if record and bool(s_e[e].any()):
                    for s, j in zip(*np.nonzero(s_e[e].cpu().numpy())):
                        self.rec_ex[e][s].append((step, j))
            if self.monitors:
                fired = {}
                for e, x in enumerate(ens):
                    fired[f"{x.prefix}exc"], fired[f"{x.prefix}inh"] = s_e[e][0], s_i[e][0]
                    fired[f"{x.prefix}input"] = None if inputs[e] is None else inputs[e][1][inputs[e][0] == 0]
                self._spikes(step, fired)
            # ---- resets
            for e, x in enumerate(ens):
                v_e[e] = torch.where(s_e[e], torch.full_like(v_e[e], x.cfg.exc.v_reset * MS), v_e[e])
                v_i[e] = torch.where(s_i[e], torch.full_like(v_i[e], x.cfg.inh.v_reset * MS), v_i[e])
        return [c.cpu().numpy() for c in slot_counts]

    def recorded(self):
        if not self.record:
            return None, None
        return [_pairs(r) for r in self.rec_in], [_pairs(r) for r in self.rec_ex]

    def _in_window(self, spec, step):
        return spec.records_at(step * self.net.cfg.dt)

    def _sample(self, step, state):
        for spec, m in self.monitors.items():
            if not spec.variables or step % round(spec.dt_ms / self.net.cfg.dt) or not self._in_window(spec, step):
                continue
            m["t"].append(step * self.net.dt)
            idx = list(spec.indices)
            for var in spec.variables:
                if var == "theta":
                    x = next(x for x in self.net.ens if f"{x.prefix}exc" == spec.population)
                    m["state"][var].append(x.theta[idx].cpu().numpy())
                else:
                    m["state"][var].append(state[spec.population][var][0, idx].cpu().numpy())

    def _spikes(self, step, fired):
        for spec, m in self.monitors.items():
            if not spec.spikes or not self._in_window(spec, step):
                continue
            f = fired[spec.population]
            if f is None:
                continue
            ids = f.cpu().numpy() if spec.population.endswith("input") else np.flatnonzero(f.cpu().numpy())
            m["i"].extend(ids.tolist())
            m["st"].extend([step * self.net.dt] * len(ids))

    def recordings(self) -> dict:
        from bioSNN.monitors import Recording

        return {
            spec: Recording.from_samples(spec, m["t"], m["state"], m["i"], m["st"]) for spec, m in self.monitors.items()
        }


MONITORABLE = {"input": (), "exc": ("v", "ge", "gi", "theta"), "inh": ("v", "ge", "gi")}


class _Fused:
    """Every stream's slot in one compiled CPU loop (``diehl_cook_kernel.c``), state in numpy arrays; the
    ensembles' neurons lie side by side (ensemble e at ``off[e]``), as do their inputs (``in_off[e]``)."""

    def __init__(self, net: FrozenDiehlCook, B: int, fn, generator, input_spikes, record, threads):
        from bioSNN.models._kernel import Params

        cfg, ens = net.cfg, net.ens
        self.net, self.B, self.fn, self.record = net, B, fn, record
        sizes = [x.cfg.n_exc for x in ens]
        in_sizes = [x.cfg.n_input for x in ens]
        self.off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.in_off = np.concatenate([[0], np.cumsum(in_sizes)]).astype(np.int64)
        NT = self.NT = int(self.off[-1])
        self.w = np.ascontiguousarray(np.concatenate([x.w.cpu().numpy().ravel() for x in ens]))
        w_off = np.concatenate([[0], np.cumsum([x.cfg.n_input * x.cfg.n_exc for x in ens])])
        # Brian2 adds cross_gain * w per spike: the same product, formed once
        cw = [(net.cross_gain * c.w).cpu().numpy().ravel() for c in net.cross]
        self.cw = np.ascontiguousarray(np.concatenate(cw) if cw else np.zeros(1))
        cw_off = np.concatenate([[0], np.cumsum([len(a) for a in cw])]).astype(np.int64)
        self.v_fire = np.ascontiguousarray(np.concatenate([x.v_fire.cpu().numpy() for x in ens]))
        P = self.P = Params()
        P.n_streams, P.n_ens, P.n_cross, P.n_total, P.steps = B, len(ens), len(net.cross), NT, net.steps_per_slot
        P.dt, P.t_slot, P.t_present = net.dt, cfg.t_slot * MS, cfg.t_present * MS
        for k, x in enumerate(ens):
            Q, e, i = P.ens[k], x.cfg.exc, x.cfg.inh
            Q.n_exc, Q.n_input, Q.off, Q.in_off, Q.w_off = sizes[k], in_sizes[k], self.off[k], self.in_off[k], w_off[k]
            Q.ref_e, Q.ref_i, Q.spike_gap = x.ref_e, x.ref_i, e.spike_gap * MS
            Q.n_sources = len(x.sources)
            for q, src in enumerate(x.sources):
                Q.sources[q] = -1 if src == "input" else src
            for j, (pop, p) in enumerate((("e", e), ("i", i))):
                Q.tau[j], Q.e_exc[j], Q.e_inh[j], Q.v_leak[j] = p.tau * MS, p.e_exc * MS, p.e_inh * MS, p.v_leak * MS
                Q.ge_mean[j], Q.gi_mean[j] = x.mean[pop]
                Q.v_reset[j] = p.v_reset * MS
                Q.decay_ge[j] = math.exp(-net.dt / (p.tau_ge * MS))
                Q.decay_gi[j] = math.exp(-net.dt / (p.tau_gi * MS))
            Q.v_thresh_i, Q.w_exc_inh, Q.w_inh_exc = i.v_threshold * MS, x.cfg.w_exc_inh, x.cfg.w_inh_exc
        for k, c in enumerate(net.cross):
            P.cross[k].src, P.cross[k].dst, P.cross[k].w_off = c.src, c.dst, cw_off[k]
        # more threads than streams would only wait (spinning) at the end of every slot
        P.n_threads = max(1, min(B, threads or torch.get_num_threads()))
        self.last = np.full((2, B, NT), -10000.0)  # Brian2's lastspike before any spike (s)
        self.state = np.zeros((6, B, NT))
        self.quiet = np.zeros((B, NT), np.int8)  # inhibitory neurons at rest (the kernel skips them)
        self.reset_state()
        self.replay = None
        E = len(ens)
        if input_spikes is not None:  # per (stream, ensemble) pair, b-major
            per, idx = [], []
            for b in range(B):
                for e in range(E):
                    st, ix = (np.asarray(a, np.int64) for a in input_spikes[e][b])
                    o = np.argsort(st, kind="stable")
                    per.append(st[o])
                    idx.append(ix[o])
            self.rp_step = np.ascontiguousarray(np.concatenate(per))
            self.rp_idx = np.ascontiguousarray(np.concatenate(idx))
            self.rp_ptr = np.concatenate([[0], np.cumsum([len(st) for st in per])]).astype(np.int64)
            self.rp_pos = self.rp_ptr[:-1].copy()
            self.replay = True
            self.rng = None
        else:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
            self.rng = np.array([[_splitmix(seed + 4 * b + j) for j in range(4)] for b in range(B)], np.uint64)
        self.rec_in = [[] for _ in range(B)] if record else None
        self.rec_ex = [[] for _ in range(B)] if record else None
        self.cap = 4096
        self._fixed = None

    def reset_state(self):
        self.quiet[:] = 0
        self.state[:] = 0.0
        for k, x in enumerate(self.net.ens):
            self.state[0, :, self.off[k] : self.off[k + 1]] = x.cfg.exc.v_leak * MS
            self.state[1, :, self.off[k] : self.off[k + 1]] = x.cfg.inh.v_leak * MS

    def slot(self, step0: int, p_fire: list, active: np.ndarray) -> list:
        """One slot of the ``active`` streams (the others keep their state)."""
        from bioSNN.models._kernel import ptr

        E = len(p_fire)
        # lit inputs per (stream, ensemble) pair, b-major, inputs ascending
        pair, li, lp = [], [], []
        for e, pf in enumerate(p_fire):
            b, i = np.nonzero(pf > 0)
            pair.append(b * E + e)
            li.append(i)
            lp.append(pf[b, i])
        pair = np.concatenate(pair)
        order = np.argsort(pair, kind="stable")
        lit_ptr = np.searchsorted(pair[order], np.arange(self.B * E + 1)).astype(np.int64)
        lit_idx = np.ascontiguousarray(np.concatenate(li)[order].astype(np.int64))
        lit_p = np.ascontiguousarray(np.concatenate(lp)[order])
        self.P.step0 = step0
        act = np.ascontiguousarray(active, np.int8)
        while True:
            if self.record:  # a too small buffer re-runs the slot from a copy of the state
                saved = (
                    self.state.copy(),
                    self.last.copy(),
                    None if self.rng is None else self.rng.copy(),
                    None if self.replay is None else self.rp_pos.copy(),
                    self.quiet.copy(),
                )
                n_in, n_ex = np.zeros(self.B, np.int64), np.zeros(self.B, np.int64)
                buf_in = np.zeros((self.B, self.cap, 2), np.int64)
                buf_ex = np.zeros((self.B, self.cap, 2), np.int64)
                self.P.rec_in_cap = self.P.rec_ex_cap = self.cap
            counts = np.zeros((self.B, self.NT), np.int32)
            if self._fixed is None:  # addresses of the arrays that live as long as the simulation (updated in place)
                st, la = self.state, self.last
                rp = (self.rp_ptr, self.rp_step, self.rp_idx, self.rp_pos) if self.replay else (None,) * 4
                self._fixed = (
                    [ptr(st[j]) for j in range(6)]
                    + [ptr(la[0]), ptr(la[1]), ptr(self.w), ptr(self.cw), ptr(self.v_fire)],
                    [ptr(self.rng)] + [ptr(a) for a in rp],
                    ptr(self.quiet),
                )
            head, rng_rp, quiet = self._fixed
            self.fn(
                ctypes.byref(self.P),
                *head,
                ptr(lit_ptr),
                ptr(lit_idx),
                ptr(lit_p),
                *rng_rp,
                ptr(act),
                quiet,
                ptr(counts),
                *((ptr(n_in), ptr(buf_in), ptr(n_ex), ptr(buf_ex)) if self.record else (None,) * 4),
            )
            if not self.record:
                break
            if max(n_in.max(), n_ex.max()) <= self.cap:
                for b in range(self.B):
                    self.rec_in[b].extend(map(tuple, buf_in[b, : n_in[b]].tolist()))
                    self.rec_ex[b].extend(map(tuple, buf_ex[b, : n_ex[b]].tolist()))
                break
            self.cap = int(2 * max(n_in.max(), n_ex.max()))
            self.state[:], self.last[:], self.quiet[:] = saved[0], saved[1], saved[4]
            if saved[2] is not None:
                self.rng[:] = saved[2]
            if saved[3] is not None:
                self.rp_pos[:] = saved[3]
        counts = counts.astype(np.int64)
        return [counts[:, self.off[k] : self.off[k + 1]] for k in range(E)]

    def recorded(self):
        """Per ensemble, per stream: input and excitatory spikes ``(steps, indices)`` in the ensemble's own
        indices."""
        if not self.record:
            return None, None
        E = len(self.net.ens)
        if self.replay:  # the replayed input spikes are what was fed
            rec_in = [
                [
                    (
                        self.rp_step[self.rp_ptr[b * E + e] : self.rp_ptr[b * E + e + 1]],
                        self.rp_idx[self.rp_ptr[b * E + e] : self.rp_ptr[b * E + e + 1]],
                    )
                    for b in range(self.B)
                ]
                for e in range(E)
            ]
        else:
            rec_in = _split(self.rec_in, self.in_off)
        return rec_in, _split(self.rec_ex, self.off)


def _split(rec: list, off: np.ndarray) -> list:
    """Per stream lists of (step, global index) → per ensemble, per stream ``(steps, indices)`` with the
    ensemble's own indices (``off``: each ensemble's first global index, and the total)."""
    out = []
    for k in range(len(off) - 1):
        per = []
        for r in rec:
            a = np.array(r, np.int64).reshape(-1, 2)
            m = (a[:, 1] >= off[k]) & (a[:, 1] < off[k + 1])
            per.append((a[m, 0], a[m, 1] - off[k]))
        out.append(per)
    return out

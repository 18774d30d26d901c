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
    :class:`~bioSNN.monitors.Recording` of the first stream (as the Brian2 engine records a run)."""

    counts: np.ndarray
    repeats: np.ndarray
    slots: int
    input_spikes: list | None = None
    exc_spikes: list | None = None
    recordings: dict = field(default_factory=dict)


class FrozenDiehlCook:
    """A trained Diehl & Cook network (config ``cfg``; input weights ``w`` ``(n_input, n_exc)``, θ in mV) for
    presenting images without learning."""

    def __init__(self, cfg: DiehlCookConfig, w: np.ndarray, theta_mv: np.ndarray,
                 device: str | torch.device = "cpu"):
        w, theta_mv = np.asarray(w, np.float64), np.asarray(theta_mv, np.float64)
        if w.shape != (cfg.n_input, cfg.n_exc) or theta_mv.shape != (cfg.n_exc,):
            raise ValueError(f"weights {w.shape} and theta {theta_mv.shape} do not fit a {cfg.n_input}x{cfg.n_exc} "
                             "network")
        self.cfg, self.device = cfg, torch.device(device)
        f64 = dict(dtype=torch.float64, device=self.device)
        self.w = torch.as_tensor(w, **f64)
        e, i = cfg.exc, cfg.inh
        self.dt = cfg.dt * MS
        # threshold of every excitatory neuron, as Brian2 evaluates "theta - exc_theta_offset + exc_v_threshold"
        self.theta = torch.as_tensor(theta_mv * MS, **f64)
        self.v_fire = self.theta - e.theta_offset * MS + e.v_threshold * MS
        self.steps_per_slot = int(round(cfg.t_slot / cfg.dt))
        self.ref_e = int((e.refractory * MS + 1e-3 * self.dt) / self.dt)  # Brian2's timestep(refractory, dt)
        self.ref_i = int((i.refractory * MS + 1e-3 * self.dt) / self.dt)
        # step_mean conductance factors, computed as bioSNN.brian.neurons does (in ms)
        self.mean = {}
        for pop, p in (("e", e), ("i", i)):
            if cfg.integration == "step_mean":
                self.mean[pop] = (p.tau_ge / cfg.dt * (1 - math.exp(-cfg.dt / p.tau_ge)),
                                  p.tau_gi / cfg.dt * (1 - math.exp(-cfg.dt / p.tau_gi)))
            elif cfg.integration == "exponential_euler":
                self.mean[pop] = (1.0, 1.0)
            else:
                raise ValueError(f"integration {cfg.integration!r}: the PyTorch engine runs exponential_euler "
                                 "and step_mean")

    @classmethod
    def from_bundle(cls, bundle, cfg: DiehlCookConfig | None = None, device="cpu") -> "FrozenDiehlCook":
        """The network of a ``diehl_cook`` bundle (see :mod:`bioSNN.brian.bundle`); ``cfg`` defaults to the
        configuration the bundle records (``extra["network"]``)."""
        from bioSNN.brian.bundle import state_from_bundle

        if cfg is None:
            rec = bundle.extra.get("network", {}).get("")
            if rec is None:
                raise ValueError(f"bundle {bundle.name!r} records no single-ensemble network configuration; pass cfg=")
            from bioSNN.config import apply_overrides

            cfg = apply_overrides(DiehlCookConfig(), rec)
        state, _, _ = state_from_bundle(bundle, {"": cfg})
        return cls(cfg, state[""]["w"], state[""]["theta"], device)

    # ---------------------------------------------------------------------------------------------- stepping
    def _membrane(self, v, ge, gi, nr, p, mean):
        """Brian2's exponential-Euler update of ``v`` (its generated expression, term by term), frozen while
        refractory."""
        tau = p.tau * MS
        e_exc, e_inh, v_leak = p.e_exc * MS, p.e_inh * MS, p.v_leak * MS
        ge_mean, gi_mean = mean
        ba = (e_exc * ge_mean * ge / tau + e_inh * gi_mean * gi / tau + v_leak / tau) / \
            (-ge_mean * ge / tau - gi_mean * gi / tau - 1.0 / tau)
        new = -ba + (ba + v) * torch.exp(self.dt * (-ge_mean * ge / tau - gi_mean * gi / tau - 1.0 / tau))
        return torch.where(nr, new, v)

    def present(self, images: np.ndarray, item_ids=None, streams: int = 1, generator: torch.Generator | None = None,
                input_spikes: list | None = None, record: bool = False, max_slots: int | None = None,
                kernel: str = "auto", threads: int | None = None, monitors: tuple = ()) -> Streams:
        """Show ``images[item_ids]`` (uint8 ``(n, n_input)``; all images by default), split into ``streams``
        contiguous runs simulated side by side; returns per-item counts and repeats.

        Input spikes are drawn with ``generator``, or taken from ``input_spikes`` (one ``(steps, indices)`` pair per
        stream, e.g. recorded before with ``record=True``). ``max_slots`` bounds the slots of a stream (default:
        every image shown ``max_repeats + 1`` times).

        ``kernel``: ``"tensor"`` steps all streams with tensor operations (any device; float64 uniforms from
        ``generator`` for the lit (stream, input) pairs of a step); ``"fused"`` runs each slot of every stream in
        one compiled CPU loop (:mod:`bioSNN.models._kernel`; one xoshiro256+ generator per stream, seeded from
        ``generator``); ``"auto"``: fused on the CPU where a C compiler works. The two draw different input spikes
        from the same generator; replayed spikes give both the same result.
        ``threads``: the fused kernel's OpenMP threads (default ``torch.get_num_threads()``; streams are split
        between them, the result does not depend on their number).

        ``monitors``: :class:`~bioSNN.monitors.MonitorSpec` s of the populations ``input`` (spikes), ``exc``
        (``v``, ``ge``, ``gi``, ``theta``; spikes) and ``inh`` (``v``, ``ge``, ``gi``; spikes), recorded from the
        first stream as Brian2's monitors record (state at the start of a step, every ``dt_ms``, SI units; only
        inside the window). They run on the tensor kernel."""
        cfg = self.cfg
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != cfg.n_input:
            raise ValueError(f"images must be uint8 (n, {cfg.n_input}), got {images.dtype} {images.shape}")
        if kernel not in ("auto", "tensor", "fused"):
            raise ValueError(f"kernel {kernel!r}: choose auto, tensor or fused")
        monitors = tuple(monitors)
        for spec in monitors:
            known = MONITORABLE.get(spec.population)
            if known is None:
                raise ValueError(f"monitor on unknown population {spec.population!r}; have {sorted(MONITORABLE)}")
            if set(spec.variables) - set(known):
                raise ValueError(f"population {spec.population!r} has no variable(s) "
                                 f"{sorted(set(spec.variables) - set(known))}; it has {list(known)}")
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
        ids = np.arange(len(images)) if item_ids is None else np.asarray(item_ids, np.int64)
        n = len(ids)
        streams = max(1, min(int(streams), n))
        bounds = np.linspace(0, n, streams + 1).round().astype(int)
        L = int(np.diff(bounds).max())
        seq = np.full((streams, L), -1, np.int64)  # -1: nothing left to show (a blank image)
        for s in range(streams):
            seq[s, :bounds[s + 1] - bounds[s]] = ids[bounds[s]:bounds[s + 1]]
        if input_spikes is not None and len(input_spikes) != streams:
            raise ValueError(f"input_spikes holds {len(input_spikes)} streams, {streams} asked for")
        B, N = streams, cfg.n_exc
        sim = (_Fused(self, B, fn, generator, input_spikes, record, threads) if fn is not None else
               _Tensor(self, B, generator, input_spikes, record, monitors))
        k = np.full(B, -1)
        repeats = np.full(B, cfg.max_repeats)
        counts = np.zeros((n, N), np.int32)
        reps = np.zeros(n, np.int32)
        item_pos = bounds[:-1]
        pix = np.vstack([images, np.zeros((1, cfg.n_input), np.uint8)])
        budget = max_slots or L * (cfg.max_repeats + 1) + 1
        slots = 0
        sc = np.zeros((B, N), np.int64)
        while slots < budget:
            # ---- slot start: the controller (accept or repeat), then the image of the new slot
            accept = (sc.sum(1) >= cfg.min_spikes) | (repeats >= cfg.max_repeats)
            for s in np.flatnonzero(accept & (k >= 0) & (k < L)):
                if seq[s, k[s]] >= 0:
                    counts[item_pos[s] + k[s]] = sc[s]
                    reps[item_pos[s] + k[s]] = repeats[s]
            k = k + accept
            repeats = (repeats + 1) * (1 - accept)
            if np.all(k >= np.diff(bounds)):
                break
            item = np.where(k < L, seq[np.arange(B), np.minimum(k, L - 1)], -1)
            # per-step firing probability of every input, as Brian2's PoissonGroup computes rates * dt
            p_fire = pix[np.where(item >= 0, item, len(images))] / 255.0 * \
                (cfg.max_rate + cfg.rate_boost * repeats)[:, None] * self.dt
            if cfg.t_rest == 0:
                sim.reset_state()
            sc = sim.slot(slots * self.steps_per_slot, p_fire, active=k < np.diff(bounds))
            slots += 1
        rec_in, rec_ex = sim.recorded()
        return Streams(counts, reps, slots, rec_in, rec_ex, getattr(sim, "recordings", lambda: {})())


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def _pairs(rec):
    return [(np.array([a for a, _ in r], np.int64), np.array([b for _, b in r], np.int64)) for r in rec]


class _Tensor:
    """All streams stepped together with tensor operations (the reference kernel; any device)."""

    def __init__(self, net: FrozenDiehlCook, B: int, generator, input_spikes, record, monitors=()):
        cfg, dev = net.cfg, net.device
        self.net, self.B, self.generator, self.record = net, B, generator, record
        self.monitors = {spec: {"t": [], "state": {v: [] for v in spec.variables}, "i": [], "st": []}
                         for spec in monitors}
        self.f64 = dict(dtype=torch.float64, device=dev)
        self.last_e = torch.full((B, cfg.n_exc), -10000.0, **self.f64)  # Brian2's lastspike before any spike (s)
        self.last_i = torch.full((B, cfg.n_exc), -10000.0, **self.f64)
        self.reset_state()
        self.rec_in = [[] for _ in range(B)] if record else None
        self.rec_ex = [[] for _ in range(B)] if record else None
        e, i = cfg.exc, cfg.inh
        self.decay = {p: (math.exp(-net.dt / (q.tau_ge * MS)), math.exp(-net.dt / (q.tau_gi * MS)))
                      for p, q in (("e", e), ("i", i))}
        self.replay = None
        if input_spikes is not None:  # all streams' spikes by step (stream, then recorded order within a step)
            r_step = np.concatenate([np.asarray(st, np.int64) for st, _ in input_spikes])
            r_b = np.concatenate([np.full(len(st), s, np.int64) for s, (st, _) in enumerate(input_spikes)])
            r_i = np.concatenate([np.asarray(ix, np.int64) for _, ix in input_spikes])
            order = np.argsort(r_step, kind="stable")
            self.replay = (r_step[order], torch.as_tensor(r_b[order], device=dev),
                           torch.as_tensor(r_i[order], device=dev))

    def reset_state(self):
        cfg, B, N, f64 = self.net.cfg, self.B, self.net.cfg.n_exc, self.f64
        self.v_e = torch.full((B, N), cfg.exc.v_leak * MS, **f64)
        self.v_i = torch.full((B, N), cfg.inh.v_leak * MS, **f64)
        self.ge_e, self.gi_e, self.ge_i, self.gi_i = (torch.zeros(B, N, **f64) for _ in range(4))

    def slot(self, step0: int, p_fire: np.ndarray, active: np.ndarray) -> np.ndarray:
        net, cfg = self.net, self.net.cfg
        e, i, dt, decay, record = cfg.exc, cfg.inh, net.dt, self.decay, self.record
        t_slot, t_present = cfg.t_slot * MS, cfg.t_present * MS
        v_e, v_i, ge_e, gi_e, ge_i, gi_i = self.v_e, self.v_i, self.ge_e, self.gi_e, self.ge_i, self.gi_i
        last_e, last_i = self.last_e, self.last_i
        p_fire = torch.as_tensor(p_fire, **self.f64)
        # only lit pixels can fire: draw for those (stream, input) pairs alone
        lit_b, lit_i = torch.nonzero(p_fire > 0, as_tuple=True)
        lit_p = p_fire[lit_b, lit_i]
        slot_counts = torch.zeros(self.B, cfg.n_exc, dtype=torch.int64, device=net.device)
        for step in range(step0, step0 + net.steps_per_slot):
            t = step * dt
            if self.monitors:  # state at the start of the step, as Brian2's StateMonitor reads it
                self._sample(step, {"exc": {"v": v_e, "ge": ge_e, "gi": gi_e}, "inh": {"v": v_i, "ge": ge_i, "gi": gi_i}})
            # ---- groups: state update (old conductances), conductance decay
            nr_e = ((t - last_e + 1e-3 * dt) / dt).floor() >= net.ref_e
            nr_i = ((t - last_i + 1e-3 * dt) / dt).floor() >= net.ref_i
            v_e = net._membrane(v_e, ge_e, gi_e, nr_e, e, net.mean["e"])
            v_i = net._membrane(v_i, ge_i, gi_i, nr_i, i, net.mean["i"])
            ge_e, gi_e = ge_e * decay["e"][0], gi_e * decay["e"][1]
            ge_i, gi_i = ge_i * decay["i"][0], gi_i * decay["i"][1]
            # ---- thresholds
            presenting = (t - t_slot * math.floor(t / t_slot + 1e-6)) < t_present
            if self.replay is not None:  # this step's input spikes of every stream, as (stream, input) pairs
                lo, hi = np.searchsorted(self.replay[0], [step, step + 1])
                in_b, in_i = self.replay[1][lo:hi], self.replay[2][lo:hi]
            elif presenting and len(lit_p):
                fire = torch.rand(len(lit_p), generator=self.generator, **self.f64) < lit_p
                in_b, in_i = lit_b[fire], lit_i[fire]
            else:
                in_b = None
            s_e = (v_e > net.v_fire) & ((t - last_e) > e.spike_gap * MS) & nr_e
            s_i = (v_i > i.v_threshold * MS) & nr_i
            last_e = torch.where(s_e, torch.full_like(last_e, t), last_e)
            last_i = torch.where(s_i, torch.full_like(last_i, t), last_i)
            # ---- synapses
            if in_b is not None and len(in_b):
                # each spike adds its weight row, in the order of the input index within a stream (as Brian2 does)
                ge_e.index_add_(0, in_b, net.w[in_i])
                if record:
                    for s, ix in zip(in_b.tolist(), in_i.tolist()):
                        self.rec_in[s].append((step, ix))
            fe, fi = s_e.to(torch.float64), s_i.to(torch.float64)
            ge_i = ge_i + cfg.w_exc_inh * fe
            gi_e = gi_e + cfg.w_inh_exc * (fi.sum(1, keepdim=True) - fi)
            slot_counts += s_e
            if self.monitors:
                self._spikes(step, {"exc": s_e[0], "inh": s_i[0], "input": in_i[in_b == 0] if in_b is not None
                                    else None})
            if record and bool(s_e.any()):
                for s, j in zip(*np.nonzero(s_e.cpu().numpy())):
                    self.rec_ex[s].append((step, j))
            # ---- resets
            v_e = torch.where(s_e, torch.full_like(v_e, e.v_reset * MS), v_e)
            v_i = torch.where(s_i, torch.full_like(v_i, i.v_reset * MS), v_i)
        self.v_e, self.v_i, self.ge_e, self.gi_e, self.ge_i, self.gi_i = v_e, v_i, ge_e, gi_e, ge_i, gi_i
        self.last_e, self.last_i = last_e, last_i
        return slot_counts.cpu().numpy()

    def recorded(self):
        if not self.record:
            return None, None
        return _pairs(self.rec_in), _pairs(self.rec_ex)

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
                    m["state"][var].append(self.net.theta[idx].cpu().numpy())
                else:
                    m["state"][var].append(state[spec.population][var][0, idx].cpu().numpy())

    def _spikes(self, step, fired):
        for spec, m in self.monitors.items():
            if not spec.spikes or not self._in_window(spec, step):
                continue
            f = fired[spec.population]
            if f is None:
                continue
            ids = f.cpu().numpy() if spec.population == "input" else np.flatnonzero(f.cpu().numpy())
            m["i"].extend(ids.tolist())
            m["st"].extend([step * self.net.dt] * len(ids))

    def recordings(self) -> dict:
        from bioSNN.monitors import Recording

        return {spec: Recording.from_samples(spec, m["t"], m["state"], m["i"], m["st"])
                for spec, m in self.monitors.items()}


MONITORABLE = {"input": (), "exc": ("v", "ge", "gi", "theta"), "inh": ("v", "ge", "gi")}


class _Fused:
    """Every stream's slot in one compiled CPU loop (``diehl_cook_kernel.c``), state in numpy arrays."""

    def __init__(self, net: FrozenDiehlCook, B: int, fn, generator, input_spikes, record, threads):
        from bioSNN.models._kernel import Params

        cfg, e, i = net.cfg, net.cfg.exc, net.cfg.inh
        self.net, self.B, self.fn, self.record = net, B, fn, record
        self.w = np.ascontiguousarray(net.w.cpu().numpy())
        self.v_fire = np.ascontiguousarray(net.v_fire.cpu().numpy())
        P = self.P = Params()
        P.n_streams, P.n_exc, P.n_input, P.steps = B, cfg.n_exc, cfg.n_input, net.steps_per_slot
        P.dt, P.t_slot, P.t_present, P.spike_gap = net.dt, cfg.t_slot * MS, cfg.t_present * MS, e.spike_gap * MS
        P.ref_e, P.ref_i = net.ref_e, net.ref_i
        for k, (pop, p) in enumerate((("e", e), ("i", i))):
            P.tau[k], P.e_exc[k], P.e_inh[k], P.v_leak[k] = p.tau * MS, p.e_exc * MS, p.e_inh * MS, p.v_leak * MS
            P.ge_mean[k], P.gi_mean[k] = net.mean[pop]
            P.v_reset[k] = p.v_reset * MS
            P.decay_ge[k] = math.exp(-net.dt / (p.tau_ge * MS))
            P.decay_gi[k] = math.exp(-net.dt / (p.tau_gi * MS))
        P.v_thresh_i, P.w_exc_inh, P.w_inh_exc = i.v_threshold * MS, cfg.w_exc_inh, cfg.w_inh_exc
        # more threads than streams would only wait (spinning) at the end of every slot
        P.n_threads = max(1, min(B, threads or torch.get_num_threads()))
        self.last = np.full((2, B, cfg.n_exc), -10000.0)  # Brian2's lastspike before any spike (s)
        self.state = np.zeros((6, B, cfg.n_exc))
        self.quiet = np.zeros((B, cfg.n_exc), np.int8)  # inhibitory neurons at rest (the kernel skips them)
        self.reset_state()
        self.replay = None
        if input_spikes is not None:
            per = [np.asarray(st, np.int64) for st, _ in input_spikes]
            order = [np.argsort(st, kind="stable") for st in per]
            self.rp_step = np.ascontiguousarray(np.concatenate([st[o] for st, o in zip(per, order)]))
            self.rp_idx = np.ascontiguousarray(np.concatenate(
                [np.asarray(ix, np.int64)[o] for (_, ix), o in zip(input_spikes, order)]))
            self.rp_ptr = np.concatenate([[0], np.cumsum([len(st) for st in per])]).astype(np.int64)
            self.rp_pos = self.rp_ptr[:-1].copy()
            self.replay = True
            self.rng = None
        else:
            seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator).item())
            self.rng = np.array([[_splitmix(seed + 4 * b + j) for j in range(4)] for b in range(B)], np.uint64)
        self.rec_in = [[] for _ in range(B)] if record else None
        self.rec_ex = [[] for _ in range(B)] if record else None
        self.cap = 4096

    def reset_state(self):
        cfg = self.net.cfg
        self.quiet[:] = 0
        self.state[:] = 0.0
        self.state[0] = cfg.exc.v_leak * MS
        self.state[1] = cfg.inh.v_leak * MS

    def slot(self, step0: int, p_fire: np.ndarray, active: np.ndarray) -> np.ndarray:
        """One slot of the ``active`` streams (the others keep their state)."""
        from bioSNN.models._kernel import ptr

        lit_b, lit_i = np.nonzero(p_fire > 0)
        lit_ptr = np.searchsorted(lit_b, np.arange(self.B + 1)).astype(np.int64)
        lit_idx = np.ascontiguousarray(lit_i.astype(np.int64))
        lit_p = np.ascontiguousarray(p_fire[lit_b, lit_i])
        self.P.step0 = step0
        act = np.ascontiguousarray(active, np.int8)
        while True:
            if self.record:  # a too small buffer re-runs the slot from a copy of the state
                saved = (self.state.copy(), self.last.copy(), None if self.rng is None else self.rng.copy(),
                         None if self.replay is None else self.rp_pos.copy(), self.quiet.copy())
                n_in, n_ex = np.zeros(self.B, np.int64), np.zeros(self.B, np.int64)
                buf_in = np.zeros((self.B, self.cap, 2), np.int64)
                buf_ex = np.zeros((self.B, self.cap, 2), np.int64)
                self.P.rec_in_cap = self.P.rec_ex_cap = self.cap
            counts = np.zeros((self.B, self.net.cfg.n_exc), np.int32)
            st, la = self.state, self.last
            rp = (self.rp_ptr, self.rp_step, self.rp_idx, self.rp_pos) if self.replay else (None,) * 4
            self.fn(ctypes.byref(self.P), *(ptr(st[j]) for j in range(6)), ptr(la[0]), ptr(la[1]), ptr(self.w),
                    ptr(self.v_fire), ptr(lit_ptr), ptr(lit_idx), ptr(lit_p), ptr(self.rng), *(ptr(a) for a in rp),
                    ptr(act), ptr(self.quiet), ptr(counts), *((ptr(n_in), ptr(buf_in), ptr(n_ex), ptr(buf_ex)) if self.record else (None,) * 4))
            if not self.record:
                return counts.astype(np.int64)
            if max(n_in.max(), n_ex.max()) <= self.cap:
                break
            self.cap = int(2 * max(n_in.max(), n_ex.max()))
            self.state[:], self.last[:], self.quiet[:] = saved[0], saved[1], saved[4]
            if saved[2] is not None:
                self.rng[:] = saved[2]
            if saved[3] is not None:
                self.rp_pos[:] = saved[3]
        for b in range(self.B):
            self.rec_in[b].extend(map(tuple, buf_in[b, :n_in[b]].tolist()))
            self.rec_ex[b].extend(map(tuple, buf_ex[b, :n_ex[b]].tolist()))
        return counts.astype(np.int64)

    def recorded(self):
        if not self.record:
            return None, None
        if self.replay:  # the replayed input spikes are what was fed
            self.rec_in = [list(zip(self.rp_step[a:b].tolist(), self.rp_idx[a:b].tolist()))
                           for a, b in zip(self.rp_ptr[:-1], self.rp_ptr[1:])]
        return _pairs(self.rec_in), _pairs(self.rec_ex)

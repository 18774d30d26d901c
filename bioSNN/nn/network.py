"""One network definition, two ways to run it: as an ANN (ReLU) and as an SNN (IF/LIF neurons over T steps).

A :class:`SpikingNet` is an ordered list of nodes: weighted layers (``nn.Conv2d``, ``nn.Linear``, no biases),
``nn.AvgPool2d``/``nn.AdaptiveAvgPool2d``, ``nn.Flatten``, :class:`FixedDropout`, :class:`~bioSNN.nn.LIF`
activations and :class:`Residual` blocks. The weighted layers after the last activation form the readout.

- :meth:`SpikingNet.ann` — every LIF node acts as ``ReLU``: the ANN that is trained first and converted.
- :meth:`SpikingNet.snn` — every LIF node runs :func:`~bioSNN.nn.lif_step` for ``T`` steps; the readout
  integrates its input without leak or spikes and the network returns that accumulated membrane (the sum over
  the ``T`` steps, as in Rathi et al. 2020 and Rathi & Roy 2021), the logits for cross-entropy. Dropout masks are
  drawn once per sample and held for all steps.
  Inputs are coded ``direct`` (the analog frame every step; the first layer then performs MACs), ``poisson``
  (signed, ``spike = sign(x)·(u ≤ |x|)``) or ``frames``: a given sequence ``(batch, T, ...)`` of event frames
  (e.g. binned DVS events), frame t at step t; its non-zero entries count as input spikes.

Because both modes share the same weight tensors, ANN→SNN conversion is just choosing thresholds
(:mod:`bioSNN.nn.convert`). Operation counts for :mod:`bioSNN.energy` come from the SNN run itself: each weighted
layer's non-zero inputs × their fan-out (accumulates), or its MACs × T when its input is analog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from bioSNN import energy
from bioSNN.encoding import poisson_encode

from .neurons import LIF, lif_sequence

__all__ = ["FixedDropout", "Residual", "SpikingNet", "SNNOutput", "RunStats"]

Encoder = Literal["direct", "poisson", "frames"]
_WEIGHTED = (nn.Conv2d, nn.Linear)


class FixedDropout(nn.Module):
    """Dropout whose mask is drawn once per sample and reused at every time step of an SNN run."""

    def __init__(self, p: float = 0.2):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must lie in [0, 1), got {p}")
        self.p = p

    def mask(self, x: torch.Tensor) -> torch.Tensor | None:
        if not self.training or self.p == 0:
            return None
        return torch.bernoulli(torch.full_like(x, 1.0 - self.p)) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Residual(nn.Module):
    """Basic residual block (He et al. 2016) without batch norm or biases:
    ``act2(conv2(act1(conv1(x))) + shortcut(x))``, shortcut = identity or a strided 1×1 convolution."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.act1 = LIF()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if (stride != 1 or c_in != c_out) else None
        self.act2 = LIF()

    def ann(self, x: torch.Tensor) -> torch.Tensor:
        sc = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.conv2(F.relu(self.conv1(x))) + sc)


class RunStats:
    """What one SNN run counted: spikes per activation and synaptic events/MACs per weighted layer (per sample)."""

    def __init__(self):
        self.spikes: dict[str, float] = {}  # summed over batch and time
        self.neurons: dict[str, int] = {}  # neurons per sample
        self.events: dict[str, float] = {}  # non-zero inputs × fan-out, summed over batch and time
        self.analog: dict[str, bool] = {}
        self.macs: dict[str, float] = {}  # per sample, ANN view
        self.outputs: dict[str, float] = {}  # output neurons per sample of each weighted layer
        self.samples = 0
        self.time_steps = 0

    def spike_rates(self) -> dict[str, float]:
        """Spikes per neuron per time step, per activation layer."""
        return {k: v / (self.neurons[k] * self.samples * self.time_steps) for k, v in self.spikes.items()}

    def layer_ops(self) -> list[energy.LayerOps]:
        return [
            energy.LayerOps(
                k,
                self.macs[k],
                self.events[k] / self.samples,
                self.analog[k],
                self.time_steps,
                self.outputs.get(k, 0.0),
            )
            for k in self.macs
        ]

    def merge(self, other: RunStats) -> RunStats:
        for name in ("spikes", "events"):
            mine, theirs = getattr(self, name), getattr(other, name)
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0.0) + v
        self.neurons.update(other.neurons)
        self.analog.update(other.analog)
        self.macs.update(other.macs)
        self.outputs.update(other.outputs)
        self.samples += other.samples
        self.time_steps = other.time_steps
        return self

    def summary(self) -> dict:
        ops = self.layer_ops()
        ann, snn = energy.ann_energy_pj(ops), energy.snn_energy_pj(ops)
        snn_once = energy.snn_energy_pj(ops, reuse_constant_input=True)  # = snn without an analog-input layer
        return {
            "time_steps": self.time_steps,
            "samples": self.samples,
            "spike_rate": self.spike_rates(),
            "mean_spike_rate": sum(self.spikes.values())
            / max(1, sum(self.neurons.values()) * self.samples * self.time_steps),
            "layers": [
                {"name": o.name, "macs": o.macs, "synaptic_events": o.synaptic_events, "analog_input": o.analog_input}
                for o in ops
            ],
            "ann_energy_uj": ann * 1e-6,
            "snn_energy_uj": snn * 1e-6,
            "energy_ratio_ann_over_snn": ann / snn if snn else float("inf"),
            # direct input: the first layer's constant current computed once and held (energy module doc)
            "energy_ratio_first_layer_once": ann / snn_once if snn_once else float("inf"),
            "energy_model": energy.CONSTANTS_NOTE,
        }


class SNNOutput(NamedTuple):
    logits: torch.Tensor
    stats: RunStats | None
    # E_SNN / E_ANN of this batch (compute-energy model of :mod:`bioSNN.energy`), differentiable through the
    # surrogate gradient of the spikes; only when ``snn(..., energy_cost=True)``
    energy_cost: torch.Tensor | None = None
    # each activation's spikes, (T, batch, ...) by activation name; only when ``snn(..., record=True)``
    spikes: dict[str, torch.Tensor] | None = None
    # per MonitorSpec, its Recording of the batch's first sample; only when ``snn(..., monitors=...)``
    recordings: dict | None = None


def _fanout_events(layer: nn.Module, x: torch.Tensor, soft: bool = False) -> torch.Tensor:
    """Σ over non-zero input elements of the number of outputs each one reaches (one accumulate per output).

    ``soft``: the same count in the forward pass, but differentiable: its gradient is that of the count with
    each input's magnitude in place of its 0/1 activity (a straight-through estimator; a spike's magnitude is its
    surrogate-gradient path to the weights, leaks and thresholds)."""
    active = (x != 0).to(x.dtype)
    if soft:
        mag = x.abs()
        active = active + mag - mag.detach()
    if isinstance(layer, nn.Linear):
        return active.sum() * layer.out_features
    if layer.groups != 1:
        raise NotImplementedError("event counting for grouped convolutions")
    kernel = torch.ones(1, 1, *layer.kernel_size, dtype=x.dtype, device=x.device)
    reach = F.conv2d(active.sum(1, keepdim=True), kernel, None, layer.stride, layer.padding, layer.dilation)
    return reach.sum() * layer.out_channels


def _macs(layer: nn.Module, y: torch.Tensor) -> float:
    """MACs of one sample through ``layer`` given its output ``y`` (batch first)."""
    if isinstance(layer, nn.Linear):
        return float(layer.in_features * layer.out_features)
    per_out = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
    return float(y[0].numel() * per_out)


@dataclass
class _Ctx:
    """Per-run bookkeeping passed through the nodes (not stored on modules)."""

    states: dict = field(default_factory=dict)
    stats: RunStats | None = None
    observe: Callable[[str, torch.Tensor], None] | None = None
    first_step: bool = True
    analog_input: bool = False
    # energy_cost: differentiable spiking energy (pJ, summed over batch and steps), and per-sample MACs by layer
    cost_pj: list | None = None
    cost_macs: dict = field(default_factory=dict)
    cost_analog_pj: float = 0.0
    spikes: dict | None = None  # recorded spikes by activation name (lists of steps in step mode)
    monitor: Callable | None = None  # monitor(name, step, u, spikes) after every activation's step
    step: int = 0


class _Recorder:
    """Collects :class:`~bioSNN.monitors.MonitorSpec` data of a step-mode run (first sample of the batch)."""

    def __init__(self, specs, names: set, step_ms: float):
        for spec in specs:
            if spec.population not in names:
                raise ValueError(f"monitor on unknown activation {spec.population!r}; have {sorted(names)}")
            if set(spec.variables) - {"v"}:
                raise ValueError(
                    f"activation {spec.population!r} has no variable(s) "
                    f"{sorted(set(spec.variables) - {'v'})}; it has ['v']"
                )
            every = spec.dt_ms / step_ms
            if abs(every - round(every)) > 1e-9:
                raise ValueError(f"monitor dt_ms={spec.dt_ms} is not a multiple of the step ({step_ms} ms)")
        self.specs, self.step_ms = tuple(specs), step_ms
        self.data = {spec: {"t": [], "state": {v: [] for v in spec.variables}, "i": [], "st": []} for spec in specs}

    def __call__(self, name: str, step: int, u: torch.Tensor, spikes: torch.Tensor) -> None:
        t_ms = step * self.step_ms
        for spec in self.specs:
            if spec.population != name or not spec.records_at(t_ms):
                continue
            d = self.data[spec]
            if spec.variables and step % round(spec.dt_ms / self.step_ms) == 0:
                d["t"].append(t_ms * 1e-3)
                d["state"]["v"].append(u[0].detach().reshape(-1)[list(spec.indices)].double().cpu().numpy())
            if spec.spikes:
                fired = torch.nonzero(spikes[0].detach().reshape(-1)).flatten().cpu().numpy()
                d["i"].extend(fired.tolist())
                d["st"].extend([t_ms * 1e-3] * len(fired))

    def recordings(self) -> dict:
        from bioSNN.monitors import Recording

        return {
            spec: Recording.from_samples(spec, d["t"], d["state"], d["i"], d["st"]) for spec, d in self.data.items()
        }


class SpikingNet(nn.Module):
    """A feed-forward network that runs as ANN (:meth:`ann`) or SNN (:meth:`snn`); see the module docstring.

    ``forward(x, time_steps=0, encoder="direct")`` calls :meth:`ann` when ``time_steps == 0`` and
    :meth:`snn` otherwise (returning logits only), so that ``DistributedDataParallel`` can wrap either mode.
    """

    def __init__(self, nodes: list[nn.Module], input_shape: tuple[int, ...]):
        super().__init__()
        self.nodes = nn.ModuleList(nodes)
        self.input_shape = tuple(int(s) for s in input_shape)
        self._names = self._name_nodes()
        if not any(isinstance(n, (LIF, Residual)) for n in self.nodes):
            raise ValueError("a SpikingNet needs at least one LIF activation")
        with torch.no_grad():  # fail at construction, not in training, when the shapes do not fit
            try:
                self.ann(torch.zeros(1, *self.input_shape))
            except RuntimeError as e:
                raise ValueError(f"layers do not fit input shape {self.input_shape}: {e}") from None

    # ---- structure ----
    def _name_nodes(self) -> dict[int, str]:
        names, conv, fc, act, res = {}, 0, 0, 0, 0
        for node in self.nodes:
            if isinstance(node, nn.Conv2d):
                conv += 1
                names[id(node)] = f"conv{conv}"
            elif isinstance(node, nn.Linear):
                fc += 1
                names[id(node)] = f"fc{fc}"
            elif isinstance(node, LIF):
                act += 1
                names[id(node)] = f"act{act}"
            elif isinstance(node, Residual):
                res += 1
                for part in ("conv1", "act1", "conv2", "shortcut", "act2"):
                    sub = getattr(node, part)
                    if sub is not None:
                        names[id(sub)] = f"res{res}.{part}"
        return names

    def name_of(self, module: nn.Module) -> str:
        if id(module) not in self._names:  # a copied network holds new module objects: name them again
            self._names = self._name_nodes()
        return self._names[id(module)]

    def activations(self) -> list[LIF]:
        """The LIF nodes in forward order (including those inside residual blocks)."""
        out = []
        for node in self.nodes:
            if isinstance(node, LIF):
                out.append(node)
            elif isinstance(node, Residual):
                out += [node.act1, node.act2]
        return out

    def weighted_layers(self) -> Iterator[tuple[str, nn.Module]]:
        for node in self.nodes:
            if isinstance(node, _WEIGHTED):
                yield self.name_of(node), node
            elif isinstance(node, Residual):
                for sub in (node.conv1, node.conv2, node.shortcut):
                    if sub is not None:
                        yield self.name_of(sub), sub

    def set_neurons(
        self,
        *,
        leak: float | None = None,
        reset: str | None = None,
        surrogate: str | None = None,
        train_leak: bool | None = None,
        train_threshold: bool | None = None,
    ) -> None:
        """Change every activation's neuron settings (e.g. IF → LIF with STDB for hybrid training)."""
        for act in self.activations():
            if leak is not None:
                with torch.no_grad():
                    act.leak.fill_(leak)
            if reset is not None:
                act.reset = reset
            if surrogate is not None:
                act.surrogate = surrogate
            if train_leak is not None:
                act.leak.requires_grad_(train_leak)
            if train_threshold is not None:
                act.threshold.requires_grad_(train_threshold)

    def clamp_(self) -> None:
        """Keep every λ in [0, 1] and θ > 0 (after optimizer steps that train them)."""
        for act in self.activations():
            act.clamp_()

    def forward(
        self, x: torch.Tensor, time_steps: int = 0, encoder: Encoder = "direct", energy_cost: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits; with ``energy_cost`` (SNN only) also the differentiable E_SNN / E_ANN of the batch."""
        if time_steps == 0:
            if energy_cost:
                raise ValueError("energy_cost needs an SNN run (time_steps >= 1)")
            return self.ann(x)
        out = self.snn(x, time_steps, encoder, energy_cost=energy_cost)
        return (out.logits, out.energy_cost) if energy_cost else out.logits

    # ---- ANN ----
    def ann(self, x: torch.Tensor, observe: Callable[[str, torch.Tensor], None] | None = None) -> torch.Tensor:
        """ANN forward (LIF nodes → ReLU). ``observe(name, pre_activation)`` sees each activation's input."""
        for node in self.nodes:
            if isinstance(node, LIF):
                if observe is not None:
                    observe(self.name_of(node), x)
                x = F.relu(x)
            elif isinstance(node, FixedDropout):
                x = F.dropout(x, node.p, node.training)
            elif isinstance(node, Residual):
                if observe is None:
                    x = node.ann(x)
                else:
                    h = node.conv1(x)
                    observe(self.name_of(node.act1), h)
                    h = node.conv2(F.relu(h)) + (x if node.shortcut is None else node.shortcut(x))
                    observe(self.name_of(node.act2), h)
                    x = F.relu(h)
            else:
                x = node(x)
        return x

    # ---- SNN ----
    def snn(
        self,
        x: torch.Tensor,
        time_steps: int,
        encoder: Encoder = "direct",
        count: bool = False,
        observe: Callable[[str, torch.Tensor], None] | None = None,
        generator: torch.Generator | None = None,
        mode: Literal["layer", "step"] = "layer",
        energy_cost: bool = False,
        record: bool = False,
        monitors: tuple = (),
        step_ms: float = 1.0,
    ) -> SNNOutput:
        """Run ``time_steps`` steps on the batch ``x`` (analog values, batch first).

        ``count``: also return a :class:`RunStats` (spike rates, events, MACs). ``observe(name, current)`` sees
        every activation's input current (threshold balancing uses it). ``mode="layer"`` runs each layer over all
        steps before the next (valid because the network is feed-forward: a layer's input at step t never depends
        on its own later output), with one fused autograd node per LIF layer (:func:`~bioSNN.nn.neurons.lif_sequence`);
        ``mode="step"`` runs every layer at step t before step t+1 with :func:`~bioSNN.nn.lif_step`. Both give
        the same spikes, logits and gradients; "layer" is faster, "step" needs less memory.

        ``energy_cost``: also return ``E_SNN / E_ANN`` for this batch under :mod:`bioSNN.energy` (analog-input
        layers as MACs at every step, spiking layers as accumulates per synaptic event) as a tensor whose
        gradient flows through the spikes' surrogate gradients, for an energy penalty in the loss. Its value
        is 1 / ``energy_ratio_ann_over_snn`` of the same run's :class:`RunStats`.

        ``record``: also return every activation's spikes, ``(T, batch, ...)`` tensors by activation name
        (detached), e.g. for rasters.

        ``monitors``: :class:`~bioSNN.monitors.MonitorSpec` s of activations (population = activation name, e.g.
        ``act1``; variable ``v``, the membrane potential after the step's reset; ``indices`` into the flattened
        neurons of one sample), recorded from the batch's first sample as the Brian2 engine records (a step lasts
        ``step_ms``; only inside the window), returned as ``recordings``; the run goes step by step.
        """
        if time_steps < 1:
            raise ValueError(f"time_steps must be >= 1, got {time_steps}")
        if encoder not in ("direct", "poisson", "frames"):
            raise ValueError(f"encoder must be 'direct', 'poisson' or 'frames', got {encoder!r}")
        if mode not in ("layer", "step"):
            raise ValueError(f"mode must be 'layer' or 'step', got {mode!r}")
        if encoder == "frames":
            if x.dim() < 2 or x.shape[1] != time_steps or tuple(x.shape[2:]) != self.input_shape:
                raise ValueError(
                    f"frames must be (batch, {time_steps}, {', '.join(map(str, self.input_shape))}), "
                    f"got {tuple(x.shape)}"
                )
        elif tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"input shape {tuple(x.shape[1:])} does not match the network's {self.input_shape}")
        ctx = _Ctx(
            stats=RunStats() if count else None,
            observe=observe,
            cost_pj=[] if energy_cost else None,
            spikes={} if record else None,
        )
        recorder = None
        if monitors:
            recorder = _Recorder(monitors, {self.name_of(a) for a in self.activations()}, step_ms)
            ctx.monitor, mode = recorder, "step"
        if mode == "layer":
            if encoder == "frames":
                x_seq = x.transpose(0, 1)
            else:
                x_seq = x.unsqueeze(0) if encoder == "direct" else poisson_encode(x, time_steps, generator)
            ctx.analog_input = encoder == "direct"
            out = self._snn_layers(x_seq, time_steps, ctx)
        else:
            out = None
            for t in range(time_steps):
                inp = (
                    x if encoder == "direct" else x[:, t] if encoder == "frames" else poisson_encode(x, 1, generator)[0]
                )
                ctx.analog_input = encoder == "direct"
                ctx.step = t
                y = self._snn_step(inp, ctx)
                out = y if out is None else out + y
                ctx.first_step = False
        if ctx.stats is not None:
            ctx.stats.samples, ctx.stats.time_steps = x.shape[0], time_steps
        cost = None
        if energy_cost:
            ann_pj = sum(ctx.cost_macs.values()) * energy.E_MAC_PJ
            spiking = torch.stack(ctx.cost_pj).sum() if ctx.cost_pj else out.new_zeros(())
            cost = (spiking / x.shape[0] + ctx.cost_analog_pj) / ann_pj
        spikes = None
        if record:
            spikes = {k: v if isinstance(v, torch.Tensor) else torch.stack(v) for k, v in ctx.spikes.items()}
        return SNNOutput(out, ctx.stats, cost, spikes, recorder.recordings() if recorder is not None else None)

    # ---- layer-by-layer execution: tensors (T, batch, ...); a leading 1 means "the same at every step" ----
    @staticmethod
    def _apply_seq(fn, x_seq: torch.Tensor) -> torch.Tensor:
        T, B = x_seq.shape[:2]
        y = fn(x_seq.reshape(T * B, *x_seq.shape[2:]))
        return y.reshape(T, B, *y.shape[1:])

    @staticmethod
    def _cost(layer: nn.Module, x: torch.Tensor, y0: torch.Tensor, steps: int, ctx: _Ctx) -> None:
        """Add one weighted layer's share to the energy cost (``x``: its input, ``steps`` times over; ``y0``: one
        step of its output)."""
        if ctx.cost_pj is None:
            return
        macs = _macs(layer, y0)
        ctx.cost_macs[id(layer)] = macs
        if ctx.analog_input:  # MACs at every step: no gradient to the spikes, but part of the ratio
            ctx.cost_analog_pj += macs * energy.E_MAC_PJ * steps
        else:
            ctx.cost_pj.append(_fanout_events(layer, x, soft=True) * steps * energy.E_AC_PJ)

    def _weighted_seq(self, layer: nn.Module, x_seq: torch.Tensor, T: int, ctx: _Ctx) -> torch.Tensor:
        y = self._apply_seq(layer, x_seq)
        self._cost(layer, x_seq.reshape(-1, *x_seq.shape[2:]), y[0], T if x_seq.shape[0] == 1 else 1, ctx)
        st = ctx.stats
        if st is not None:
            name = self.name_of(layer)
            with torch.no_grad():
                ev = float(_fanout_events(layer, x_seq.reshape(-1, *x_seq.shape[2:])))
                st.events[name] = st.events.get(name, 0.0) + ev * (T if x_seq.shape[0] == 1 else 1)
            st.macs[name] = _macs(layer, y[0])
            st.outputs[name] = float(y[0][0].numel())
            st.analog.setdefault(name, ctx.analog_input)
        ctx.analog_input = False
        return y

    def _act_seq(self, act: LIF, x_seq: torch.Tensor, T: int, ctx: _Ctx) -> torch.Tensor:
        name = self.name_of(act)
        if x_seq.shape[0] != T:  # a constant current (direct input through the first layer)
            x_seq = x_seq.expand(T, *x_seq.shape[1:])
        if ctx.observe is not None:
            ctx.observe(name, x_seq)
        p = act.params()
        if p.leak.dim() == 0 and p.threshold.dim() == 0:
            o, _ = lif_sequence(x_seq, None, p)
        else:
            state, outs = None, []
            for t in range(T):
                o_t, state = act(x_seq[t], state)
                outs.append(o_t)
            o = torch.stack(outs)
        if ctx.stats is not None:
            st = ctx.stats
            st.spikes[name] = st.spikes.get(name, 0.0) + float(o.detach().sum())
            st.neurons[name] = o[0, 0].numel()
        if ctx.spikes is not None:
            ctx.spikes[name] = o.detach()
        return o

    def _snn_layers(self, x_seq: torch.Tensor, T: int, ctx: _Ctx) -> torch.Tensor:
        x = x_seq
        for node in self.nodes:
            if isinstance(node, _WEIGHTED):
                x = self._weighted_seq(node, x, T, ctx)
            elif isinstance(node, LIF):
                x = self._act_seq(node, x, T, ctx)
            elif isinstance(node, FixedDropout):
                mask = node.mask(x[0])
                if mask is not None:
                    x = x * mask
            elif isinstance(node, Residual):
                h = self._act_seq(node.act1, self._weighted_seq(node.conv1, x, T, ctx), T, ctx)
                sc = x if node.shortcut is None else self._weighted_seq(node.shortcut, x, T, ctx)
                x = self._act_seq(node.act2, self._weighted_seq(node.conv2, h, T, ctx) + sc, T, ctx)
            else:
                x = self._apply_seq(node, x)
        return x.sum(0) if x.shape[0] == T else x[0] * T

    # ---- step-by-step execution ----
    def _weighted(self, layer: nn.Module, x: torch.Tensor, ctx: _Ctx) -> torch.Tensor:
        y = layer(x)
        self._cost(layer, x, y, 1, ctx)
        st = ctx.stats
        if st is not None:
            name = self.name_of(layer)
            with torch.no_grad():
                st.events[name] = st.events.get(name, 0.0) + float(_fanout_events(layer, x))
            if ctx.first_step:
                st.macs[name] = _macs(layer, y)
                st.outputs[name] = float(y[0].numel())
                st.analog.setdefault(name, ctx.analog_input)
        ctx.analog_input = False
        return y

    def _act(self, act: LIF, x: torch.Tensor, ctx: _Ctx) -> torch.Tensor:
        name = self.name_of(act)
        if ctx.observe is not None:
            ctx.observe(name, x)
        o, ctx.states[name] = act(x, ctx.states.get(name))
        if ctx.stats is not None:
            st = ctx.stats
            st.spikes[name] = st.spikes.get(name, 0.0) + float(o.detach().sum())
            st.neurons[name] = o[0].numel()
        if ctx.spikes is not None:
            ctx.spikes.setdefault(name, []).append(o.detach())
        if ctx.monitor is not None:
            ctx.monitor(name, ctx.step, ctx.states[name].u, o)
        return o

    def _snn_step(self, x: torch.Tensor, ctx: _Ctx) -> torch.Tensor:
        for i, node in enumerate(self.nodes):
            if isinstance(node, _WEIGHTED):
                x = self._weighted(node, x, ctx)
            elif isinstance(node, LIF):
                x = self._act(node, x, ctx)
            elif isinstance(node, FixedDropout):
                key = f"dropout{i}"
                if ctx.first_step:
                    ctx.states[key] = node.mask(x)
                if ctx.states[key] is not None:
                    x = x * ctx.states[key]
            elif isinstance(node, Residual):
                h = self._act(node.act1, self._weighted(node.conv1, x, ctx), ctx)
                sc = x if node.shortcut is None else self._weighted(node.shortcut, x, ctx)
                x = self._act(node.act2, self._weighted(node.conv2, h, ctx) + sc, ctx)
            else:
                x = node(x)
        return x

"""NIR → Brian2 and Brian2 → NIR: a NIR graph as an equation-defined Brian2 network, and back.

Building (:class:`NIRBrianNetwork`)
-----------------------------------
Every neuron node becomes a ``NeuronGroup`` whose equations are NIR's ODE, with NIR's units (time constants in
seconds, membrane and currents dimensionless, ``r`` of IF/I in 1/s):

=========  ==========================================================  ======================================
NIR node   Brian2 equations                                             threshold / reset
=========  ==========================================================  ======================================
LIF        ``dv/dt = (v_leak - v + r*I_in)/tau``                        ``v > v_threshold`` / ``v = v_reset``
IF         ``dv/dt = r*I_in``                                           same
LI         ``dv/dt = (v_leak - v + r*I_in)/tau``                        none (a leaky readout)
I          ``dv/dt = r*I_in``                                           none (an integrating readout)
CubaLIF    ``dI/dt = (w_in*I_in - I)/tau_syn``,                         ``v > v_threshold`` / ``v = v_reset``
           ``dv/dt = (v_leak - v + r*I)/tau_mem``
=========  ==========================================================  ======================================

A neuron node that bioSNN wrote (``metadata["reset"] == "subtract"``) resets by ``v -= v_threshold`` and fires at
``v >= v_threshold`` (``metadata["threshold_rule"]``), as bioSNN's PyTorch engine does.

``I_in = I_syn + I_ext`` is the input current of the step: ``I_syn`` collects synaptic events (and starts every
step at the bias of the incoming layers), ``I_ext`` is the analog input (a summed variable from the input
group). The linear nodes between two neuron nodes (Affine, Linear, Conv2d, AvgPool2d, SumPool2d, Flatten, Scale)
are one linear map; it is built as a sparse matrix (convolutions and pooling expanded to index arrays with numpy,
no Python loop over synapses; pooling and flatten are fixed weights 1/k² and 1) and becomes one ``Synapses``
object per pair of neuron nodes (``on_pre: I_syn_post += w``). Two paths into one node (a residual block) are two
``Synapses`` into the same ``I_syn``. The input is a ``NeuronGroup`` with ``x = frames(t, i)`` from a
``TimedArray`` of the per-step input frames (the analog image at every step for the ``direct`` encoder, the
signed spikes for ``poisson``).

Integration: forward Euler at the graph's ``dt``, written as the update it amounts to,
``v ← λ·v + g·I_in + c`` with ``λ = 1 − dt/τ``, ``g = dt·r/τ`` (``dt·r`` for IF/I), ``c = dt·v_leak/τ``, stored per
neuron (``decay``, ``gain``, ``drift``; the CubaLIF current has its own). For a node that bioSNN wrote, λ is the
recorded ``leak_per_step`` and ``g`` is exactly 1, so one Brian2 step is the PyTorch engine's
``u ← λ·u + x``. Within one time step every object runs in the order of the graph (a layer's update, its
threshold, the synaptic events it sends, its reset; then the next layer), all in the ``groups`` slot, so a spike
reaches the next layer in the same step, as in the PyTorch engine. Images run one after another in one
simulation; every ``T`` steps the membranes and currents go back to their initial values.

What may differ from the PyTorch engine is the order in which a neuron's synaptic input is summed (and the
engine's fused multiply-add in ``λ·u + x``): in float64 these are a few units in the last place, far below any
distance of a membrane to its threshold that occurs in practice; the spikes of every layer are compared in the
tests.

Writing (:func:`brian_to_nir`)
------------------------------
A Brian2 network whose groups have these equations (built here, or by hand with the same equations) and whose
synapses are static is written back as NIR, with parameters and weights read from the Brian2 objects. Anything
else is refused with what NIR cannot express: conductance-based synapses (a membrane equation in which a
synaptic variable multiplies the membrane), thresholds that change (adaptive ``theta``), refractory periods and
plastic synapses (STDP traces, weight updates on spikes).
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from dataclasses import dataclass, field

import numpy as np

from ..brian.compile_cache import build_device
from .nir_graph import RESET, THRESHOLD_RULE, NIRError, validate

__all__ = ["NIRBrianNetwork", "BrianResult", "simulate", "brian_to_nir", "linear_map"]

NEURON_KINDS = ("IF", "LIF", "LI", "I", "CubaLIF")
LINEAR_KINDS = ("Affine", "Linear", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Scale")

# NIR's ODEs, as written into the groups (``I_in`` = the step's input current)
_ODES = {
    "LIF": "dv/dt = (v_leak - v + r*I_in)/tau : 1",
    "LI": "dv/dt = (v_leak - v + r*I_in)/tau : 1",
    "IF": "dv/dt = r*I_in : 1",
    "I": "dv/dt = r*I_in : 1",
    "CubaLIF": "dI/dt = (w_in*I_in - I)/tau_syn : 1\ndv/dt = (v_leak - v + r*I)/tau_mem : 1",
}
_PARAMS = {
    "LIF": {"tau": "second", "r": "1", "v_leak": "1", "v_threshold": "1", "v_reset": "1"},
    "LI": {"tau": "second", "r": "1", "v_leak": "1"},
    "IF": {"r": "Hz", "v_threshold": "1", "v_reset": "1"},
    "I": {"r": "Hz"},
    "CubaLIF": {
        "tau_syn": "second",
        "tau_mem": "second",
        "r": "1",
        "v_leak": "1",
        "w_in": "1",
        "v_threshold": "1",
        "v_reset": "1",
    },
}
# the forward-Euler step of each ODE, with its coefficients as per-neuron constants
_STEPS = {
    "LIF": "v = decay*v + gain*I_in + drift",
    "LI": "v = decay*v + gain*I_in + drift",
    "IF": "v = v + gain*I_in",
    "I": "v = v + gain*I_in",
    # both from the values at the start of the step (v first: it reads the old I)
    "CubaLIF": "v = decay*v + gain*I + drift\nI = decay_syn*I + gain_syn*I_in",
}
_COEFFS = {
    "LIF": ("decay", "gain", "drift"),
    "LI": ("decay", "gain", "drift"),
    "IF": ("gain",),
    "I": ("gain",),
    "CubaLIF": ("decay", "gain", "drift", "decay_syn", "gain_syn"),
}


class _ForwardEuler:
    """Brian2 state-update method: forward Euler of a NIR neuron's ODE at the clock's dt, as its per-neuron
    coefficients say (see the module). Refuses equations other than the ones it was made for."""

    def __init__(self, kind: str):
        self.kind, self.__name__ = kind, f"nir_forward_euler[{kind}]"

    def __call__(self, equations, variables=None, method_options=None):
        from brian2.stateupdaters.base import UnsupportedEquationsException

        if set(equations.diff_eq_names) != set(re.findall(r"d(\w+)/dt", _ODES[self.kind])):
            raise UnsupportedEquationsException(f"{self.__name__} integrates NIR {self.kind} equations only")
        return _STEPS[self.kind]


def _np(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _pair(v) -> tuple[int, int]:
    a = np.asarray(v).ravel()
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


def linear_map(name: str, node, in_shape: tuple) -> tuple:
    """The linear node ``node`` as ``(matrix (n_out × n_in), bias (n_out,), out_shape)``; a scipy CSR matrix, for
    input vectors in C order of ``in_shape``."""
    import nir
    import scipy.sparse as sp

    n_in = math.prod(in_shape)
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = _np(node.weight)
        if w.ndim != 2 or w.shape[1] != n_in:
            raise NIRError(f"{name}: weight {w.shape} does not take an input of {n_in} values ({in_shape})")
        bias = _np(node.bias) if isinstance(node, nir.Affine) else np.zeros(w.shape[0])
        return sp.csr_matrix(w), bias.reshape(-1), (w.shape[0],)
    if isinstance(node, nir.Scale):
        s = np.broadcast_to(_np(node.scale), in_shape).ravel()
        return sp.diags(s, format="csr"), np.zeros(n_in), in_shape
    if isinstance(node, nir.Flatten):
        start = node.start_dim % len(in_shape)
        end = node.end_dim % len(in_shape)
        out = in_shape[:start] + (math.prod(in_shape[start : end + 1]),) + in_shape[end + 1 :]
        return sp.identity(n_in, format="csr"), np.zeros(n_in), tuple(out)
    if isinstance(node, nir.Conv2d):
        w = _np(node.weight)
        if len(in_shape) != 3:
            raise NIRError(f"{name}: Conv2d needs a (channels, height, width) input, got {in_shape}")
        c_in, h, wd = in_shape
        c_out, c_g, kh, kw = w.shape
        groups = int(node.groups)
        (sy, sx), (dy, dx) = _pair(node.stride), _pair(node.dilation)
        if isinstance(node.padding, str):
            if node.padding == "valid":
                py = px = 0
            elif node.padding == "same" and (sy, sx) == (1, 1):
                py, px = dy * (kh - 1) // 2, dx * (kw - 1) // 2
            else:
                raise NIRError(f"{name}: padding {node.padding!r} with stride {(sy, sx)}")
        else:
            py, px = _pair(node.padding)
        if c_g * groups != c_in:
            raise NIRError(f"{name}: weight {w.shape} with {groups} group(s) does not take {c_in} input channels")
        ho, wo = (h + 2 * py - dy * (kh - 1) - 1) // sy + 1, (wd + 2 * px - dx * (kw - 1) - 1) // sx + 1
        co, oy, ox, cg, ky, kx = np.ix_(
            np.arange(c_out), np.arange(ho), np.arange(wo), np.arange(c_g), np.arange(kh), np.arange(kw)
        )
        ci = (co // (c_out // groups)) * c_g + cg
        iy, ix = oy * sy - py + ky * dy, ox * sx - px + kx * dx
        shape = (c_out, ho, wo, c_g, kh, kw)
        ok = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd), shape)
        rows = np.broadcast_to((co * ho + oy) * wo + ox, shape)[ok]
        cols = np.broadcast_to((ci * h + iy) * wd + ix, shape)[ok]
        vals = np.broadcast_to(w[co, cg, ky, kx], shape)[ok]
        m = sp.csr_matrix((vals, (rows, cols)), shape=(c_out * ho * wo, n_in))
        bias = np.repeat(_np(node.bias).reshape(-1), ho * wo) if node.bias is not None else np.zeros(m.shape[0])
        return m, bias, (c_out, ho, wo)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        if len(in_shape) != 3:
            raise NIRError(f"{name}: pooling needs a (channels, height, width) input, got {in_shape}")
        c, h, wd = in_shape
        (kh, kw), (sy, sx), (py, px) = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
        ho, wo = (h + 2 * py - kh) // sy + 1, (wd + 2 * px - kw) // sx + 1
        ch, oy, ox, ky, kx = np.ix_(np.arange(c), np.arange(ho), np.arange(wo), np.arange(kh), np.arange(kw))
        iy, ix = oy * sy - py + ky, ox * sx - px + kx
        shape = (c, ho, wo, kh, kw)
        ok = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd), shape)
        rows = np.broadcast_to((ch * ho + oy) * wo + ox, shape)[ok]
        cols = np.broadcast_to((ch * h + iy) * wd + ix, shape)[ok]
        value = 1.0 / (kh * kw) if isinstance(node, nir.AvgPool2d) else 1.0  # zero padding counts (PyTorch's default)
        m = sp.csr_matrix((np.full(rows.size, value), (rows, cols)), shape=(c * ho * wo, n_in))
        return m, np.zeros(m.shape[0]), (c, ho, wo)
    raise NIRError(f"{name}: NIR node {type(node).__name__} has no Brian2 counterpart here")


def _kind(node) -> str:
    return type(node).__name__


def _neuron_shape(node) -> tuple | None:
    for attr in ("v_threshold", "tau", "tau_mem", "r"):
        v = getattr(node, attr, None)
        if v is not None and np.ndim(v) > 0:
            return tuple(np.shape(v))
    return None


@dataclass
class BrianResult:
    """One simulation: ``outputs`` (images × output neurons: the readout's membrane after the last step, or the
    spike counts of a spiking output), ``spikes`` by node name (``(T, images, *shape)`` 0/1 arrays, or ``None``
    when not recorded), and the wall seconds of the simulation (``seconds``; build and compile excluded)."""

    outputs: np.ndarray
    spikes: dict[str, np.ndarray] | None
    seconds: float
    build_seconds: float = 0.0

    @property
    def predictions(self) -> np.ndarray:
        return self.outputs.argmax(1)


@dataclass
class _Layer:
    name: str
    kind: str
    size: int
    shape: tuple
    node: object
    incoming: dict = field(default_factory=dict)  # source name -> csr matrix
    bias: np.ndarray | None = None
    analog: object = None  # csr matrix from the input


@contextlib.contextmanager
def _float64():
    from brian2 import prefs

    saved = prefs.core.default_float_dtype
    prefs.core.default_float_dtype = np.float64
    try:
        yield
    finally:
        prefs.core.default_float_dtype = saved


class NIRBrianNetwork:
    """A Brian2 network built from a NIR graph (see the module), sized for ``images`` inputs of ``time_steps``
    steps each. Build it inside :func:`bioSNN.brian.backend.backend` to choose the Brian2 backend; a
    ``cpp_standalone`` project is generated and compiled on the first :meth:`run` and re-run for every further
    batch of the same size with the new frames as a run argument.

    ``dt`` (s) and ``time_steps`` default to the graph's metadata. ``record``: keep every spiking layer's spikes.
    """

    def __init__(
        self,
        graph,
        images: int,
        time_steps: int | None = None,
        dt: float | None = None,
        record: bool = True,
        standalone_dir: str | None = None,
    ):
        import brian2 as b2
        import nir

        validate(graph)  # the same checks as the PyTorch reader's (τ > 0, r > 0, finite thresholds ...)
        meta = dict(graph.metadata or {})
        self.dt = float(dt if dt is not None else meta.get("dt", 0) or 0)
        self.time_steps = int(time_steps if time_steps is not None else meta.get("time_steps", 0) or 0)
        if not math.isfinite(self.dt) or self.dt <= 0:
            raise NIRError(
                "the graph records no dt: pass dt= (the step of the simulation)"
                if not self.dt
                else f"dt must be a positive number of seconds, got {self.dt!r}"
            )
        if self.time_steps < 1:
            raise NIRError("the graph records no time_steps: pass time_steps=")
        if images < 1:
            raise ValueError(f"images must be >= 1, got {images}")
        self.graph, self.images, self.encoder = graph, int(images), meta.get("encoder")
        self.layers, self.input_name, self.input_shape = self._plan(graph, nir)
        self.output_name = self._output_layer(graph, nir)
        self._standalone = b2.get_device().__class__.__name__ != "RuntimeDevice"
        self._directory = (b2.get_device().build_options or {}).get("directory") if self._standalone else None
        if self._standalone and not self._directory:
            raise NIRError(
                "a standalone NIRBrianNetwork needs the project directory of its backend "
                "(build it inside bioSNN.brian.backend.backend(Backend(name, directory=...)))"
            )
        self._built = False
        self.build_seconds = 0.0
        with _float64():
            self._make(b2, record)

    # ---- the graph as layers (neuron nodes) and linear maps between them ----
    def _plan(self, graph, nir):
        incoming: dict[str, list[str]] = {}
        for s, t in graph.edges:
            if s not in graph.nodes or t not in graph.nodes:
                raise NIRError(f"edge {s} → {t}: no node of that name")
            incoming.setdefault(t, []).append(s)
        inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
        if len(inputs) != 1:
            raise NIRError(f"need exactly one Input node, the graph has {len(inputs)}")
        in_name = inputs[0]
        in_shape = tuple(int(v) for v in np.asarray(graph.nodes[in_name].input_type["input"]).ravel())
        for k, node in graph.nodes.items():
            kind = _kind(node)
            if kind not in NEURON_KINDS + LINEAR_KINDS + ("Input", "Output"):
                raise NIRError(
                    f"{k}: NIR node {kind} has no Brian2 counterpart here (it reads "
                    f"{', '.join(NEURON_KINDS + LINEAR_KINDS)})"
                )
        layers: dict[str, _Layer] = {}
        shapes: dict[str, tuple] = {in_name: in_shape}
        maps: dict[str, tuple] = {}  # linear node -> (matrix, bias, out_shape), built once
        visiting: set[str] = set()

        def linear(name: str, s_in: tuple) -> tuple:
            if name not in maps:
                maps[name] = linear_map(name, graph.nodes[name], s_in)
            return maps[name]

        def out_shape(name: str) -> tuple:
            if name in shapes:
                return shapes[name]
            if name in visiting:
                raise NIRError(f"{name}: the graph has a cycle through it; recurrent NIR graphs are not read yet")
            visiting.add(name)
            node = graph.nodes[name]
            srcs = incoming.get(name, [])
            if not srcs:
                raise NIRError(f"{name}: no input edge")
            shp = {out_shape(s) for s in srcs}
            if len(shp) != 1:
                raise NIRError(f"{name}: its inputs have different shapes {sorted(shp)}")
            (s_in,) = shp
            if _kind(node) in LINEAR_KINDS:
                shapes[name] = linear(name, s_in)[2]
            else:
                shapes[name] = s_in
            visiting.discard(name)
            return shapes[name]

        def paths(name: str) -> tuple[dict, np.ndarray, object]:
            """What reaches node ``name``'s output: {neuron source: matrix}, bias, matrix from the input."""
            node = graph.nodes[name]
            if name == in_name:
                return {}, None, "identity"
            if _kind(node) in NEURON_KINDS:
                return {name: "identity"}, None, None
            # a linear node (the only other kind a neuron node's inputs come through)
            srcs = incoming.get(name, [])
            m_node, bias, _ = linear(name, out_shape(srcs[0]))
            acc, bias, analog = {}, bias.copy(), None
            for s in srcs:
                sub, sub_bias, sub_analog = paths(s)
                for src, m in sub.items():
                    m = _apply(m_node, m, math.prod(out_shape(src)))
                    acc[src] = m if src not in acc else acc[src] + m
                if sub_bias is not None:
                    bias = bias + m_node @ sub_bias
                if sub_analog is not None:
                    a = _apply(m_node, sub_analog, math.prod(in_shape))
                    analog = a if analog is None else analog + a
            return acc, bias, analog

        order = _topological(graph, incoming)
        for name in order:
            node = graph.nodes[name]
            kind = _kind(node)
            if kind not in NEURON_KINDS:
                continue
            shape = out_shape(name)
            declared = _neuron_shape(node)
            if declared is not None and math.prod(declared) not in (1, math.prod(shape)):
                raise NIRError(f"{name}: parameters of shape {declared} for an input of shape {shape}")
            layer = _Layer(name, kind, math.prod(shape), shape, node, bias=np.zeros(math.prod(shape)))
            for s in incoming.get(name, []):
                sub, sub_bias, sub_analog = paths(s)
                for src, m in sub.items():
                    if _kind(graph.nodes[src]) in ("LI", "I"):
                        raise NIRError(
                            f"{src} → {name}: {_kind(graph.nodes[src])} neurons do not spike; only "
                            "spiking nodes may feed another neuron node"
                        )
                    m = _apply(None, m, math.prod(out_shape(src)))
                    layer.incoming[src] = m if src not in layer.incoming else layer.incoming[src] + m
                if sub_bias is not None:
                    layer.bias = layer.bias + sub_bias
                if sub_analog is not None:
                    a = _apply(None, sub_analog, math.prod(in_shape))
                    layer.analog = a if layer.analog is None else layer.analog + a
            layers[name] = layer
        return layers, in_name, in_shape

    def _output_layer(self, graph, nir) -> str:
        outs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
        if len(outs) != 1:
            raise NIRError(f"need exactly one Output node, the graph has {len(outs)}")
        feeding = [s for s, t in graph.edges if t == outs[0]]
        if len(feeding) != 1 or feeding[0] not in self.layers:
            raise NIRError(f"{outs[0]}: the output must be fed by one neuron node (IF, LIF, LI, I, CubaLIF)")
        return feeding[0]

    # ---- Brian2 objects ----
    def _make(self, b2, record: bool) -> None:
        dt, T = self.dt * b2.second, self.time_steps
        clock = b2.Clock(dt=dt, name="nir_clock*")
        n_in = math.prod(self.input_shape)
        self.frames = b2.TimedArray(np.zeros((self.images * T, n_in)), dt=dt, name="nir_frames*")
        self.input = b2.NeuronGroup(
            n_in, "x = frames(t, i) : 1", clock=clock, name=_ident(self.input_name), namespace={"frames": self.frames}
        )
        objects: list = [self.input]
        self.groups, self.synapses, self.monitors = {}, {}, {}
        for k, layer in enumerate(self.layers.values()):
            base = 10 * (k + 1)
            g = self._group(b2, layer, clock)
            self.groups[layer.name] = g
            objects.append(g)
            g.state_updater.when, g.state_updater.order = "groups", base + 1
            g.run_regularly("I_syn = b", when="groups", order=base + 2, name=f"{g.name}_input_reset")
            # a new image: initial state (every T steps, before anything else of that step)
            init = "v = 0; I_syn = b" + ("; I = 0" if layer.kind == "CubaLIF" else "")
            g.run_regularly(init, dt=T * dt, when="groups", order=0, name=f"{g.name}_new_image")
            if "spike" in g.thresholder:
                g.thresholder["spike"].when, g.thresholder["spike"].order = "groups", base + 3
                g.resetter["spike"].when, g.resetter["spike"].order = "groups", base + 5
            if layer.analog is not None:
                m = layer.analog.tocoo()
                s = b2.Synapses(
                    self.input,
                    g,
                    "w : 1\nI_ext_post = w*x_pre : 1 (summed)",
                    clock=clock,
                    namespace={"frames": self.frames},
                    name=f"{_ident(self.input_name)}_to_{g.name}",
                )
                s.connect(i=m.col.astype(np.int32), j=m.row.astype(np.int32))
                s.w[:] = m.data
                s.summed_updaters["I_ext_post"].when = "groups"
                s.summed_updaters["I_ext_post"].order = base
                self.synapses[(self.input_name, layer.name)] = s
                objects.append(s)
            for src, mat in layer.incoming.items():
                m = mat.tocoo()
                s = b2.Synapses(
                    self.groups[src],
                    g,
                    "w : 1",
                    on_pre="I_syn_post += w",
                    clock=clock,
                    name=f"{self.groups[src].name}_to_{g.name}",
                )
                s.connect(i=m.col.astype(np.int32), j=m.row.astype(np.int32))
                s.w[:] = m.data
                src_order = 10 * (list(self.layers).index(src) + 1)
                s.pre.when, s.pre.order = "groups", src_order + 4
                self.synapses[(src, layer.name)] = s
                objects.append(s)
            if record and "spike" in g.thresholder:
                self.monitors[layer.name] = b2.SpikeMonitor(g, name=f"{g.name}_spikes")
                objects.append(self.monitors[layer.name])
        out = self.groups[self.output_name]
        if "spike" in out.thresholder:
            if self.output_name not in self.monitors:
                self.monitors[self.output_name] = b2.SpikeMonitor(out, name=f"{out.name}_spikes")
                objects.append(self.monitors[self.output_name])
            self.readout = None
        else:
            self.readout = b2.StateMonitor(out, "v", record=True, when="end", name=f"{out.name}_v")
            objects.append(self.readout)
        self.network = b2.Network(*objects, name="nir_network*")

    def _group(self, b2, layer: _Layer, clock):
        node, kind, n = layer.node, layer.kind, layer.size
        md = dict(node.metadata or {})
        params = _PARAMS[kind]
        eqs = "\n".join(
            [_ODES[kind], "I_in = I_syn + I_ext : 1", "I_syn : 1", "I_ext : 1", "b : 1 (constant)"]
            + [f"{p} : {u} (constant)" for p, u in params.items()]
            + [f"{c} : 1 (constant)" for c in _COEFFS[kind]]
        )
        threshold = reset = None
        if "v_threshold" in params:
            ge = md.get("threshold_rule") == THRESHOLD_RULE
            threshold = "v >= v_threshold" if ge else "v > v_threshold"
            reset = "v -= v_threshold" if md.get("reset") == RESET else "v = v_reset"
        g = b2.NeuronGroup(
            n, eqs, threshold=threshold, reset=reset, method=_ForwardEuler(kind), clock=clock, name=_ident(layer.name)
        )
        vals = {}
        for p, unit in params.items():
            raw = getattr(node, p, None)
            if raw is None:
                raw = 0.0
            vals[p] = (
                np.broadcast_to(_np(raw), layer.shape).ravel().copy()
                if np.size(raw) > 1
                else np.full(n, float(np.asarray(raw).ravel()[0]))
            )
            setattr(g, p, vals[p] * (b2.second if unit == "second" else b2.Hz if unit == "Hz" else 1))
        for c, v in _coefficients(kind, vals, self.dt, md).items():
            setattr(g, c, v)
        g.b = layer.bias
        g.I_syn = layer.bias
        return g

    # ---- running ----
    def frames_for(self, x: np.ndarray, encoder: str | None = None, generator=None) -> np.ndarray:
        """Per-step input frames ``(images, T, *input_shape)`` for analog images ``x``: the image at every step
        (``direct``), bioSNN's signed Poisson spikes (``poisson``, drawn as the PyTorch engine draws them for the
        same ``generator``) or ``x`` itself when it is already a sequence of event frames (``frames``)."""
        import torch

        from ..encoding import poisson_encode

        encoder = encoder or self.encoder or "direct"
        T = self.time_steps
        if encoder == "direct":
            return np.repeat(np.asarray(x)[:, None], T, axis=1)
        if encoder == "poisson":
            xt = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
            return poisson_encode(xt, T, generator).transpose(0, 1).numpy()
        if encoder == "frames":  # already per step: (images, T, *input_shape)
            return np.asarray(x)
        raise NIRError(f"input encoder {encoder!r}: bioSNN codes 'direct', 'poisson' or 'frames'")

    def run(self, frames: np.ndarray) -> BrianResult:
        """Simulate the batch of per-step input ``frames`` ``(images, T, *input_shape)`` (see :meth:`frames_for`)."""
        import brian2 as b2

        frames = np.asarray(frames, dtype=np.float64)
        want = (self.images, self.time_steps, *self.input_shape)
        if frames.shape != want:
            raise ValueError(f"frames of shape {frames.shape}; this network was built for {want}")
        values = frames.reshape(self.images * self.time_steps, -1)
        duration = self.images * self.time_steps * self.dt * b2.second
        with _float64():
            if self._standalone:
                if not self._built:
                    self.network.run(duration, namespace={})
                    tb = time.perf_counter()
                    build_device(self._directory)
                    self.build_seconds = time.perf_counter() - tb
                    self._built = True
                t0 = time.perf_counter()
                b2.device.run(run_args={self.frames: values}, with_output=False)
            else:
                if not self._built:
                    self.network.store("initial")
                    self._built = True
                self.network.restore("initial")
                self.frames.values[:] = values
                t0 = time.perf_counter()
                self.network.run(duration, namespace={})
            seconds = time.perf_counter() - t0
        return self._collect(seconds)

    def _collect(self, seconds: float) -> BrianResult:
        T, n = self.time_steps, self.images
        spikes = {}
        for name, mon in self.monitors.items():
            layer = self.layers[name]
            a = np.zeros((n * T, layer.size), dtype=np.float32)
            steps = np.rint(np.asarray(mon.t_) / self.dt).astype(np.int64)
            a[steps, np.asarray(mon.i)] = 1.0
            spikes[name] = a.reshape(n, T, *layer.shape).swapaxes(0, 1)
        if self.readout is not None:
            v = np.asarray(self.readout.v_)  # (neurons, steps)
            outputs = v[:, T - 1 :: T].T.copy()
        else:
            outputs = spikes[self.output_name].sum(0).reshape(n, -1)
        return BrianResult(outputs, spikes if self.monitors else None, seconds, self.build_seconds)


def _apply(m_node, m, n_src: int):
    """``m_node @ m`` where ``"identity"`` stands for an identity of ``n_src``."""
    import scipy.sparse as sp

    if isinstance(m, str):
        m = sp.identity(n_src, format="csr")
    if m_node is None:
        return m.tocsr()
    out = (m_node @ m).tocsr()
    out.eliminate_zeros()
    return out


def _topological(graph, incoming: dict) -> list[str]:
    order, state = [], {}

    def visit(n):
        if state.get(n) == 1:
            raise NIRError(f"{n}: the graph has a cycle through it; recurrent NIR graphs are not read yet")
        if state.get(n) == 2:
            return
        state[n] = 1
        for s in incoming.get(n, []):
            visit(s)
        state[n] = 2
        order.append(n)

    for n in graph.nodes:
        visit(n)
    return order


def _ident(name: str) -> str:
    """A Brian2 object name for a NIR node name."""
    import keyword

    s = re.sub(r"\W", "_", str(name))
    return s if s and not s[0].isdigit() and not keyword.iskeyword(s) else f"n_{s}"


def _snap_one(g: np.ndarray) -> np.ndarray:
    """Gains within 1e-12 of 1 are 1 exactly (``dt·(τ/dt)/τ`` need not round to 1)."""
    return np.where(np.abs(g - 1.0) <= 1e-12, 1.0, g)


def _coefficients(kind: str, p: dict, dt: float, md: dict) -> dict:
    if kind in ("IF", "I"):
        return {"gain": _snap_one(dt * p["r"])}
    if kind in ("LIF", "LI"):
        decay = 1.0 - dt / p["tau"]
        exact = md.get("leak_per_step")
        if exact is not None and np.allclose(decay, float(exact), rtol=1e-9, atol=1e-12):
            decay = np.full_like(decay, float(exact))  # bioSNN's own λ, bit for bit
        return {"decay": decay, "gain": _snap_one(dt * p["r"] / p["tau"]), "drift": dt * p["v_leak"] / p["tau"]}
    return {
        "decay": 1.0 - dt / p["tau_mem"],
        "gain": dt * p["r"] / p["tau_mem"],
        "drift": dt * p["v_leak"] / p["tau_mem"],
        "decay_syn": 1.0 - dt / p["tau_syn"],
        "gain_syn": dt * p["w_in"] / p["tau_syn"],
    }


def simulate(
    graph,
    x,
    backend=None,
    encoder: str | None = None,
    generator=None,
    time_steps: int | None = None,
    record: bool = True,
) -> BrianResult:
    """Build the Brian2 network of ``graph`` for the images ``x`` (analog, ``(images, *input_shape)``) on
    ``backend`` (a :class:`~bioSNN.brian.backend.Backend`, default ``numpy``) and run them once."""
    from ..brian.backend import Backend
    from ..brian.backend import backend as use

    be = backend or Backend("numpy")
    with use(be):
        net = NIRBrianNetwork(graph, images=len(x), time_steps=time_steps, record=record)
        return net.run(net.frames_for(x, encoder, generator))


# ---------------------------------------------------------------------------------------------- Brian2 → NIR
def brian_to_nir(network):
    """A ``nir.NIRGraph`` of a Brian2 network made of NIR-expressible parts (a :class:`NIRBrianNetwork`), with
    parameters and weights read from its Brian2 objects. Any other Brian2 network (a ``brian2.Network``, or an
    object holding one as ``.network`` or ``.brian.network``, e.g. a
    :class:`~bioSNN.brian.network.DiehlCookNetwork`) is refused, naming the parts NIR cannot express."""
    import nir

    if isinstance(network, NIRBrianNetwork):
        return _export_built(network, nir)
    net = _find_network(network)
    problems = _inexpressible(net)
    if problems:
        raise NIRError("NIR cannot express this Brian2 network: " + "; ".join(problems))
    raise NIRError(
        "this Brian2 network has only NIR-expressible parts but was not built from NIR equations "
        "(bioSNN writes networks built by NIRBrianNetwork)"
    )


def _find_network(obj):
    import brian2 as b2

    for cand in (obj, getattr(obj, "network", None), getattr(getattr(obj, "brian", None), "network", None)):
        if isinstance(cand, b2.Network):
            return cand
    raise NIRError(f"{type(obj).__name__}: not a Brian2 network (nor an object holding one)")


def _inexpressible(net) -> list[str]:
    """What in the Brian2 network ``net`` has no NIR counterpart, one phrase per part: conductance-based input
    (a membrane equation in which a state variable multiplies ``v``), a threshold that moves (it reads a variable
    with its own dynamics or one the reset changes), refractoriness, synapses whose state changes at spikes."""
    import brian2 as b2
    import sympy
    from brian2.parsing.sympytools import str_to_sympy

    objects = sorted(net.objects, key=lambda o: o.name)
    out, conductances = [], {}
    for g in (o for o in objects if isinstance(o, b2.NeuronGroup)):
        eqs, states = g.equations, set(g.equations.diff_eq_names)
        for var, expr in eqs.diff_eq_expressions:
            e = str_to_sympy(expr.code)
            syms = {s.name: s for s in e.free_symbols}
            if var == "v" and var in syms:
                found = [
                    o
                    for o in sorted(set(syms) & states - {"v"})
                    if sympy.simplify(sympy.diff(e, syms["v"], syms[o])) != 0
                ]
                if found:
                    conductances[g.name] = found
                    out.append(
                        f"group {g.name!r}: conductance-based input (dv/dt has "
                        f"{', '.join(c + '·v' for c in found)}; NIR neurons are current-based)"
                    )
        thr = g.events.get("spike")
        if thr:
            reset = g.event_codes.get("spike", "") or ""
            moving = {
                n
                for n in re.findall(r"[A-Za-z_]\w*", thr)
                if n != "v" and n in eqs.names and (n in states or re.search(rf"\b{n}\s*[+\-*/]?=(?!=)", reset))
            }
            for n in sorted(moving):
                out.append(
                    f"group {g.name!r}: threshold {thr!r} moves with {n} (an adaptive threshold; NIR "
                    "thresholds are constants)"
                )
        if g._refractory is not False and g._refractory is not None:
            out.append(f"group {g.name!r}: a refractory period (NIR neurons have none)")
    for syn in (o for o in objects if isinstance(o, b2.Synapses)):
        code = "\n".join(p.code for p in syn._pathways)
        targets = re.findall(r"^\s*([A-Za-z_]\w*)\s*[+\-*/]?=(?!=)", code, flags=re.M)
        changing = sorted({t for t in targets if not t.endswith(("_post", "_pre"))} | set(syn.equations.diff_eq_names))
        if changing:
            out.append(
                f"synapses {syn.name!r}: plastic ({', '.join(changing)} change at spikes; NIR has no "
                "plasticity, only weights)"
            )
        for post in sorted({t[:-5] for t in targets if t.endswith("_post")}):
            if post in conductances.get(syn.target.name, ()):
                out.append(f"synapses {syn.name!r}: drive the conductance {post} of {syn.target.name!r}")
    return out


def _export_built(bn: NIRBrianNetwork, nir):

    nodes = {bn.input_name: nir.Input(input_type=np.array(bn.input_shape))}
    edges = []
    for name, layer in bn.layers.items():
        g = bn.groups[name]
        # flat parameter arrays: the weights below are dense maps between flat populations
        vals = {p: np.asarray(getattr(g, p + "_"), dtype=np.float64).copy() for p in _PARAMS[layer.kind]}
        md = dict(layer.node.metadata or {})
        md["brian2_group"] = g.name
        if layer.kind == "LIF":
            node = nir.LIF(
                tau=vals["tau"],
                r=vals["r"],
                v_leak=vals["v_leak"],
                v_threshold=vals["v_threshold"],
                v_reset=vals["v_reset"],
                metadata=md,
            )
        elif layer.kind == "IF":
            node = nir.IF(r=vals["r"], v_threshold=vals["v_threshold"], v_reset=vals["v_reset"], metadata=md)
        elif layer.kind == "LI":
            node = nir.LI(tau=vals["tau"], r=vals["r"], v_leak=vals["v_leak"], metadata=md)
        elif layer.kind == "I":
            node = nir.I(r=vals["r"], metadata=md)
        else:
            node = nir.CubaLIF(
                tau_syn=vals["tau_syn"],
                tau_mem=vals["tau_mem"],
                r=vals["r"],
                v_leak=vals["v_leak"],
                w_in=vals["w_in"],
                v_threshold=vals["v_threshold"],
                v_reset=vals["v_reset"],
                metadata=md,
            )
        nodes[name] = node
        bias = np.asarray(g.b_)
        sources = [(bn.input_name, bn.synapses[(bn.input_name, name)])] if (bn.input_name, name) in bn.synapses else []
        sources += [(src, bn.synapses[(src, name)]) for src in layer.incoming]
        for k, (src, s) in enumerate(sources):
            n_src = math.prod(bn.input_shape) if src == bn.input_name else bn.layers[src].size
            w = np.zeros((layer.size, n_src))
            w[np.asarray(s.j), np.asarray(s.i)] = np.asarray(s.w_)
            edge_node = f"{src}_to_{name}"
            # the layer's bias goes with its first incoming map; Flatten first where the source is not flat
            if k == 0 and np.any(bias != 0):
                nodes[edge_node] = nir.Affine(weight=w, bias=bias.copy())
            else:
                nodes[edge_node] = nir.Linear(weight=w)
            start = src
            src_shape = bn.input_shape if src == bn.input_name else (bn.layers[src].size,)
            if len(src_shape) > 1:
                flat = f"{src}_flat_to_{name}"
                nodes[flat] = nir.Flatten(input_type={"input": np.array(src_shape)}, start_dim=0, end_dim=-1)
                edges.append((src, flat))
                start = flat
            edges.append((start, edge_node))
            edges.append((edge_node, name))
    out_layer = bn.layers[bn.output_name]
    nodes["output"] = nir.Output(output_type=np.array([out_layer.size]))
    edges.append((bn.output_name, "output"))
    meta = {k: v for k, v in dict(bn.graph.metadata or {}).items()}
    meta.update(
        {
            "source": "bioSNN",
            "engine": "brian2",
            "dt": bn.dt,
            "time_steps": bn.time_steps,
            "integration": "forward Euler at dt",
        }
    )
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)

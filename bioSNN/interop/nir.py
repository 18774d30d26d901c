"""NIR export and import for the PyTorch engine (:class:`~bioSNN.nn.network.SpikingNet` ⇄ ``nir.NIRGraph``).

NIR (Neuromorphic Intermediate Representation; Pedersen et al., Nature Communications 2024) describes neurons
by continuous-time ODEs. bioSNN's neurons are discrete: at every step ``t`` of length ``dt``

    u[t] = λ·u[t−1] + x[t],  spike s[t] = H(u[t] − θ) (1 where u ≥ θ),  u[t] ← u[t] − θ·s[t]  (soft reset).

NIR's LIF, ``τ dv/dt = (v_leak − v) + R·I``, integrated by forward Euler at ``dt`` gives
``v[t] = (1 − dt/τ)·v[t−1] + (dt/τ)·R·I[t]``, so a λ-neuron is NIR ``LIF`` with ``τ = dt/(1 − λ)``,
``R = τ/dt`` (unit gain on the input), ``v_leak = 0``, ``v_threshold = θ``; λ = 1 is NIR ``IF``
(``dv/dt = R·I``) with ``R = 1/dt``. The readout, which sums ``W·h[t]`` over the T steps, is an integrator ``I``
with ``R = 1/dt``.

What NIR cannot say is carried in ``metadata`` and stated here:

- **reset by subtraction**: NIR resets to ``v_reset``; every neuron node written here has ``v_reset = 0`` and
  ``metadata["reset"] = "subtract"``. A reader that ignores the metadata resets to zero instead and gives other
  spikes after a neuron's first spike (:func:`from_nir` honours it);
- **firing at u ≥ θ** (NIR: v > θ; they differ only when u equals θ exactly): ``metadata["threshold_rule"]``;
- the exact per-step leak λ (``metadata["leak_per_step"]``), since ``1 − dt/(dt/(1 − λ))`` may differ from λ in
  the last bit;
- graph metadata: ``dt`` (s), ``time_steps``, the input ``encoder`` (``direct``: the analog frame every step;
  ``poisson``: signed Bernoulli spikes with p = |x|; ``frames``: the input is already a sequence of event frames,
  frame t at step t), ``integration`` (forward Euler at dt), and the device
  quantization of the weights when there is one.

Refused with the reason (no file written): Brian2 STDP networks, text models with attention or recurrent cells,
and the translators (embedding lookups, encoder–decoder attention and token feedback have no NIR node); the
LITE text model is written after its embedding (``metadata["not_expressed"]`` says how tokens enter).

Dropout is removed at export (inference). Residual blocks become graph edges: the second convolution and the
shortcut both feed the block's second neuron layer (NIR sums a node's inputs).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..nn.bundle import run_settings, to_bundle
from ..nn.network import FixedDropout, Residual, SpikingNet
from ..nn.neurons import LIF
from .nir_graph import RESET, THRESHOLD_RULE, NIRError, validate
from .nir_graph import read as read_nir

__all__ = [
    "to_nir",
    "from_nir",
    "bundle_from_nir",
    "NIRError",
    "NIR_ARRAY",
    "TEXT_REFUSALS",
    "TEXT_NOT_EXPRESSED",
    "SEQ2SEQ_REFUSAL",
    "SEQ2SEQ_NOT_EXPRESSED",
    "brian_refusal",
]

NIR_ARRAY = "nir_graph"  # a bundle made from a NIR file keeps the file's bytes: its architecture


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def to_nir(
    net: SpikingNet,
    time_steps: int,
    encoder: str = "direct",
    dt: float = 1e-3,
    device: dict | None = None,
    metadata: dict | None = None,
):
    """The network as a ``nir.NIRGraph`` (see the module for the mapping and what goes into metadata);
    ``metadata``: more graph metadata (e.g. what of the source model NIR cannot hold)."""
    import nir

    if time_steps < 1 or dt <= 0:
        raise ValueError(f"need time_steps >= 1 and dt > 0, got {time_steps} and {dt}")
    nodes, edges = {}, []
    counts: dict[str, int] = {}

    def add(kind: str, node) -> str:
        counts[kind] = counts.get(kind, 0) + 1
        name = f"{kind}{counts[kind]}"
        nodes[name] = node
        return name

    nodes["input"] = nir.Input(input_type=np.array(net.input_shape), metadata={"encoder": encoder})
    shape = tuple(net.input_shape)
    prev = ["input"]
    was_training = net.training
    net.eval()

    def connect(sources, name):
        edges.extend((s, name) for s in sources)
        return [name]

    def neuron(act: LIF, shape: tuple) -> object:
        lam, thr = float(act.leak.detach()), float(act.threshold.detach())
        meta = {
            "reset": RESET if act.reset == "soft" else "to_zero",
            "threshold_rule": THRESHOLD_RULE,
            "leak_per_step": lam,
            "dt": dt,
            "name": net.name_of(act),
        }
        full = np.full(shape, 1.0)
        if lam == 1.0:
            return nir.IF(r=full / dt, v_threshold=full * thr, v_reset=np.zeros(shape), metadata=meta)
        if lam == 0.0:
            raise NIRError(f"{net.name_of(act)}: leak 0 (no memory) has no finite NIR time constant")
        tau = dt / (1.0 - lam)
        return nir.LIF(
            tau=full * tau,
            r=full * (tau / dt),
            v_leak=np.zeros(shape),
            v_threshold=full * thr,
            v_reset=np.zeros(shape),
            metadata=meta,
        )

    def weighted(layer: nn.Module, shape: tuple) -> tuple[str, tuple]:
        with torch.no_grad():
            out_shape = tuple(layer(torch.zeros(1, *shape)).shape[1:])
        if isinstance(layer, nn.Conv2d):
            w = _np(layer.weight)
            bias = _np(layer.bias) if layer.bias is not None else np.zeros(w.shape[0], w.dtype)
            node = nir.Conv2d(
                input_shape=np.array(shape[1:]),
                weight=w,
                stride=np.array(layer.stride),
                padding=np.array(layer.padding),
                dilation=np.array(layer.dilation),
                groups=layer.groups,
                bias=bias,
                metadata={"name": net.name_of(layer)},
            )
            return add("conv", node), out_shape
        if layer.bias is not None:
            node = nir.Affine(weight=_np(layer.weight), bias=_np(layer.bias), metadata={"name": net.name_of(layer)})
        else:
            node = nir.Linear(weight=_np(layer.weight), metadata={"name": net.name_of(layer)})
        return add("fc", node), out_shape

    try:
        for node in net.nodes:
            if isinstance(node, (nn.Conv2d, nn.Linear)):
                name, shape = weighted(node, shape)
                prev = connect(prev, name)
            elif isinstance(node, LIF):
                prev = connect(prev, add("lif", neuron(node, shape)))
            elif isinstance(node, FixedDropout):
                continue  # identity at inference
            elif isinstance(node, nn.Flatten):
                if node.start_dim != 1 or node.end_dim != -1:
                    raise NIRError(f"Flatten({node.start_dim}, {node.end_dim}): only the full flatten is written")
                name = add("flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1))
                shape = (math.prod(shape),)
                prev = connect(prev, name)
            elif isinstance(node, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                if isinstance(node, nn.AdaptiveAvgPool2d):  # global average pooling: one window per map
                    if tuple(np.broadcast_to(node.output_size, (2,))) != (1, 1):
                        raise NIRError(f"AdaptiveAvgPool2d to {node.output_size}: only global pooling is written")
                    k = s = np.array(shape[1:])
                    p = np.zeros(2, int)
                else:
                    k, s, p = (
                        np.array(v if isinstance(v, tuple) else (v, v))
                        for v in (node.kernel_size, node.stride, node.padding)
                    )
                name = add("avgpool", nir.AvgPool2d(kernel_size=k, stride=s, padding=p))
                with torch.no_grad():
                    shape = tuple(node(torch.zeros(1, *shape)).shape[1:])
                prev = connect(prev, name)
            elif isinstance(node, Residual):
                block_in = prev
                c1, h_shape = weighted(node.conv1, shape)
                connect(block_in, c1)
                a1 = add("lif", neuron(node.act1, h_shape))
                connect([c1], a1)
                c2, out_shape = weighted(node.conv2, h_shape)
                connect([a1], c2)
                a2 = add("lif", neuron(node.act2, out_shape))
                connect([c2], a2)
                if node.shortcut is None:
                    connect(block_in, a2)
                else:
                    sc, _ = weighted(node.shortcut, shape)
                    connect(block_in, sc)
                    connect([sc], a2)
                prev, shape = [a2], out_shape
            else:
                raise NIRError(f"node {type(node).__name__} has no NIR counterpart here")
    finally:
        net.train(was_training)
    readout = add(
        "readout",
        nir.I(
            r=np.full(shape, 1.0 / dt),
            metadata={"role": "readout: sums its input over the time steps, no spikes (the logits)"},
        ),
    )
    connect(prev, readout)
    nodes["output"] = nir.Output(output_type=np.array(shape))
    connect([readout], "output")
    meta = {
        "source": "bioSNN",
        "engine": "torch",
        "dt": dt,
        "time_steps": int(time_steps),
        "encoder": encoder,
        "integration": "forward Euler at dt (exact for bioSNN's discrete neurons)",
        "reset": RESET,
        "threshold_rule": THRESHOLD_RULE,
    }
    if device is not None:
        meta["device"] = device
    meta.update(metadata or {})
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _scalar(node_name: str, what: str, values) -> float:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0 or not np.all(a == a.flat[0]):
        raise NIRError(f"{node_name}: {what} differs between neurons; bioSNN layers hold one value per layer")
    return float(a.flat[0])


def from_nir(graph, dt: float | None = None) -> tuple[SpikingNet, dict]:
    """A :class:`SpikingNet` from a NIR graph of the node kinds :func:`to_nir` writes (written by bioSNN or by
    another tool), and the graph's run settings (``dt``, ``time_steps``, ``encoder`` where recorded).

    ``dt`` (s) is the step of the discrete network; by default the graph's ``metadata["dt"]``. Graphs that
    branch other than as residual blocks, neurons with per-neuron parameters, a reset other than to 0 or by
    subtraction, or node kinds without a bioSNN counterpart are refused by node name."""
    import nir

    validate(graph)
    meta = dict(graph.metadata or {})
    dt = dt if dt is not None else meta.get("dt")
    if dt is None:
        raise NIRError("the graph records no dt: pass dt= (the step the discrete network runs at)")
    if not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise NIRError(f"dt must be a positive number of seconds, got {dt!r}")
    incoming: dict[str, list[str]] = {}
    outgoing: dict[str, list[str]] = {}
    for s, t in graph.edges:
        incoming.setdefault(t, []).append(s)
        outgoing.setdefault(s, []).append(t)
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise NIRError(f"need exactly one Input node, the graph has {len(inputs)}")
    input_shape = tuple(int(v) for v in np.asarray(graph.nodes[inputs[0]].input_type["input"]).ravel())
    modules: list[nn.Module] = []
    cur = inputs[0]
    while True:
        nxt = outgoing.get(cur, [])
        if not nxt:
            break
        if len(nxt) == 2:  # a residual block: two paths from here that meet at one neuron layer
            block, cur = _residual(graph, cur, nxt, incoming, outgoing, dt)
            modules.append(block)
            continue
        if len(nxt) > 2:
            raise NIRError(f"{cur}: feeds {len(nxt)} nodes; only chains and residual blocks are read")
        cur = nxt[0]
        if len(incoming.get(cur, [])) > 1:
            raise NIRError(f"{cur}: sums {len(incoming[cur])} inputs outside a residual block")
        node = graph.nodes[cur]
        m = _module(cur, node, dt)
        if m is not None:
            modules.append(m)
    run = {k: meta[k] for k in ("dt", "time_steps", "encoder") if k in meta}
    run["dt"] = dt
    return SpikingNet(modules, input_shape), run


def _residual(graph, block_in: str, starts: list[str], incoming: dict, outgoing: dict, dt: float):
    """The :class:`Residual` block that begins at the two successors of ``block_in``, and its last node."""
    import nir

    paths = []
    for s in starts:
        path, cur = [], s
        while len(incoming.get(cur, [])) < 2:
            path.append(cur)
            nxt = outgoing.get(cur, [])
            if len(nxt) != 1:
                raise NIRError(f"{cur}: a branch from {block_in} that does not rejoin; not a residual block")
            cur = nxt[0]
        paths.append((path, cur))
    (pa, end_a), (pb, end_b) = paths
    if end_a != end_b or sorted(incoming[end_a]) != sorted([pa[-1] if pa else block_in, pb[-1] if pb else block_in]):
        raise NIRError(f"{block_in}: its two branches do not meet at one node; not a residual block")
    main, short = (pa, pb) if len(pa) >= len(pb) else (pb, pa)
    kinds = [type(graph.nodes[n]).__name__ for n in main]
    if (
        len(main) != 3
        or kinds[0] != "Conv2d"
        or kinds[2] != "Conv2d"
        or kinds[1] not in ("IF", "LIF")
        or len(short) > 1
        or (short and not isinstance(graph.nodes[short[0]], nir.Conv2d))
        or not isinstance(graph.nodes[end_a], (nir.IF, nir.LIF))
    ):
        raise NIRError(
            f"{block_in}: a residual block of {kinds} + {len(short)} shortcut node(s); bioSNN reads "
            "conv → neuron → conv (+ identity or 1x1 conv) → neuron"
        )
    conv1, act1, conv2 = (_module(n, graph.nodes[n], dt) for n in main)
    if conv1.bias is not None or conv2.bias is not None or conv1.kernel_size != (3, 3) or conv2.stride != (1, 1):
        raise NIRError(f"{main[0]}: residual convolutions must be 3x3 without bias (bioSNN's basic block)")
    block = Residual(conv1.in_channels, conv1.out_channels, conv1.stride[0])
    block.conv1, block.act1, block.conv2 = conv1, act1, conv2
    block.shortcut = _module(short[0], graph.nodes[short[0]], dt) if short else None
    if block.shortcut is None and (conv1.stride != (1, 1) or conv1.in_channels != conv1.out_channels):
        raise NIRError(f"{block_in}: an identity shortcut around a convolution that changes the shape")
    block.act2 = _module(end_a, graph.nodes[end_a], dt)
    return block, end_a


def _module(name: str, node, dt: float) -> nn.Module | None:
    import nir

    md = dict(node.metadata or {})
    if isinstance(node, (nir.Output, nir.Input)):
        return None
    if isinstance(node, nir.I):
        if not np.allclose(np.asarray(node.r) * dt, 1.0, rtol=1e-9, atol=0):
            raise NIRError(f"{name}: an integrator readout needs r = 1/dt")
        return None  # SpikingNet's readout sums its input over the steps
    if isinstance(node, nir.Conv2d):
        w = np.asarray(node.weight)
        if isinstance(node.padding, str):
            raise NIRError(f"{name}: padding {node.padding!r}; give it as numbers")
        bias = np.asarray(node.bias)
        conv = nn.Conv2d(
            w.shape[1] * int(node.groups),
            w.shape[0],
            tuple(w.shape[2:]),
            stride=tuple(np.broadcast_to(node.stride, (2,)).tolist()),
            padding=tuple(np.broadcast_to(node.padding, (2,)).tolist()),
            dilation=tuple(np.broadcast_to(node.dilation, (2,)).tolist()),
            groups=int(node.groups),
            bias=bool(np.any(bias != 0)),
        )
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w.copy()))
            if conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(bias.copy()))
        return conv
    if isinstance(node, (nir.Linear, nir.Affine)):
        w = np.asarray(node.weight)
        bias = np.asarray(node.bias) if isinstance(node, nir.Affine) else None
        fc = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
        with torch.no_grad():
            fc.weight.copy_(torch.from_numpy(w.copy()))
            if bias is not None:
                fc.bias.copy_(torch.from_numpy(bias.copy()))
        return fc
    if isinstance(node, nir.Flatten):
        return nn.Flatten()
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        k, s, p = (tuple(np.broadcast_to(v, (2,)).tolist()) for v in (node.kernel_size, node.stride, node.padding))
        if isinstance(node, nir.SumPool2d):
            raise NIRError(f"{name}: SumPool2d is not read yet (bioSNN pools by averaging)")
        return nn.AvgPool2d(k, s, p)
    if isinstance(node, (nir.IF, nir.LIF)):
        thr = _scalar(name, "v_threshold", node.v_threshold)
        if _scalar(name, "v_reset", node.v_reset) != 0.0:
            raise NIRError(f"{name}: reset to v_reset != 0 has no bioSNN counterpart")
        reset = "soft" if md.get("reset") == RESET else "hard"
        if isinstance(node, nir.IF):
            if not math.isclose(_scalar(name, "r", node.r) * dt, 1.0, rel_tol=1e-9):
                raise NIRError(f"{name}: IF with r*dt != 1 scales its input; bioSNN neurons take it as it is")
            leak = 1.0
        else:
            tau, r = _scalar(name, "tau", node.tau), _scalar(name, "r", node.r)
            if _scalar(name, "v_leak", node.v_leak) != 0.0:
                raise NIRError(f"{name}: v_leak != 0 has no bioSNN counterpart")
            if not math.isclose(r * dt / tau, 1.0, rel_tol=1e-9):
                raise NIRError(f"{name}: LIF with r*dt/tau != 1 scales its input; bioSNN neurons take it as it is")
            leak = 1.0 - dt / tau
            exact = md.get("leak_per_step")
            if exact is not None and math.isclose(float(exact), leak, rel_tol=1e-9, abs_tol=1e-12):
                leak = float(exact)  # bioSNN's own value, bit for bit
        return LIF(leak=leak, threshold=thr, reset=reset)
    raise NIRError(f"{name}: NIR node {type(node).__name__} has no bioSNN counterpart")


# sequence models of bioSNN.models.sequence: what keeps each from NIR (None: exportable after its embedding)
TEXT_REFUSALS = {
    "lite": None,
    "conv_attention": "its attention pooling (softmax over positions) has no NIR node",
    "conv_relu": "its attention pooling (softmax over positions) has no NIR node, and it does not spike",
    "lstm": "LSTM cells have no NIR node",
    "gru": "GRU cells have no NIR node",
    "cnn": "max-over-time pooling has no NIR node, and it does not spike",
}

TEXT_NOT_EXPRESSED = (
    "the embedding lookup (token id -> vector; the table is the bioSNN bundle's state.embedding.weight) has no NIR "
    "node: the graph starts at the embedding vector. Token k's vector is the input at steps k*T ... k*T+T-1 "
    "(T = time_steps, the steps per token), the membranes carry on from token to token, and the logits are the "
    "readout's sum divided by tokens*T (the same argmax)"
)


# translators of bioSNN.models.seq2seq: none has a NIR form (the bioSNN bundle holds all of each)
SEQ2SEQ_REFUSAL = {
    "conv_lif": "Its LIF convolution blocks alone would be Conv1d + LIF nodes, but ",
    "conv_relu": "It does not spike, and ",
    "gru": "GRU cells have no NIR node, and ",
}
SEQ2SEQ_NOT_EXPRESSED = (
    "NIR cannot express: the embedding lookups (token ids -> vectors), the dot-product "
    "attention of the decoder over the encoder (a softmax over source positions), or decoding, where each "
    "output token is fed back as the next input; the bundle (biosnn export --to bundle) keeps the whole model"
)


def bundle_from_nir(path, out=None):
    """A PyTorch-engine bundle of the NIR graph in the file ``path`` (read by :func:`from_nir`): the weights and
    neurons as every bundle stores them, the run settings the graph records, and the file itself
    (:data:`NIR_ARRAY`), from which :func:`bioSNN.models.from_bundle.network_from_bundle` rebuilds the
    architecture. Written to ``out``
    when given."""
    from .. import bundles

    path = Path(path)
    net, run = from_nir(read_nir(path))
    settings = (
        run_settings(int(run["time_steps"]), str(run["encoder"]), float(run["dt"]))
        if "time_steps" in run and "encoder" in run
        else None
    )
    b = to_bundle(net, run=settings, name=path.stem, provenance=bundles.provenance(source=str(path)))
    b = dataclasses.replace(b, arrays={**b.arrays, NIR_ARRAY: np.frombuffer(path.read_bytes(), dtype=np.uint8)})
    if out is not None:
        bundles.write(out, b)
    return b


def brian_refusal() -> str:
    """What NIR cannot express in bioSNN's Brian2 STDP networks, read off a small Diehl&Cook network's Brian2
    objects (the equations do not depend on the sizes). The probe draws its Poisson inputs per step: the interval
    form draws the same process with a bookkeeping threshold that is not part of the model."""
    from ..brian.backend import Backend, backend
    from ..brian.network import DiehlCookConfig, DiehlCookNetwork
    from .nir_brian import _inexpressible

    with backend(Backend("numpy")):
        net = DiehlCookNetwork(
            DiehlCookConfig(n_input=4, n_exc=2, poisson="per_step"), np.zeros((1, 4), np.uint8), Backend("numpy")
        )
        parts = _inexpressible(net.brian.network)
    return "NIR cannot express: " + "; ".join(parts)

"""A :class:`~bioSNN.nn.network.SpikingNet` ⇄ the bioSNN bundle (no pickle).

Populations: the input, one per activation (size = neurons per sample; leak, threshold and reset as parameters,
NIR names), and the readout. Projections: one per weighted layer, from the activation that feeds it to the one
it drives, with ``connectivity`` ``"conv2d"`` (array ``(out, in, kh, kw)``, stride and padding as parameters) or
``"linear"`` (array ``(out, in)``, PyTorch layout; pooling and flattening between populations are recorded as
``pre_ops``). Every tensor of the module's ``state_dict`` is stored under its own key, so a bundle restores the
module exactly (:func:`load_state`); ``extra["model"]`` holds the factory arguments that rebuild it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bioSNN.bundles import Bundle, Population, Projection

from .network import FixedDropout, Residual, SpikingNet
from .neurons import LIF
from .qat import weight_parameter

__all__ = ["to_bundle", "load_state", "run_settings", "STATE_PREFIX"]

STATE_PREFIX = "state."


def run_settings(time_steps: int, encoder: str, dt: float = 1e-3) -> dict:
    """What a bundle's ``extra["run"]`` records so that its network can be simulated again without the run's config
    (by this engine, by Brian2 through NIR, or by hand): the time steps and input coding it was evaluated with, the
    step ``dt`` (s) that NIR export maps the discrete neurons to, and the update they follow."""
    if time_steps < 1 or encoder not in ("direct", "poisson", "frames") or dt <= 0:
        raise ValueError(
            f"run settings: need time_steps >= 1, encoder direct|poisson|frames and dt > 0, got {time_steps}, "
            f"{encoder!r}, {dt}"
        )
    return {
        "time_steps": int(time_steps),
        "encoder": encoder,
        "dt": float(dt),
        "integration": "u[t] = leak*u[t-1] + I[t]; spike where u[t] >= v_threshold; reset per population "
        "(soft: u -= v_threshold, hard: u = 0); readout: sum over t of its input",
        "reset": "per population ('reset' parameter)",
    }


def _neurons_per_activation(net: SpikingNet) -> dict[str, int]:
    sizes = {}
    with torch.no_grad():
        net.ann(torch.zeros(1, *net.input_shape), observe=lambda n, x: sizes.__setitem__(n, x[0].numel()))
    return sizes


def to_bundle(net: SpikingNet, model: dict | None = None, run: dict | None = None, **kwargs) -> Bundle:
    """Describe ``net`` and store its state; ``model``: factory arguments kept in ``extra["model"]``; ``run``: its
    :func:`run_settings` (``extra["run"]``); ``device``: the memristive devices its weights sit on."""
    sizes = _neurons_per_activation(net)
    pops = [
        Population(
            "input", int(np.prod(net.input_shape)), "input", {"shape": {"value": list(net.input_shape), "unit": "1"}}
        )
    ]
    for act in net.activations():
        name = net.name_of(act)
        pops.append(
            Population(
                name,
                sizes[name],
                "lif_discrete",
                {
                    "leak": {"value": float(act.leak.detach()), "unit": "1"},
                    "v_threshold": {"value": float(act.threshold.detach()), "unit": "1"},
                    "reset": {"value": act.reset, "unit": ""},
                },
            )
        )
    arrays = {STATE_PREFIX + k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    keys = {id(p): STATE_PREFIX + k for k, p in net.named_parameters()}
    projs, src, pre_ops = [], "input", []

    def proj(layer: nn.Module, source: str, target: str, ops: list[str]):
        if isinstance(layer, nn.Conv2d):
            params = {
                "stride": {"value": list(layer.stride), "unit": "1"},
                "padding": {"value": list(layer.padding), "unit": "1"},
            }
            conn = "conv2d"
        else:
            params, conn = {}, "linear"
        if ops:
            params["pre_ops"] = {"value": list(ops), "unit": ""}
        projs.append(Projection(net.name_of(layer), source, target, keys[id(weight_parameter(layer))], conn, params))

    pending: nn.Module | None = None
    for node in net.nodes:
        if isinstance(node, (nn.Conv2d, nn.Linear)):
            pending, ops_for_pending = node, pre_ops
            pre_ops = []
        elif isinstance(node, LIF):
            proj(pending, src, net.name_of(node), ops_for_pending)
            src, pending = net.name_of(node), None
        elif isinstance(node, Residual):
            a1, a2 = net.name_of(node.act1), net.name_of(node.act2)
            proj(node.conv1, src, a1, pre_ops)
            proj(node.conv2, a1, a2, [])
            if node.shortcut is not None:
                proj(node.shortcut, src, a2, pre_ops)
            # an identity shortcut has no weights; it is recorded on the block's second population
            src, pre_ops = a2, []
        elif isinstance(node, FixedDropout):
            continue
        else:
            pre_ops.append(type(node).__name__)
    if pending is None:
        raise ValueError("the network has no readout layer after its last activation")
    out_size = pending.out_features if isinstance(pending, nn.Linear) else None
    if out_size is None:
        raise ValueError("the readout must be an nn.Linear")
    pops.append(Population("output", out_size, "integrator"))
    proj(pending, src, "output", ops_for_pending)
    extra = dict(kwargs.pop("extra", {}))
    if model is not None:
        extra["model"] = model
    if run is not None:
        extra["run"] = run
    return Bundle(pops, projs, arrays, engine="torch", name=kwargs.pop("name", "SpikingNet"), extra=extra, **kwargs)


def load_state(net: nn.Module, bundle: Bundle, prefix: str = STATE_PREFIX) -> None:
    """Copy the bundle's state tensors (arrays ``<prefix><key>``) into ``net`` (same architecture required; clear
    error otherwise). Any module: SpikingNets and the sequence models alike."""
    own = net.state_dict()
    stored = {k[len(prefix) :]: v for k, v in bundle.arrays.items() if k.startswith(prefix)}
    missing, unexpected = sorted(set(own) - set(stored)), sorted(set(stored) - set(own))
    if missing or unexpected:
        raise ValueError(f"bundle does not match the network: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for k, v in stored.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ValueError(
                f"bundle array {k!r} has shape {tuple(v.shape)}, the network expects {tuple(own[k].shape)}"
            )
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in stored.items()})

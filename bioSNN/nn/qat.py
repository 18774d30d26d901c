"""Quantization-aware training on memristive conductance levels (through :mod:`bioSNN.device`).

Every weighted layer gets a ``torch.nn.utils.parametrize`` parametrization whose forward pass is
:func:`bioSNN.device.quantize` — the weight snapped to the nearest level of a differential pair of devices
with ``2**bits`` levels each, ``w_max`` fixed per layer to the largest |w| when quantization starts — and whose
gradient is the identity (straight-through). The optimizer keeps updating the full-precision ``original``;
the network always computes with device-attainable weights. :func:`freeze` bakes the quantized values in.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn
from torch.nn.utils import parametrize

from bioSNN import device

from .network import SpikingNet

__all__ = ["DeviceWeights", "attach", "freeze", "weight_parameter"]


class DeviceWeights(nn.Module):
    """Parametrization ``w ↦ quantize(w, cfg)`` (straight-through gradient).

    ``w_max`` is a buffer, so it travels with the state dict (checkpoints, bundles) and a restored network
    quantizes exactly as the saved one did.
    """

    def __init__(self, cfg: device.DeviceConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("w_max", torch.tensor(float(cfg.w_max)))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg if float(self.w_max) == self.cfg.w_max else replace(self.cfg, w_max=float(self.w_max))
        return device.quantize(w, cfg)

    def extra_repr(self) -> str:
        return f"levels={self.cfg.levels}, mapping={self.cfg.mapping}, w_max={float(self.w_max):.4g}"


def attach(net: SpikingNet, bits: int, mapping: str = "differential") -> dict[str, device.DeviceConfig]:
    """Put every weighted layer of ``net`` on ``2**bits``-level devices; returns the device of each layer."""
    configs = {}
    for name, layer in net.weighted_layers():
        if parametrize.is_parametrized(layer, "weight"):
            raise ValueError(f"{name} is already quantized")
        w_max = float(layer.weight.detach().abs().max())
        cfg = device.DeviceConfig.from_bits(bits, mapping=mapping, w_max=max(w_max, 1e-12))
        parametrize.register_parametrization(layer, "weight", DeviceWeights(cfg))
        configs[name] = cfg
    return configs


def freeze(net: SpikingNet) -> None:
    """Replace each parametrized weight by its quantized value (a plain parameter again)."""
    for _, layer in net.weighted_layers():
        if parametrize.is_parametrized(layer, "weight"):
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)


def weight_parameter(layer: nn.Module) -> torch.Tensor:
    """The trainable tensor behind ``layer.weight`` (the full-precision original when quantized)."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight

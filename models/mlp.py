"""Fully connected spiking network: Flatten → Linear → LIF → … → Linear (the readout), no biases.

A :class:`~bioSNN.nn.network.SpikingNet` like every other network of the PyTorch engine: each hidden layer computes
``u[t] = λu[t−1] + W x[t]`` with spikes ``H(u − θ)`` and soft reset; the readout integrates ``W h[t]`` over the
``T`` steps without leak or spikes (the logits for cross-entropy), as in Rathi & Roy (2020).
"""

from __future__ import annotations

import math

from torch import nn

from bioSNN.nn import LIF
from bioSNN.nn.network import SpikingNet

__all__ = ["mlp"]


def mlp(
    input_shape: tuple[int, ...],
    n_classes: int,
    hidden: tuple[int, ...] = (128,),
    leak: float = 0.9,
    threshold: float = 1.0,
    surrogate: str = "fast_sigmoid",
) -> SpikingNet:
    """A spiking MLP on inputs of ``input_shape`` (flattened) with the ``hidden`` layer widths."""
    if not hidden or any(int(h) < 1 for h in hidden) or n_classes < 1:
        raise ValueError(
            f"need >= 1 hidden layer of >= 1 neurons and >= 1 class, got hidden={hidden}, n_classes={n_classes}"
        )
    nodes: list[nn.Module] = [nn.Flatten()]
    features = math.prod(input_shape)
    for h in hidden:
        nodes += [nn.Linear(features, int(h), bias=False), LIF(leak, threshold, "soft", surrogate)]
        features = int(h)
    nodes.append(nn.Linear(features, n_classes, bias=False))
    return SpikingNet(nodes, input_shape)

"""VGG-style networks for ANN→SNN conversion, hybrid STDB training and DIET-SNN (Rathi et al. 2020, 2021).

Convolutions 3×3 (padding 1, no biases), each followed by an activation (ReLU as ANN, IF/LIF as SNN); 2×2
average pooling instead of max pooling (it is linear, so it carries over to spikes); a classifier of fully
connected layers with fixed-mask dropout; the last layer is the readout. ``width`` scales every channel count
and ``hidden`` sets the classifier width, so the same definitions serve the small CPU-sized runs.

Layer plans (numbers: output channels of a 3×3 convolution, ``"A"``: average pooling):

- VGG5:  64 A 128 128 A                                   + 2 fully connected (3 + 2 weighted layers)
- VGG9:  64 64 A 128 128 A 256 256 256 A                  + 2 fully connected (7 + 2)
- VGG11: 64 A 128 A 256 256 A 512 512 A 512 512 A         + 3 fully connected (8 + 3)
- VGG16: 64 64 A 128 128 A 256 256 256 A 512 512 512 A 512 512 512 A + 3 fully connected (13 + 3)
"""

from __future__ import annotations

from torch import nn

from bioSNN.nn import LIF
from bioSNN.nn.network import FixedDropout, SpikingNet

__all__ = ["PLANS", "vgg"]

PLANS: dict[str, tuple[tuple, int]] = {
    "vgg5": ((64, "A", 128, 128, "A"), 2),
    "vgg9": ((64, 64, "A", 128, 128, "A", 256, 256, 256, "A"), 2),
    "vgg11": ((64, "A", 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A"), 3),
    "vgg16": ((64, 64, "A", 128, 128, "A", 256, 256, 256, "A", 512, 512, 512, "A", 512, 512, 512, "A"), 3),
}


def vgg(
    name: str,
    input_shape: tuple[int, int, int] = (3, 32, 32),
    n_classes: int = 10,
    width: float = 1.0,
    hidden: int = 1024,
    dropout: float = 0.2,
) -> SpikingNet:
    """Build a VGG of :data:`PLANS` as a :class:`~bioSNN.nn.network.SpikingNet` (Kaiming-initialised, no biases)."""
    key = name.lower()
    if key not in PLANS:
        raise ValueError(f"unknown VGG {name!r}; choose one of {sorted(PLANS)}")
    if width <= 0 or hidden < 1:
        raise ValueError(f"width must be > 0 and hidden >= 1, got width={width}, hidden={hidden}")
    plan, n_fc = PLANS[key]
    c, h, w = input_shape
    nodes: list[nn.Module] = []
    for item in plan:
        if item == "A":
            if h < 2 or w < 2:
                raise ValueError(f"{name}: input {input_shape} is too small for its {plan.count('A')} poolings")
            nodes.append(nn.AvgPool2d(2))
            h, w = h // 2, w // 2
        else:
            out = max(1, int(round(item * width)))
            nodes += [nn.Conv2d(c, out, 3, padding=1, bias=False), LIF()]
            c = out
    nodes.append(nn.Flatten())
    features = c * h * w
    for _ in range(n_fc - 1):
        nodes += [nn.Linear(features, hidden, bias=False), LIF(), FixedDropout(dropout)]
        features = hidden
    nodes.append(nn.Linear(features, n_classes, bias=False))
    for m in nodes:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return SpikingNet(nodes, input_shape)

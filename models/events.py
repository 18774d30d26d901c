"""Small convolutional networks for event-camera frames (N-MNIST, 2 polarities × 34 × 34).

:func:`event_convnet`: ``[Conv2d 3×3 → LIF → AvgPool 2] × len(channels) → Flatten → Linear → LIF → Linear`` as a
:class:`~bioSNN.nn.network.SpikingNet`, so the same weights run as an SNN over a sequence of event frames
(``encoder="frames"``: frame t drives step t, the membranes carry what came before) or, with ReLU activations,
as the CNN baseline on the frames stacked as channels (build it with ``in_channels = 2·T``).
"""

from __future__ import annotations

from torch import nn

from bioSNN.nn import LIF
from bioSNN.nn.network import SpikingNet

__all__ = ["event_convnet"]


def event_convnet(
    input_shape: tuple[int, int, int],
    n_classes: int = 10,
    channels: tuple[int, ...] = (16, 32),
    hidden: int = 128,
    leak: float = 0.9,
    threshold: float = 1.0,
    train_neurons: bool = True,
    surrogate: str = "linear",
) -> SpikingNet:
    """Conv SNN on ``input_shape`` = (channels, height, width); leak and threshold trained when asked."""
    if not channels or any(c < 1 for c in channels) or hidden < 1:
        raise ValueError(f"need >= 1 conv layer of >= 1 channels and hidden >= 1, got {channels}, {hidden}")
    c, h, w = input_shape

    def lif():
        return LIF(leak, threshold, "soft", surrogate, train_leak=train_neurons, train_threshold=train_neurons)

    nodes: list[nn.Module] = []
    for ch in channels:
        nodes += [nn.Conv2d(c, ch, 3, 1, 1, bias=False), lif(), nn.AvgPool2d(2)]
        c, h, w = ch, h // 2, w // 2
    nodes += [nn.Flatten(), nn.Linear(c * h * w, hidden, bias=False), lif(), nn.Linear(hidden, n_classes, bias=False)]
    return SpikingNet(nodes, input_shape)

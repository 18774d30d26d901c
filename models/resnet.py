"""ResNet-20 for CIFAR-sized input (He et al. 2016, option-B shortcuts) as a spiking/ANN network.

3×3 stem convolution (16 channels), three stages of three basic residual blocks (16, 32, 64 channels; the first
block of stages 2 and 3 strides by 2 with a 1×1 convolution on the shortcut), global average pooling and a
fully connected readout: 19 convolutions + 1 fully connected = 20 weighted layers on the main path. No batch
norm and no biases, so the network converts to IF neurons directly (Sengupta et al. 2019; Rathi et al. 2020).
"""

from __future__ import annotations

import torch
from torch import nn

from bioSNN.nn import LIF
from bioSNN.nn.network import Residual, SpikingNet

__all__ = ["resnet20"]


def resnet20(input_shape: tuple[int, int, int] = (3, 32, 32), n_classes: int = 10, width: float = 1.0) -> SpikingNet:
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    chans = [max(1, int(round(c * width))) for c in (16, 32, 64)]
    nodes: list[nn.Module] = [nn.Conv2d(input_shape[0], chans[0], 3, padding=1, bias=False), LIF()]
    c = chans[0]
    for stage, out in enumerate(chans):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            nodes.append(Residual(c, out, stride))
            c = out
    nodes += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, n_classes, bias=False)]
    for m in nodes:
        for sub in m.modules():
            if isinstance(sub, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(sub.weight, nonlinearity="relu")
    # residual sums double the variance at every block; shrink the second convolution so the ANN trains without BN
    for m in nodes:
        if isinstance(m, Residual):
            with torch.no_grad():
                m.conv2.weight.mul_(0.5)
    return SpikingNet(nodes, input_shape)

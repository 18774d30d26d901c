"""ANN → SNN conversion by threshold balancing (Diehl et al. 2015; Sengupta et al. 2019; Rathi et al. 2020).

The trained ReLU network keeps its weights; every ReLU becomes an IF neuron (λ = 1, soft reset). Thresholds are
set layer by layer, in forward order: with the layers before ``l`` already balanced, the converted network runs
for ``T`` steps on training samples and ``θ_l`` becomes ``scale × stat`` of the input currents that layer ``l``
receives, ``stat`` being the maximum (``percentile=100``) or a high percentile. Networks without biases are
positively homogeneous, so the rescaling each threshold introduces only scales the logits.

``source="ann"`` takes the statistic from the ANN's pre-activations in one pass instead (the initialisation of
DIET-SNN, Rathi & Roy 2021, with the 99.7th percentile).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch

from .network import Encoder, SpikingNet

__all__ = ["balance_thresholds", "to_snn"]

_MAX_SAMPLE = 2_000_000  # values kept per layer for a percentile (subsampled beyond)


def _stat(values: list[torch.Tensor], percentile: float) -> float:
    v = torch.cat([x.flatten() for x in values])
    if percentile >= 100:
        return float(v.max())
    if v.numel() > _MAX_SAMPLE:
        v = v[torch.randperm(v.numel(), generator=torch.Generator().manual_seed(0))[:_MAX_SAMPLE]]
    return float(torch.quantile(v.double(), percentile / 100.0))


class _Collector:
    def __init__(self, target: str, percentile: float):
        self.target, self.percentile = target, percentile
        self.values: list[torch.Tensor] = []
        self.running_max = float("-inf")

    def __call__(self, name: str, x: torch.Tensor) -> None:
        if name != self.target:
            return
        x = x.detach()
        if self.percentile >= 100:
            self.running_max = max(self.running_max, float(x.max()))
        else:
            flat = x.flatten()
            if flat.numel() > 200_000:  # keep memory bounded on big layers
                flat = flat[
                    torch.randint(
                        0, flat.numel(), (200_000,), generator=torch.Generator().manual_seed(len(self.values))
                    )
                ]
            self.values.append(flat.float())

    def result(self) -> float:
        return self.running_max if self.percentile >= 100 else _stat(self.values, self.percentile)


@torch.no_grad()
def balance_thresholds(
    net: SpikingNet,
    batches: Iterable[torch.Tensor],
    time_steps: int = 100,
    scale: float = 1.0,
    percentile: float = 100.0,
    encoder: Encoder = "poisson",
    source: Literal["snn", "ann"] = "snn",
    generator: torch.Generator | None = None,
) -> dict:
    """Set each activation's threshold in place; return ``{name: threshold}``.

    ``batches``: training inputs (an iterable that can be traversed once per layer, e.g. a list of tensors).
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must lie in (0, 100], got {percentile}")
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    batches = list(batches)
    if not batches:
        raise ValueError("threshold balancing needs at least one batch of training inputs")
    was_training = net.training
    net.eval()
    acts = net.activations()
    result = {}
    try:
        if source == "ann":
            collectors = {net.name_of(a): _Collector(net.name_of(a), percentile) for a in acts}
            for xb in batches:
                net.ann(xb, observe=lambda n, x: collectors[n](n, x))
            for a in acts:
                name = net.name_of(a)
                a.threshold.fill_(max(scale * collectors[name].result(), 1e-6))
                result[name] = float(a.threshold)
        elif source == "snn":
            for a in acts:
                name = net.name_of(a)
                col = _Collector(name, percentile)
                for xb in batches:
                    net.snn(xb, time_steps, encoder, observe=col, generator=generator)
                a.threshold.fill_(max(scale * col.result(), 1e-6))
                result[name] = float(a.threshold)
        else:
            raise ValueError(f"source must be 'snn' or 'ann', got {source!r}")
    finally:
        net.train(was_training)
    return result


def to_snn(
    net: SpikingNet,
    batches: Iterable[torch.Tensor],
    time_steps: int = 100,
    scale: float = 1.0,
    percentile: float = 100.0,
    encoder: Encoder = "poisson",
    source: Literal["snn", "ann"] = "snn",
    generator: torch.Generator | None = None,
) -> dict:
    """Convert a trained ANN in place: IF neurons with soft reset, then :func:`balance_thresholds`."""
    net.set_neurons(leak=1.0, reset="soft")
    return balance_thresholds(net, batches, time_steps, scale, percentile, encoder, source, generator)

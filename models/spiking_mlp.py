"""Fully connected spiking network: Linear → LIF → … → Linear → accumulating readout.

Built from :mod:`bioSNN.nn` parts only. Each hidden layer computes ``u[t] = λu[t−1] + W x[t]`` with spikes
``H(u − θ)`` and soft reset; the output layer integrates ``W h[t]`` without leak or spikes and the network
returns the time-averaged membrane (logits for cross-entropy), as in Rathi & Roy (2020).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bioSNN.bundles import Bundle, Population, Projection
from bioSNN.nn import LIF

__all__ = ["SpikingMLP"]


class SpikingMLP(nn.Module):
    """Spiking MLP with layer sizes ``sizes = (n_in, hidden..., n_out)``; no biases."""

    def __init__(self, sizes: tuple[int, ...], leak: float = 0.9, threshold: float = 1.0,
                 surrogate: str = "fast_sigmoid"):
        super().__init__()
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"sizes must list >= 2 positive layer widths, got {sizes}")
        self.sizes = tuple(int(s) for s in sizes)
        self.fcs = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        self.lifs = nn.ModuleList(LIF(leak, threshold, "soft", surrogate) for _ in self.sizes[1:-1])

    def forward(self, x_seq: torch.Tensor, record: bool = False):
        """``x_seq``: ``(T, batch, n_in)``. Returns ``(logits, spike_counts, record)``: logits ``(batch, n_out)``,
        per-layer spike counts ``(batch, n)`` of the input and each hidden layer, and — when ``record`` — the
        hidden spikes ``[(T, batch, n), ...]``."""
        states = [None] * len(self.lifs)
        out = torch.zeros(x_seq.shape[1], self.sizes[-1], dtype=x_seq.dtype, device=x_seq.device)
        counts = [x_seq.abs().sum(0)] + [0.0] * len(self.lifs)
        trace = [[] for _ in self.lifs]
        for x in x_seq:
            for i, (fc, lif) in enumerate(zip(self.fcs[:-1], self.lifs)):
                x, states[i] = lif(fc(x), states[i])
                counts[i + 1] = counts[i + 1] + x
                if record:
                    trace[i].append(x.detach())
            out = out + self.fcs[-1](x)
        return out / x_seq.shape[0], counts, ([torch.stack(t) for t in trace] if record else None)

    # --- bundle export: dense weights stored as (source, target), the Brian2 convention ---
    def to_bundle(self, **kwargs) -> Bundle:
        names = ["input"] + [f"hidden{i}" for i in range(1, len(self.sizes) - 1)] + ["output"]
        pops = [Population("input", self.sizes[0], "input")]
        for name, size, lif in zip(names[1:-1], self.sizes[1:-1], self.lifs):
            pops.append(Population(name, size, "lif_discrete", {
                "leak": {"value": float(lif.leak), "unit": "1"},
                "v_threshold": {"value": float(lif.threshold), "unit": "1"},
                "reset": {"value": lif.reset, "unit": ""},
            }))
        pops.append(Population("output", self.sizes[-1], "integrator"))
        arrays, projs = {}, []
        for i, fc in enumerate(self.fcs):
            key = f"fc{i}.weight"
            arrays[key] = fc.weight.detach().cpu().numpy().T.copy()
            projs.append(Projection(f"fc{i}", names[i], names[i + 1], key))
        return Bundle(pops, projs, arrays, engine="torch", name="SpikingMLP", **kwargs)

    @classmethod
    def from_bundle(cls, bundle: Bundle, surrogate: str = "fast_sigmoid") -> "SpikingMLP":
        sizes = tuple(p.size for p in bundle.populations)
        hidden = [p for p in bundle.populations if p.model == "lif_discrete"]
        leak = hidden[0].params["leak"]["value"] if hidden else 1.0
        thr = hidden[0].params["v_threshold"]["value"] if hidden else 1.0
        model = cls(sizes, leak, thr, surrogate)
        model.load_bundle_arrays(bundle)
        return model

    def load_bundle_arrays(self, bundle: Bundle) -> None:
        with torch.no_grad():
            for i, fc in enumerate(self.fcs):
                w = np.asarray(bundle.arrays[f"fc{i}.weight"]).T
                if w.shape != tuple(fc.weight.shape):
                    raise ValueError(f"fc{i}: bundle weights {w.shape} do not fit layer {tuple(fc.weight.shape)}")
                fc.weight.copy_(torch.from_numpy(w.copy()))
            for p, lif in zip([p for p in bundle.populations if p.model == "lif_discrete"], self.lifs):
                lif.leak.fill_(p.params["leak"]["value"])
                lif.threshold.fill_(p.params["v_threshold"]["value"])

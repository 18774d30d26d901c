"""Discrete-time integrate-and-fire neurons for the PyTorch engine.

Leaky integrate-and-fire, one step of length Δt (dimensionless membrane, threshold in the same units):

    u[t] = λ · u[t−1] + I[t]
    o[t] = H(u[t] − θ)
    u[t] ← u[t] − θ · o[t]          (soft reset, "subtract"; keeps the residual charge)
    u[t] ← u[t] · (1 − o[t])        (hard reset to 0)

λ = exp(−Δt/τ_m) is the membrane leak; λ = 1 is the integrate-and-fire (IF) neuron of ANN→SNN conversion
(Rueckauer et al. 2017). ``lif_step`` is a pure function ``(input, state, params) -> (spikes, state)``; the state
carries the membrane ``u`` and, when the surrogate needs it (STDB), ``elapsed``: time steps since each neuron's
last spike, counted from :data:`FAR_PAST` before the first step. :class:`LIF` is a thin module that owns the
(optionally trainable) leak and threshold and nothing else (the state is passed in and returned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from .surrogate import Surrogate, get_surrogate, needs_elapsed, spike

__all__ = ["LIFParams", "LIFState", "lif_step", "LIF", "IF", "FAR_PAST"]

FAR_PAST = 1000.0  # steps since the "last spike" of a neuron that has not spiked yet (STDB: gradient ≈ 0)


@dataclass(frozen=True)
class LIFParams:
    """Parameters of :func:`lif_step`.

    Attributes
    ----------
    leak
        λ in [0, 1] (dimensionless), scalar or tensor broadcastable to the state.
    threshold
        θ > 0, same units as the input current.
    reset
        ``"soft"`` (subtract θ) or ``"hard"`` (to 0).
    surrogate
        Name of a surrogate gradient in :data:`bioSNN.nn.surrogate.SURROGATES`, or the function itself.
    """

    leak: float | torch.Tensor = 1.0
    threshold: float | torch.Tensor = 1.0
    reset: Literal["soft", "hard"] = "soft"
    surrogate: str | Surrogate = "linear"


class LIFState(NamedTuple):
    """Membrane potential ``u`` and, for spike-time surrogates, steps since the last spike ``elapsed``."""

    u: torch.Tensor
    elapsed: torch.Tensor | None = None


def lif_step(x: torch.Tensor, state: LIFState | None, p: LIFParams) -> tuple[torch.Tensor, LIFState]:
    """Advance LIF neurons one step; returns ``(spikes, new_state)``. ``state=None`` starts at u = 0."""
    u_prev = torch.zeros_like(x) if state is None else state.u
    u = p.leak * u_prev + x
    fn = get_surrogate(p.surrogate)
    elapsed = None
    if getattr(fn, "needs_elapsed", False):
        before = state.elapsed if state is not None and state.elapsed is not None else torch.full_like(x, FAR_PAST)
        elapsed = before.detach() + 1.0
    o = spike(u, p.threshold, fn, elapsed)
    if p.reset == "soft":
        u = u - p.threshold * o
    elif p.reset == "hard":
        u = u * (1.0 - o)
    else:
        raise ValueError(f"reset must be 'soft' or 'hard', got {p.reset!r}")
    if elapsed is not None:
        elapsed = elapsed * (1.0 - o.detach())  # 0 steps since a spike that just happened
    return o, LIFState(u, elapsed)


class LIF(nn.Module):
    """LIF layer: owns λ and θ (trainable if asked), computes :func:`lif_step`.

    ``forward(x, state=None) -> (spikes, state)``: one time step; nothing is kept on the module.
    """

    def __init__(self, leak: float = 1.0, threshold: float = 1.0, reset: str = "soft",
                 surrogate: str = "linear", train_leak: bool = False, train_threshold: bool = False):
        super().__init__()
        if not 0.0 <= leak <= 1.0:
            raise ValueError(f"leak must lie in [0, 1], got {leak}")
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if reset not in ("soft", "hard"):
            raise ValueError(f"reset must be 'soft' or 'hard', got {reset!r}")
        get_surrogate(surrogate)  # fail early on a bad name
        self.leak = nn.Parameter(torch.tensor(float(leak)), requires_grad=train_leak)
        self.threshold = nn.Parameter(torch.tensor(float(threshold)), requires_grad=train_threshold)
        self.reset, self.surrogate = reset, surrogate

    def params(self) -> LIFParams:
        return LIFParams(self.leak, self.threshold, self.reset, self.surrogate)

    def forward(self, x: torch.Tensor, state: LIFState | None = None) -> tuple[torch.Tensor, LIFState]:
        return lif_step(x, state, self.params())

    @torch.no_grad()
    def clamp_(self, min_threshold: float = 1e-3) -> None:
        """Keep λ in [0, 1] and θ positive (call after each optimizer step when they are trained)."""
        self.leak.clamp_(0.0, 1.0)
        self.threshold.clamp_(min=min_threshold)

    @property
    def needs_elapsed(self) -> bool:
        return needs_elapsed(self.surrogate)

    def extra_repr(self) -> str:
        return f"leak={self.leak.item():.3f}, threshold={self.threshold.item():.3f}, reset={self.reset}, " \
               f"surrogate={self.surrogate}"


def IF(threshold: float = 1.0, reset: str = "soft", surrogate: str = "linear",
       train_threshold: bool = False) -> LIF:
    """Integrate-and-fire layer: a :class:`LIF` with λ = 1, fixed."""
    return LIF(1.0, threshold, reset, surrogate, train_leak=False, train_threshold=train_threshold)

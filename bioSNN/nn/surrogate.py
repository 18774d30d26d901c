"""Surrogate gradients for the spike nonlinearity ``o = H(u − θ)``.

The forward pass is the exact Heaviside step; the backward pass replaces its derivative by a smooth
pseudo-derivative ``∂o/∂u = s(u, θ, Δt)`` (Neftci, Mostafa & Zenke 2019). Each surrogate is a named pure function
``s(u, theta, elapsed) -> tensor``; ``elapsed`` (time steps since the neuron's previous spike) is only used by
surrogates that declare ``needs_elapsed = True``. :func:`spike` applies one and also passes ``∂o/∂θ = −s`` to a
trainable threshold.

- ``linear`` (Bellec et al. 2018; Rathi & Roy, DIET-SNN 2021): ``0.3 · max(0, 1 − |u/θ − 1|)``
- ``fast_sigmoid`` (Zenke & Ganguli 2018, SuperSpike): ``1 / (1 + k·|u − θ|)²`` with ``k = 10``
- ``stdb`` (spike-timing-dependent backprop, Rathi et al. ICLR 2020): ``α · exp(−β · Δt)``, Δt = steps since the
  neuron last spiked (α = 0.3, β = 0.01); a neuron that has not spiked yet counts from far in the past
  (:data:`bioSNN.nn.neurons.FAR_PAST` steps), so its gradient is ≈ 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch

__all__ = ["linear", "fast_sigmoid", "stdb", "SURROGATES", "SurrogateName", "get_surrogate", "needs_elapsed", "spike"]

Surrogate = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def linear(
    u: torch.Tensor, theta: torch.Tensor, elapsed: torch.Tensor | None = None, alpha: float = 0.3
) -> torch.Tensor:
    """Triangular pseudo-derivative, peak ``alpha`` at ``u = θ``, zero outside ``0 < u < 2θ``."""
    return alpha * torch.clamp(1.0 - torch.abs(u / theta - 1.0), min=0.0)


def fast_sigmoid(
    u: torch.Tensor, theta: torch.Tensor, elapsed: torch.Tensor | None = None, k: float = 10.0
) -> torch.Tensor:
    """Derivative of the fast sigmoid ``x / (1 + k|x|)`` at ``x = u − θ``: ``1 / (1 + k|u − θ|)²``."""
    return 1.0 / (1.0 + k * torch.abs(u - theta)) ** 2


def stdb(
    u: torch.Tensor, theta: torch.Tensor, elapsed: torch.Tensor | None, alpha: float = 0.3, beta: float = 0.01
) -> torch.Tensor:
    """STDB pseudo-derivative ``α · exp(−β · Δt)``; independent of ``u``, decays with the time since the last spike."""
    if elapsed is None:
        raise ValueError(
            "the stdb surrogate needs the steps since the last spike (state.elapsed); "
            "pass a state made by lif_step with this surrogate"
        )
    return (alpha * torch.exp(-beta * elapsed)).to(u.dtype).expand_as(u)


stdb.needs_elapsed = True  # type: ignore[attr-defined]

SURROGATES: dict[str, Surrogate] = {"linear": linear, "fast_sigmoid": fast_sigmoid, "stdb": stdb}
SurrogateName = Literal["linear", "fast_sigmoid", "stdb"]  # the names of SURROGATES, for config fields
assert get_args(SurrogateName) == tuple(SURROGATES)


def get_surrogate(name: str | Surrogate) -> Surrogate:
    if callable(name):
        return name
    try:
        return SURROGATES[name]
    except KeyError:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {sorted(SURROGATES)}") from None


def needs_elapsed(surrogate: str | Surrogate) -> bool:
    """Whether the surrogate reads the steps since the last spike (the state must then carry them)."""
    return bool(getattr(get_surrogate(surrogate), "needs_elapsed", False))


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, theta, elapsed, surrogate):
        theta = torch.as_tensor(theta, dtype=u.dtype, device=u.device)
        ctx.save_for_backward(u, theta, elapsed)
        ctx.surrogate = surrogate
        return (u >= theta).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        u, theta, elapsed = ctx.saved_tensors
        g = grad_out * ctx.surrogate(u, theta, elapsed)
        grad_theta = None
        if ctx.needs_input_grad[1]:
            grad_theta = (-g).sum_to_size(theta.shape) if theta.dim() else (-g).sum()
        return g, grad_theta, None, None


def spike(
    u: torch.Tensor,
    theta: torch.Tensor | float,
    surrogate: Surrogate | str = "linear",
    elapsed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Spikes ``H(u − θ)`` (1.0 where ``u >= θ``) with the surrogate's gradient to ``u`` and ``θ``.

    ``elapsed``: steps since each neuron's previous spike, for surrogates that need it (``stdb``).
    """
    fn = get_surrogate(surrogate)
    if getattr(fn, "needs_elapsed", False) and elapsed is None:
        raise ValueError(f"surrogate {surrogate!r} needs `elapsed` (steps since the last spike)")
    return _Spike.apply(u, theta, elapsed, fn)

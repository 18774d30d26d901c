"""Surrogate gradients for the spike nonlinearity ``o = H(u − θ)``.

The forward pass is the exact Heaviside step; the backward pass replaces its derivative by a smooth
pseudo-derivative ``∂o/∂u = s(u, θ)`` (Neftci, Mostafa & Zenke 2019). Each surrogate is a named pure function
``s(u, theta) -> tensor``; :func:`spike` applies one and also passes ``∂o/∂θ = −s`` to a trainable threshold.

- ``linear`` (Bellec et al. 2018; Rathi & Roy, DIET-SNN 2021): ``0.3 · max(0, 1 − |u/θ − 1|)``
- ``fast_sigmoid`` (Zenke & Ganguli 2018, SuperSpike): ``1 / (1 + k·|u − θ|)²`` with ``k = 10``
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["linear", "fast_sigmoid", "SURROGATES", "get_surrogate", "spike"]

Surrogate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def linear(u: torch.Tensor, theta: torch.Tensor, alpha: float = 0.3) -> torch.Tensor:
    """Triangular pseudo-derivative, peak ``alpha`` at ``u = θ``, zero outside ``0 < u < 2θ``."""
    return alpha * torch.clamp(1.0 - torch.abs(u / theta - 1.0), min=0.0)


def fast_sigmoid(u: torch.Tensor, theta: torch.Tensor, k: float = 10.0) -> torch.Tensor:
    """Derivative of the fast sigmoid ``x / (1 + k|x|)`` at ``x = u − θ``: ``1 / (1 + k|u − θ|)²``."""
    return 1.0 / (1.0 + k * torch.abs(u - theta)) ** 2


SURROGATES: dict[str, Surrogate] = {"linear": linear, "fast_sigmoid": fast_sigmoid}


def get_surrogate(name: str) -> Surrogate:
    try:
        return SURROGATES[name]
    except KeyError:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {sorted(SURROGATES)}") from None


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, theta, surrogate):
        theta = torch.as_tensor(theta, dtype=u.dtype, device=u.device)
        ctx.save_for_backward(u, theta)
        ctx.surrogate = surrogate
        return (u >= theta).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        u, theta = ctx.saved_tensors
        g = grad_out * ctx.surrogate(u, theta)
        grad_theta = None
        if ctx.needs_input_grad[1]:
            grad_theta = (-g).sum_to_size(theta.shape) if theta.dim() else (-g).sum()
        return g, grad_theta, None


def spike(u: torch.Tensor, theta: torch.Tensor | float, surrogate: Surrogate | str = "linear") -> torch.Tensor:
    """Spikes ``H(u − θ)`` (1.0 where ``u >= θ``) with the surrogate's gradient to ``u`` and ``θ``."""
    if isinstance(surrogate, str):
        surrogate = get_surrogate(surrogate)
    return _Spike.apply(u, theta, surrogate)

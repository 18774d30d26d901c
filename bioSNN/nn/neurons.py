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

__all__ = ["LIFParams", "LIFState", "lif_step", "lif_sequence", "LIF", "IF", "FAR_PAST"]

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

    def __init__(
        self,
        leak: float = 1.0,
        threshold: float = 1.0,
        reset: str = "soft",
        surrogate: str = "linear",
        train_leak: bool = False,
        train_threshold: bool = False,
    ):
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
        return (
            f"leak={self.leak.item():.3f}, threshold={self.threshold.item():.3f}, reset={self.reset}, "
            f"surrogate={self.surrogate}"
        )


def IF(threshold: float = 1.0, reset: str = "soft", surrogate: str = "linear", train_threshold: bool = False) -> LIF:
    """Integrate-and-fire layer: a :class:`LIF` with λ = 1, fixed."""
    return LIF(1.0, threshold, reset, surrogate, train_leak=False, train_threshold=train_threshold)


class _LIFSequence(torch.autograd.Function):
    """:func:`lif_step` over a whole sequence, with a hand-written backward pass through time.

    Same forward values as ``T`` calls of :func:`lif_step`, and the same gradients autograd computes through those
    calls (the reset is differentiated too), but one autograd node instead of ~6·T, which is what makes long
    sequences cheap. Saved for backward: the pre-reset membranes, the spikes and (for STDB) the elapsed steps.
    """

    @staticmethod
    def forward(ctx, x_seq, u0, leak, threshold, elapsed0, surrogate, hard):
        T = x_seq.shape[0]
        lam, thr = float(leak), float(threshold)
        u_pre = torch.empty_like(x_seq)
        o_seq = torch.empty_like(x_seq)
        v = u0.detach()
        for t in range(T):  # the recurrence: three kernels per step, two of them writing in place
            u = torch.add(x_seq[t], v, alpha=lam, out=u_pre[t])
            o = torch.ge(u, thr, out=o_seq[t])  # spikes as 0./1. in the input's dtype
            v = u * (1.0 - o) if hard else torch.sub(u, o, alpha=thr)
        el_seq, el = None, torch.empty(0)
        if elapsed0 is not None:  # steps since the last spike, after each step's increment (before its reset)
            fired = o_seq.bool()
            el_seq = torch.empty_like(x_seq)
            e = elapsed0
            for t in range(T):
                e = torch.add(e, 1.0, out=el_seq[t])
                e = e.masked_fill(fired[t], 0.0)
            el = e
        ctx.save_for_backward(u_pre, o_seq, el_seq if el_seq is not None else torch.empty(0), u0, leak, threshold)
        ctx.surrogate, ctx.hard, ctx.has_el = surrogate, hard, el_seq is not None
        return o_seq, v, el

    @staticmethod
    def backward(ctx, g_o, g_v, _g_el):
        # With d_v the gradient reaching step t's post-reset membrane (d_v = λ·d_u[t+1]; g_v at the last step)
        # and s = ∂o/∂u the surrogate:
        #   soft: d_u = d_v + s·(g_o − θ·d_v)          ∂L/∂θ|_t = d_v·(1 − o) − d_u
        #   hard: d_u = d_v·(1 − o) + s·(g_o − u·d_v)  ∂L/∂θ|_t = d_v·(1 − o) − d_u
        #   ∂L/∂λ|_t = d_u · v[t−1] (post-reset membrane of the previous step)
        # Step by step on slices that stay in cache: whole-sequence temporaries of a conv layer are tens of MB,
        # and on CPU those passes cost more than the arithmetic (measured: 2x slower than the step loop).
        u_pre, o_seq, el_seq, u0, leak, threshold = ctx.saved_tensors
        lam, thr = float(leak), float(threshold)
        thr_t = threshold.detach()
        T = u_pre.shape[0]
        need_lam, need_thr = ctx.needs_input_grad[2], ctx.needs_input_grad[3]
        g_x = torch.empty_like(u_pre)
        d_v = g_v if g_v is not None else torch.zeros_like(u0)
        g_lam = u_pre.new_zeros(())
        g_thr = u_pre.new_zeros(())
        for t in range(T - 1, -1, -1):
            u, o = u_pre[t], o_seq[t]
            s = ctx.surrogate(u, thr_t, el_seq[t] if ctx.has_el else None)
            go = g_o[t] if g_o is not None else torch.zeros_like(u)
            keep = 1.0 - o if ctx.hard or need_thr else None
            if ctx.hard:
                d_u = torch.addcmul(d_v * keep, s, torch.addcmul(go, u, d_v, value=-1.0), out=g_x[t])
            else:
                d_u = torch.addcmul(d_v, s, torch.add(go, d_v, alpha=-thr), out=g_x[t])
            if need_thr:
                g_thr += (d_v * keep).sum() - d_u.sum()
            if need_lam:
                if t == 0:
                    v_prev = u0
                else:
                    v_prev = (
                        u_pre[t - 1] * (1.0 - o_seq[t - 1])
                        if ctx.hard
                        else torch.sub(u_pre[t - 1], o_seq[t - 1], alpha=thr)
                    )
                g_lam += (d_u * v_prev).sum()
            d_v = d_u * lam
        g_lam_out = g_lam.reshape(leak.shape) if need_lam else None
        g_thr_out = g_thr.reshape(threshold.shape) if need_thr else None
        return g_x, (d_v if ctx.needs_input_grad[1] else None), g_lam_out, g_thr_out, None, None, None


def lif_sequence(x_seq: torch.Tensor, state: LIFState | None, p: LIFParams) -> tuple[torch.Tensor, LIFState]:
    """:func:`lif_step` applied to every step of ``x_seq`` ``(T, ...)``; returns ``(spikes (T, ...), state)``.

    Leak and threshold must be scalars (floats or 0-d tensors) here; the step function handles the general case.
    """
    if p.reset not in ("soft", "hard"):
        raise ValueError(f"reset must be 'soft' or 'hard', got {p.reset!r}")
    fn = get_surrogate(p.surrogate)
    x0 = x_seq[0]
    u0 = torch.zeros_like(x0) if state is None else state.u
    el0 = None
    if getattr(fn, "needs_elapsed", False):
        el0 = state.elapsed if state is not None and state.elapsed is not None else torch.full_like(x0, FAR_PAST)
        el0 = el0.detach()
    leak = torch.as_tensor(p.leak, dtype=x_seq.dtype)
    thr = torch.as_tensor(p.threshold, dtype=x_seq.dtype)
    if leak.dim() or thr.dim():
        raise ValueError("lif_sequence needs scalar leak and threshold; use lif_step for per-neuron values")
    o, v, el = _LIFSequence.apply(x_seq, u0, leak, thr, el0, fn, p.reset == "hard")
    return o, LIFState(v, el if el0 is not None else None)

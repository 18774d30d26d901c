"""Plasticity of the input → excitatory synapses, as Brian2 synapse descriptions.

**Power-law weight-dependent STDP** (thesis; Diehl & Cook 2015, Sec. 2.3), applied at each postsynaptic spike::

    Δw = η · (x_pre − x_offset) · (w_max − w)^μ

with the presynaptic trace ``τ_pre dx_pre/dt = −x_pre`` set to 1 (``trace="set"``) or increased by 1
(``trace="add"``) at each presynaptic spike. Synapses whose inputs rarely precede the postsynaptic spike
(x_pre < x_offset) are depressed, so STDP itself drives uncorrelated synapses towards zero — the basis of
pruning.

**Diehl & Cook trace rule** (their published code): presynaptic trace ``pre``, postsynaptic traces
``post1`` (τ 20 ms) and ``post2`` (τ 40 ms); at a presynaptic spike ``w −= ν_pre · post1``, at a postsynaptic
spike ``w += ν_post · pre · post2`` (post2 read before its own update), weights clipped to [0, w_max].

Both gate every update by ``learning`` (shared 0/1) and ``alive`` (0 for pruned synapses, which never change
again), scale the learning rate by ``eta_scale`` (shared; 1 = the rule's own rate — a schedule may lower it
during training, see :class:`~bioSNN.brian.network.EnsembleNetwork`) and add ``w`` to the target's ``ge`` at each
presynaptic spike. Whoever builds a ``Synapses`` from these models sets ``learning`` and ``eta_scale``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

__all__ = ["PowerLawSTDP", "TraceSTDP", "SynapseModel", "eta_schedule"]


@dataclass(frozen=True)
class SynapseModel:
    model: str
    on_pre: str
    on_post: str
    namespace: dict


@dataclass(frozen=True)
class PowerLawSTDP:
    """Power-law weight-dependent STDP.

    Attributes
    ----------
    eta
        Learning rate η (dimensionless).
    x_offset
        Target trace value x_offset; pre traces below it depress.
    mu
        Exponent μ of the weight dependence.
    w_max
        Upper weight bound (dimensionless, units of the leak conductance).
    tau_pre : ms
        Presynaptic trace time constant.
    trace
        ``"set"`` (x_pre ← 1, nearest spike) or ``"add"`` (x_pre ← x_pre + 1, all spikes).
    """

    # defaults: the best of a sweep on MNIST at N = 100 (15k images): "add" with eta 0.003 gave 76.9 %,
    # "set" at its best eta (0.001) 66.2 % (README, experiments/results/eta_sweep_n100_15k)
    eta: float = 0.003
    x_offset: float = 0.4
    mu: float = 0.2
    w_max: float = 1.0
    tau_pre: float = 20.0
    trace: Literal["set", "add"] = "add"
    name: str = "power_law"

    RULES: ClassVar[dict] = {"eta": ">=0", "mu": ">=0", "w_max": ">0", "tau_pre": ">0"}

    def synapse_model(self, gain: str | None = None) -> SynapseModel:
        """The Brian2 synapse. ``gain``: the name of a shared variable that scales the transmission
        (``ge_post += gain * w``; whoever builds the ``Synapses`` sets it), or None for ``ge_post += w``."""
        from brian2 import ms

        if self.trace not in ("set", "add"):
            raise ValueError(f"trace must be 'set' or 'add', got {self.trace!r}")
        return SynapseModel(
            model="""
w : 1
alive : 1
learning : 1 (shared)
eta_scale : 1 (shared)
dxpre/dt = -xpre / stdp_tau_pre : 1 (event-driven)
""" + (f"{gain} : 1 (shared)\n" if gain else ""),
            on_pre=f"ge_post += {gain + ' * ' if gain else ''}w\n" + ("xpre = 1" if self.trace == "set" else "xpre += 1"),
            # the whole update, clip included, is gated: a frozen or pruned synapse never changes (weights the
            # per-image normalisation scaled above w_max, or device levels above it, stay as they are)
            on_post="w += learning * alive * (clip(w + stdp_eta * eta_scale * (xpre - stdp_x_offset)"
                    " * clip(stdp_w_max - w, 0, stdp_w_max)**stdp_mu, 0, stdp_w_max) - w)",
            namespace={"stdp_eta": self.eta, "stdp_x_offset": self.x_offset, "stdp_mu": self.mu,
                       "stdp_w_max": self.w_max, "stdp_tau_pre": self.tau_pre * ms},
        )

    def delta_w(self, x_pre, w):
        """The update of one postsynaptic spike (numpy), for checking the simulator against the formula."""
        import numpy as np

        w = np.asarray(w, dtype=float)
        dw = self.eta * (np.asarray(x_pre) - self.x_offset) * np.clip(self.w_max - w, 0, None) ** self.mu
        return np.clip(w + dw, 0, self.w_max) - w

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TraceSTDP:
    """Diehl & Cook (2015) pre/post trace rule (their code's defaults).

    Attributes
    ----------
    nu_pre, nu_post
        Learning rates of depression (at presynaptic spikes) and potentiation (at postsynaptic spikes).
    w_max
        Upper weight bound.
    tau_pre, tau_post1, tau_post2 : ms
        Trace time constants.
    """

    nu_pre: float = 0.0001
    nu_post: float = 0.01
    w_max: float = 1.0
    tau_pre: float = 20.0
    tau_post1: float = 20.0
    tau_post2: float = 40.0
    name: str = "diehl_cook"

    def synapse_model(self) -> SynapseModel:
        from brian2 import ms

        return SynapseModel(
            model="""
w : 1
alive : 1
learning : 1 (shared)
eta_scale : 1 (shared)
dpre/dt = -pre / stdp_tau_pre : 1 (event-driven)
dpost1/dt = -post1 / stdp_tau_post1 : 1 (event-driven)
dpost2/dt = -post2 / stdp_tau_post2 : 1 (event-driven)
""",
            on_pre="ge_post += w\npre = 1\n"
                   "w += learning * alive * (clip(w - stdp_nu_pre * eta_scale * post1, 0, stdp_w_max) - w)",
            on_post="w += learning * alive * (clip(w + stdp_nu_post * eta_scale * pre * post2, 0, stdp_w_max) - w)\n"
                    "post1 = 1\npost2 = 1",
            namespace={"stdp_nu_pre": self.nu_pre, "stdp_nu_post": self.nu_post, "stdp_w_max": self.w_max,
                       "stdp_tau_pre": self.tau_pre * ms, "stdp_tau_post1": self.tau_post1 * ms,
                       "stdp_tau_post2": self.tau_post2 * ms},
        )

    def to_dict(self) -> dict:
        return asdict(self)


def eta_schedule(seen: int, total: int, eta_end: float) -> float:
    """STDP annealing: the ``eta_scale`` after ``seen`` of ``total`` training presentations,
    ``eta_end ** (seen / total)`` — 1 at the start, ``eta_end`` at the end (and after it)."""
    if not 0 < eta_end <= 1:
        raise ValueError(f"eta_end must lie in (0, 1], got {eta_end}")
    if total <= 0:
        raise ValueError(f"need a positive number of training presentations, got {total}")
    return float(eta_end ** (min(max(seen, 0), total) / total))

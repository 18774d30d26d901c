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

**Where the traces live** (``traces=``). A trace depends only on the spikes of one neuron, so it can be kept
once per neuron instead of once per synapse:

- ``"synapse"``: Brian2's customary form — each trace an event-driven variable of every synapse, decayed with an
  exponential at every pre- and postsynaptic event of that synapse (an input spike costs N exponentials);
- ``"neuron"``: each trace a variable of its neuron with the time of its last update, advanced only at that
  neuron's spikes (``x ← x·e^{−(t−t_x)/τ} + 1``) and read by the synapses as ``x·e^{−(t−t_x)/τ}`` when
  they need it. An input spike then costs one exponential and N additions to ``ge``. The values are those of the
  per-synapse form up to float rounding: a per-synapse trace is decayed in several steps when the synapse's other
  neuron fires in between (e^{−a}·e^{−b} instead of e^{−(a+b)}), a difference of a few units in the last place.
  The neuron's trace is advanced in the slot right after the thresholds (:func:`schedule_trace_update`), so a
  spike is seen by the synaptic pathways of its own step, as in the per-synapse form. A transmission delay would
  give each synapse its own arrival time, so delayed synapses keep per-synapse traces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar, Literal

__all__ = ["PowerLawSTDP", "TraceSTDP", "SynapseModel", "eta_schedule", "schedule_trace_update", "TRACES"]

TRACES = ("neuron", "synapse")
# the variables of every plastic synapse: its weight, its pruning mask, and the two shared switches
_PLASTIC = "w : 1\nalive : 1\nlearning : 1 (shared)\neta_scale : 1 (shared)\n"


@dataclass(frozen=True)
class SynapseModel:
    """A Brian2 synapse description and, for traces kept per neuron, what the two neuron groups must add.

    ``pre_equations``/``pre_reset`` (and ``post_*``) go into the presynaptic (postsynaptic) ``NeuronGroup``'s
    equations and reset; ``pre_namespace`` into its namespace; ``trace_vars`` names, per ``"synapse"``, ``"pre"``
    and ``"post"``, the trace variables that a state reset between presentations sets to 0."""

    model: str
    on_pre: str
    on_post: str
    namespace: dict
    pre_equations: str = ""
    pre_reset: str = ""
    post_equations: str = ""
    post_reset: str = ""
    pre_namespace: dict = field(default_factory=dict)
    trace_vars: dict = field(default_factory=dict)


def _check_traces(traces: str) -> None:
    if traces not in TRACES:
        raise ValueError(f"traces must be one of {TRACES}, got {traces!r}")


def schedule_trace_update(group) -> None:
    """Run the reset of ``group`` (which advances its neuron-held traces) right after the thresholds, before the
    synaptic pathways of the same step read the traces (a Brian2 reset normally runs after them)."""
    group.resetter["spike"].when = "after_thresholds"


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

    def synapse_model(self, gain: str | None = None, traces: str = "synapse") -> SynapseModel:
        """The Brian2 synapse. ``gain``: the name of a shared variable that scales the transmission
        (``ge_post += gain * w``; whoever builds the ``Synapses`` sets it), or None for ``ge_post += w``.
        ``traces``: ``"synapse"`` or ``"neuron"`` (see the module)."""
        from brian2 import ms

        if self.trace not in ("set", "add"):
            raise ValueError(f"trace must be 'set' or 'add', got {self.trace!r}")
        _check_traces(traces)
        shared = _PLASTIC + (f"{gain} : 1 (shared)\n" if gain else "")
        transmit = f"ge_post += {gain + ' * ' if gain else ''}w"
        ns = {
            "stdp_eta": self.eta,
            "stdp_x_offset": self.x_offset,
            "stdp_mu": self.mu,
            "stdp_w_max": self.w_max,
            "stdp_tau_pre": self.tau_pre * ms,
        }
        # the whole update, clip included, is gated: a frozen or pruned synapse never changes (weights the
        # per-image normalisation scaled above w_max, or device levels above it, stay as they are)
        update = (
            "w += learning * alive * (clip(w + stdp_eta * eta_scale * (X - stdp_x_offset)"
            " * clip(stdp_w_max - w, 0, stdp_w_max)**stdp_mu, 0, stdp_w_max) - w)"
        )
        if traces == "synapse":
            return SynapseModel(
                model=shared + "dxpre/dt = -xpre / stdp_tau_pre : 1 (event-driven)\n",
                on_pre=transmit + "\n" + ("xpre = 1" if self.trace == "set" else "xpre += 1"),
                on_post=update.replace("X", "xpre"),
                namespace=ns,
                trace_vars={"synapse": ("xpre",)},
            )
        return SynapseModel(
            model=shared,
            on_pre=transmit,
            on_post=update.replace("X", "xpre_pre * exp(-(t - txpre_pre) / stdp_tau_pre)"),
            namespace=ns,
            pre_equations="xpre : 1\ntxpre : second\n",
            pre_reset=("xpre = 1" if self.trace == "set" else "xpre = xpre * exp(-(t - txpre) / stdp_tau_pre) + 1")
            + "\ntxpre = t",
            pre_namespace={"stdp_tau_pre": self.tau_pre * ms},
            trace_vars={"pre": ("xpre",)},
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

    def synapse_model(self, traces: str = "synapse") -> SynapseModel:
        """The Brian2 synapse; ``traces``: ``"synapse"`` or ``"neuron"`` (see the module)."""
        from brian2 import ms

        _check_traces(traces)
        ns = {
            "stdp_nu_pre": self.nu_pre,
            "stdp_nu_post": self.nu_post,
            "stdp_w_max": self.w_max,
            "stdp_tau_pre": self.tau_pre * ms,
            "stdp_tau_post1": self.tau_post1 * ms,
            "stdp_tau_post2": self.tau_post2 * ms,
        }
        depress = "w += learning * alive * (clip(w - stdp_nu_pre * eta_scale * P1, 0, stdp_w_max) - w)"
        potentiate = "w += learning * alive * (clip(w + stdp_nu_post * eta_scale * X * P2, 0, stdp_w_max) - w)"
        if traces == "synapse":
            return SynapseModel(
                model=_PLASTIC + "dpre/dt = -pre / stdp_tau_pre : 1 (event-driven)\n"
                "dpost1/dt = -post1 / stdp_tau_post1 : 1 (event-driven)\n"
                "dpost2/dt = -post2 / stdp_tau_post2 : 1 (event-driven)\n",
                on_pre="ge_post += w\npre = 1\n" + depress.replace("P1", "post1"),
                on_post=potentiate.replace("X", "pre").replace("P2", "post2") + "\npost1 = 1\npost2 = 1",
                namespace=ns,
                trace_vars={"synapse": ("pre", "post1", "post2")},
            )
        # per neuron: the input's trace (set to 1 at its spikes) and the excitatory neuron's two traces (set to 1
        # at its spikes, by its reset, after the pathways of that step have read the values before the spike)
        return SynapseModel(
            model=_PLASTIC,
            on_pre="ge_post += w\n" + depress.replace("P1", "post1_post * exp(-(t - tpost_post) / stdp_tau_post1)"),
            on_post=potentiate.replace("X", "xpre_pre * exp(-(t - txpre_pre) / stdp_tau_pre)").replace(
                "P2", "post2_post * exp(-(t - tpost_post) / stdp_tau_post2)"
            ),
            namespace=ns,
            pre_equations="xpre : 1\ntxpre : second\n",
            pre_reset="xpre = 1\ntxpre = t",
            post_equations="post1 : 1\npost2 : 1\ntpost : second\n",
            post_reset="post1 = 1\npost2 = 1\ntpost = t",
            trace_vars={"pre": ("xpre",), "post": ("post1", "post2")},
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

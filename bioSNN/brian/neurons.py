"""Conductance-based LIF populations of the Diehl & Cook (2015) network, as Brian2 equation strings with units.

Excitatory neurons (membrane ``v``, conductances ``ge``, ``gi`` in units of the leak conductance)::

    τ_m dv/dt = (v_leak − v) + ge·(E_exc − v) + gi·(E_inh − v)
    dge/dt = −ge/τ_ge,   dgi/dt = −gi/τ_gi
    dθ/dt = −plastic·θ/τ_θ                  (adaptive threshold, frozen when plastic = 0)
    spike when v > θ − θ_offset + v_threshold and the last spike is more than spike_gap ago;
    then v ← v_reset, θ ← θ + plastic·θ_plus

Inhibitory neurons: the same membrane without θ. Parameter defaults are those of Diehl & Cook (2015),
Front. Comput. Neurosci. 9:99, as used by the thesis. Values are plain floats in the units their field docs
give; :meth:`namespace` turns them into Brian2 quantities. Names follow NIR where NIR has one
(``tau``, ``v_leak``, ``v_threshold``, ``v_reset``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, Literal, get_args

__all__ = [
    "ExcitatoryParams",
    "InhibitoryParams",
    "excitatory_model",
    "inhibitory_model",
    "PopulationModel",
    "INTEGRATIONS",
    "Integration",
]


def _unit(name: str) -> str:
    """Unit of a parameter field: times (``tau*``, ``refractory``) in ms, everything else in mV."""
    return "ms" if name.startswith("tau") or name in ("refractory", "spike_gap") else "mV"


def _namespace(params, prefix: str) -> dict:
    """Brian2 quantities named ``prefix + field``."""
    from brian2 import ms, mV

    return {prefix + k: v * (ms if _unit(k) == "ms" else mV) for k, v in asdict(params).items()}


def _nir_params(params) -> dict:
    return {k: {"value": v, "unit": _unit(k)} for k, v in asdict(params).items()}


class _UnitParams:
    """Shared conversions of the parameter records; ``PREFIX`` names their symbols in Brian2 namespaces."""

    PREFIX: ClassVar[str] = ""

    def namespace(self, prefix: str | None = None) -> dict:
        """Brian2 quantities named ``prefix + field`` (default prefix: the record's own)."""
        return _namespace(self, self.PREFIX if prefix is None else prefix)

    def nir_params(self) -> dict:
        """Parameters with units for the weight bundle."""
        return _nir_params(self)


@dataclass(frozen=True)
class ExcitatoryParams(_UnitParams):
    """Excitatory conductance LIF with adaptive threshold.

    Attributes
    ----------
    v_leak, v_reset, v_threshold : mV
        Resting potential, reset potential, base threshold.
    refractory : ms
    tau : ms
        Membrane time constant.
    tau_ge, tau_gi : ms
        Excitatory / inhibitory conductance decay.
    e_exc, e_inh : mV
        Reversal potentials.
    theta_plus : mV
        Threshold increase per spike while plastic.
    tau_theta : ms
        Threshold decay while plastic.
    theta_init, theta_offset : mV
        Initial θ and the offset subtracted from it in the threshold condition.
    spike_gap : ms
        Least time between two spikes of one neuron. The membrane is clamped for ``refractory`` only, but the
        threshold stays closed for ``spike_gap``: Diehl & Cook's published code (whose numbers the paper
        reports) gates the threshold with a timer that grows at 0.1 ms per ms and must exceed the 5 ms
        refractory period, i.e. 50 ms. Set it to ``refractory`` for the paper text's plain 5 ms.
    """

    v_leak: float = -65.0
    v_reset: float = -65.0
    v_threshold: float = -52.0
    refractory: float = 5.0
    tau: float = 100.0
    tau_ge: float = 1.0
    tau_gi: float = 2.0
    e_exc: float = 0.0
    e_inh: float = -100.0
    theta_plus: float = 0.05
    tau_theta: float = 1e7
    theta_init: float = 20.0
    theta_offset: float = 20.0
    spike_gap: float = 50.0
    PREFIX: ClassVar[str] = "exc_"
    RULES: ClassVar[dict] = {
        "refractory": ">=0",
        "tau": ">0",
        "tau_ge": ">0",
        "tau_gi": ">0",
        "theta_plus": ">=0",
        "tau_theta": ">0",
    }

    def __post_init__(self):
        if self.spike_gap < self.refractory:
            raise ValueError(f"spike_gap ({self.spike_gap} ms) must be at least refractory ({self.refractory} ms)")


@dataclass(frozen=True)
class InhibitoryParams(_UnitParams):
    """Inhibitory conductance LIF (units as in :class:`ExcitatoryParams`); E_inh is −85 mV onto these cells."""

    v_leak: float = -60.0
    v_reset: float = -45.0
    v_threshold: float = -40.0
    refractory: float = 2.0
    tau: float = 10.0
    tau_ge: float = 1.0
    tau_gi: float = 2.0
    e_exc: float = 0.0
    e_inh: float = -85.0
    PREFIX: ClassVar[str] = "inh_"
    RULES: ClassVar[dict] = {"refractory": ">=0", "tau": ">0", "tau_ge": ">0", "tau_gi": ">0"}


Integration = Literal["exponential_euler", "step_mean", "euler"]
INTEGRATIONS = get_args(Integration)


@dataclass(frozen=True)
class PopulationModel:
    """Everything a Brian2 ``NeuronGroup`` needs: equations, threshold, reset, refractoriness, namespace,
    integration method."""

    equations: object  # brian2.Equations
    threshold: str
    reset: str
    refractory: str
    namespace: dict
    method: str = "exponential_euler"


# the conductance-based membrane; its parameters are renamed per population (exc_tau, inh_tau ...) by Brian2's
# Equations substitution
_MEMBRANE = """
dv/dt = ((v_leak - v) + ge*ge_mean*(e_exc - v) + gi*gi_mean*(e_inh - v)) / tau : volt (unless refractory)
dge/dt = -ge / tau_ge : 1
dgi/dt = -gi / tau_gi : 1
"""
_MEMBRANE_PARAMETERS = ("v_leak", "ge_mean", "gi_mean", "e_exc", "e_inh", "tau", "tau_ge", "tau_gi")


def _membrane(prefix: str, p, integration: str, dt: float | None) -> tuple:
    """Membrane equations (``brian2.Equations``), the conductance factors of the chosen integration, and the
    Brian2 method.

    - ``"exponential_euler"``: v exact for the conductances held at their step-start values. Always stays
      between the reversal potentials, but a fresh conductance jump counts as if it lasted the whole step
      (at dt = 0.5 ms: 1.27× the exact charge of a τ = 1 ms synapse).
    - ``"step_mean"``: the same, with each conductance replaced by its exact mean over the step,
      g·(τ/dt)(1 − e^(−dt/τ)); charge per input spike is exact, and it stays stable.
    - ``"euler"``: forward Euler, the numerics of Diehl & Cook's code. When many inhibitory cells fire in one
      step, gi·dt/τ ≫ 1 and v overshoots far beyond the reversal potentials (seen at N = 400: θ > 1 V).
    """
    import math

    if integration not in INTEGRATIONS:
        raise ValueError(f"integration must be one of {INTEGRATIONS}, got {integration!r}")
    factors = {f"{prefix}ge_mean": 1.0, f"{prefix}gi_mean": 1.0}
    if integration == "step_mean":
        if dt is None or dt <= 0:
            raise ValueError("integration 'step_mean' needs the simulation step dt (ms)")
        factors = {
            f"{prefix}ge_mean": p.tau_ge / dt * (1 - math.exp(-dt / p.tau_ge)),
            f"{prefix}gi_mean": p.tau_gi / dt * (1 - math.exp(-dt / p.tau_gi)),
        }
    method = "euler" if integration == "euler" else "exponential_euler"
    from brian2 import Equations

    return Equations(_MEMBRANE, **{n: prefix + n for n in _MEMBRANE_PARAMETERS}), factors, method


def branch_free(method: str):
    """The Brian2 integration ``method`` for a population whose membrane is ``(unless refractory)``, written so
    that the compiler can vectorise it.

    Brian2 multiplies such an equation by ``int(not_refractory)`` and keeps ``v`` unchanged during the refractory
    period by writing it only where ``not_refractory`` holds. For exponential Euler the factor turns the update
    into a branch per neuron (0 if refractory, else the exponential step), and a loop with a call to ``exp`` inside
    a branch is not vectorised. Both mechanisms do the same thing; this method integrates the equation without
    the factor and leaves the conditional write alone: the same update where the neuron integrates, no change
    where it is refractory, and one loop the compiler can run on 8 neurons at a time. Other methods are returned
    unchanged."""
    if method != "exponential_euler":
        return method
    from brian2.equations.codestrings import Expression
    from brian2.equations.equations import DIFFERENTIAL_EQUATION, Equations, SingleEquation
    from brian2.stateupdaters.base import StateUpdateMethod

    class _WriteGated(StateUpdateMethod):
        inner = StateUpdateMethod.stateupdaters["exponential_euler"]

        def __call__(self, equations, variables=None, method_options=None):
            head = "int(not_refractory)*("
            eqs = []
            for eq in equations.values():
                code = eq.expr.code if eq.expr is not None else ""
                if eq.type == DIFFERENTIAL_EQUATION and code.startswith(head) and code.endswith(")"):
                    eq = SingleEquation(
                        DIFFERENTIAL_EQUATION, eq.varname, eq.dim, expr=Expression(code[len(head) : -1]), flags=eq.flags
                    )
                eqs.append(eq)
            return self.inner(Equations(eqs), variables, method_options)

    return _WriteGated()


def excitatory_model(
    p: ExcitatoryParams = ExcitatoryParams(), integration: str = "exponential_euler", dt: float | None = None
) -> PopulationModel:
    """Brian2 description of the excitatory population; ``plastic`` (shared, 0/1) switches θ adaptation.
    ``integration`` and ``dt`` (ms): see :func:`_membrane`."""
    membrane, factors, method = _membrane("exc_", p, integration, dt)
    eqs = (
        membrane
        + """
dtheta/dt = -plastic * theta / exc_tau_theta : volt
plastic : 1 (shared)
"""
    )
    return PopulationModel(
        equations=eqs,
        threshold="v > theta - exc_theta_offset + exc_v_threshold and t - lastspike > exc_spike_gap",
        reset="v = exc_v_reset\ntheta += plastic * exc_theta_plus",
        refractory="exc_refractory",
        namespace={**p.namespace("exc_"), **factors},
        method=method,
    )


def inhibitory_model(
    p: InhibitoryParams = InhibitoryParams(), integration: str = "exponential_euler", dt: float | None = None
) -> PopulationModel:
    """Brian2 description of the inhibitory population (``integration``, ``dt``: see :func:`_membrane`)."""
    membrane, factors, method = _membrane("inh_", p, integration, dt)
    return PopulationModel(
        equations=membrane,
        threshold="v > inh_v_threshold",
        reset="v = inh_v_reset",
        refractory="inh_refractory",
        namespace={**p.namespace("inh_"), **factors},
        method=method,
    )

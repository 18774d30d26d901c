"""What a Diehl & Cook network is: the description of its ensembles and of the synapses that join them.

:class:`DiehlCookConfig` describes one ensemble — Poisson inputs (one per pixel or feature) onto excitatory
conductance-LIF neurons with adaptive thresholds, one-to-one onto inhibitory neurons that inhibit every other
excitatory neuron — and how items are presented to it (slots of ``t_present + t_rest``, the repeat rule,
chunks). :class:`CrossConfig` describes plastic excitatory synapses between two ensembles (thesis part 2).
Both are plain frozen dataclasses: the Brian2 objects are built from them by :mod:`bioSNN.brian.builder`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, get_args

from .neurons import INTEGRATIONS, ExcitatoryParams, InhibitoryParams, Integration
from .stdp import TRACES, PowerLawSTDP, SynapseModel, TraceSTDP

__all__ = ["DiehlCookConfig", "CrossConfig", "Rule", "RULES"]

Rule = Literal["power_law", "diehl_cook"]  # the STDP rule of the input synapses
RULES = get_args(Rule)
Poisson = Literal["intervals", "per_step"]  # how the Poisson inputs are drawn (DiehlCookConfig.poisson)
POISSON = get_args(Poisson)


@dataclass(frozen=True)
class DiehlCookConfig:
    """Network and presentation parameters (defaults: Diehl & Cook 2015 on MNIST).

    Attributes
    ----------
    n_input, n_exc
        Input neurons (pixels) and excitatory (= inhibitory) neurons.
    max_rate : Hz
        Input rate of a pixel of intensity 255 (63.75 Hz = intensity / 4).
    rate_boost : Hz
        Added to ``max_rate`` for each repeat of an image that evoked fewer than ``min_spikes`` spikes.
    min_spikes, max_repeats
        Repeat rule.
    t_present, t_rest, dt : ms
        Presentation, rest and simulation step. ``t_rest = 0`` resets the state explicitly between images.
    w_init_low, w_init_high
        Initial input weights drawn uniformly from this range.
    w_sum
        Sum of each excitatory neuron's input weights after normalisation (78 for 784 inputs).
    input_delay : ms
        Input → excitatory transmission delays drawn uniformly from [0, input_delay] per synapse (fixed by
        ``seed``); Diehl & Cook's code uses 10 ms, 0 gives no delays.
    w_exc_inh, w_inh_exc
        Fixed weights exc → inh (one-to-one) and inh → exc (all but self).
    rule
        ``"power_law"`` (thesis) or ``"diehl_cook"`` (trace rule), with parameters in ``power_law``/``trace``.
    integration
        Membrane numerics: ``"exponential_euler"``, ``"step_mean"`` (exponential Euler with each conductance's
        exact mean over the step) or ``"euler"`` (forward Euler, Diehl & Cook's; unstable under synchronous
        inhibition) — see :func:`bioSNN.brian.neurons._membrane`.
    poisson
        How the Poisson inputs are drawn (each fires with probability ``rate·dt`` per step either way):
        ``"intervals"`` draws the steps to each input's next spike from their geometric distribution, at the start
        of every slot and after every spike; ``"per_step"`` draws one uniform number per input and step. The same
        process, different random streams (see :func:`bioSNN.brian.builder._input_group`).
    traces
        Where the STDP traces live: ``"neuron"`` (one per input and excitatory neuron, read by the synapses) or
        ``"synapse"`` (Brian2's event-driven variables, one per synapse). The same learning up to float rounding;
        ``"neuron"`` saves an exponential per synapse and input spike (see :mod:`bioSNN.brian.stdp`). Delayed
        (``input_delay > 0``) or replayed inputs always use per-synapse traces.
    chunk
        Slots per simulation run (between two chances to prune, quantize, checkpoint).
    seed
        Seed of the initial weights and of Brian2's random numbers.
    """

    n_input: int = 784
    n_exc: int = 100
    max_rate: float = 63.75
    rate_boost: float = 32.0
    min_spikes: int = 5
    max_repeats: int = 10
    t_present: float = 350.0
    t_rest: float = 150.0
    dt: float = 0.5
    w_init_low: float = 0.003
    w_init_high: float = 0.303
    w_sum: float = 78.0
    input_delay: float = 0.0
    w_exc_inh: float = 10.4
    w_inh_exc: float = 17.0
    exc: ExcitatoryParams = field(default_factory=ExcitatoryParams)
    inh: InhibitoryParams = field(default_factory=InhibitoryParams)
    rule: Rule = "power_law"
    power_law: PowerLawSTDP = field(default_factory=PowerLawSTDP)
    trace: TraceSTDP = field(default_factory=TraceSTDP)
    # step_mean: at N = 100 on 15k MNIST images 76.1 % vs 74.3 % with plain exponential Euler
    integration: Integration = "step_mean"
    poisson: Poisson = "intervals"
    traces: Literal["neuron", "synapse"] = "neuron"
    chunk: int = 1000
    seed: int = 0

    RULES: ClassVar[dict] = {
        "max_rate": ">0",
        "rate_boost": ">=0",
        "max_repeats": ">=0",
        "w_init_low": ">=0",
        "w_init_high": ">=0",
        "w_sum": ">0",
        "w_exc_inh": ">=0",
        "w_inh_exc": ">=0",
        "seed": ">=0",
    }

    def __post_init__(self):
        if self.integration not in INTEGRATIONS:
            raise ValueError(f"integration must be one of {INTEGRATIONS}, got {self.integration!r}")
        if self.poisson not in POISSON:
            raise ValueError(f"poisson must be one of {POISSON}, got {self.poisson!r}")
        if self.traces not in TRACES:
            raise ValueError(f"traces must be one of {TRACES}, got {self.traces!r}")
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {self.rule!r}")
        if self.chunk <= self.max_repeats:
            raise ValueError(f"chunk ({self.chunk}) must exceed max_repeats ({self.max_repeats})")
        for name in ("n_input", "n_exc", "min_spikes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.t_present <= 0 or self.t_rest < 0 or self.dt <= 0:
            raise ValueError("need t_present > 0, t_rest >= 0, dt > 0 (ms)")
        if not 0 <= self.input_delay < self.t_rest + self.t_present:
            raise ValueError(f"input_delay must lie in [0, t_present + t_rest), got {self.input_delay} ms")

    @property
    def stdp(self) -> PowerLawSTDP | TraceSTDP:
        return self.power_law if self.rule == "power_law" else self.trace

    @property
    def t_slot(self) -> float:
        return self.t_present + self.t_rest


@dataclass(frozen=True)
class CrossConfig:
    """Plastic excitatory synapses between the excitatory populations of two ensembles, in both directions.

    Each presynaptic spike adds ``gain · w`` to the target's excitatory conductance; ``w`` learns with the
    power-law STDP rule (``stdp``) while the network is plastic. ``gain = 0`` leaves the ensembles independent.

    Attributes
    ----------
    gain
        Multiplier of the cross-modal weights onto the target conductance (dimensionless, >= 0): the network's
        starting value. It is a shared run-time variable (``cross_gain`` of the synapses), so
        :attr:`EnsembleNetwork.cross_gain` can change it between chunks without a rebuild — e.g. to test a
        network trained with its cross synapses with them switched off.
    w_init_low, w_init_high
        Initial weights, uniform.
    w_sum
        Each target neuron's incoming cross weights are rescaled to this sum after every presentation while
        plastic (like the input weights); 0 disables it.
    stdp
        Plasticity rule of the cross-modal synapses.
    """

    gain: float = 1.0
    w_init_low: float = 0.0
    w_init_high: float = 0.05
    w_sum: float = 0.0
    stdp: PowerLawSTDP = field(default_factory=PowerLawSTDP)

    RULES: ClassVar[dict] = {"gain": ">=0", "w_init_low": ">=0", "w_init_high": ">=0", "w_sum": ">=0"}

    def __post_init__(self):
        if self.gain < 0:
            raise ValueError(f"cross-modal gain must be >= 0 (excitatory only), got {self.gain}")
        if not 0 <= self.w_init_low <= self.w_init_high:
            raise ValueError(f"need 0 <= w_init_low <= w_init_high, got {self.w_init_low}, {self.w_init_high}")

    def synapse_model(self) -> SynapseModel:
        """The STDP synapse with its transmission scaled by the shared variable ``cross_gain``, which whoever
        builds the ``Synapses`` sets (as ``learning`` and ``eta_scale``)."""
        return self.stdp.synapse_model(gain="cross_gain")

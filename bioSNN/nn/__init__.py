"""PyTorch engine: spiking layers as pure step functions with thin modules (Norse style)."""

from .neurons import FAR_PAST, IF, LIF, LIFParams, LIFState, lif_step
from .surrogate import SURROGATES, fast_sigmoid, get_surrogate, linear, spike, stdb

__all__ = [
    "FAR_PAST",
    "IF",
    "LIF",
    "LIFParams",
    "LIFState",
    "lif_step",
    "SURROGATES",
    "fast_sigmoid",
    "linear",
    "stdb",
    "get_surrogate",
    "spike",
]

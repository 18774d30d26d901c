"""PyTorch engine: spiking layers as pure step functions with thin modules (Norse style)."""

from .neurons import LIF, LIFParams, LIFState, lif_step
from .surrogate import SURROGATES, fast_sigmoid, get_surrogate, linear, spike

__all__ = ["LIF", "LIFParams", "LIFState", "lif_step", "SURROGATES", "fast_sigmoid", "linear", "get_surrogate",
           "spike"]

"""PyTorch engine: spiking layers as pure step functions with thin modules (Norse style).

Importing it switches off MKL's dynamic threading (``MKL_DYNAMIC=FALSE`` unless the environment sets it) before MKL
first runs: with it on, MKL may use fewer threads than ``torch.set_num_threads`` asks for when the machine is busy,
which changes the summation order of its products, so two runs of the same training (or a run and its resume)
differed in the last bits: 2 of 10 copies of one small training run side by side at two threads gave another
loss in the 8th digit, 0 of 12 with it off.
"""

import os

os.environ.setdefault("MKL_DYNAMIC", "FALSE")

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

"""Compute-energy estimates from operation counts.

An ANN layer costs one multiply-accumulate (MAC) per weight per input; an SNN layer costs one accumulate (AC)
per synaptic event (an input spike times its fan-out), except a layer fed analog values, which still performs
MACs at every time step (the count of Rathi & Roy; :func:`snn_energy_pj`). With direct encoding that layer's
input is the same frame at every step, so its current ``W·x`` can be computed once and held: ``reuse_constant_input``
counts it as its MACs once plus one accumulate per output neuron per step (adding the held current), which is what
bioSNN's layer mode computes. Energies use the 45 nm CMOS figures of Horowitz (ISSCC 2014) for 32-bit operations:
E_MAC = 4.6 pJ, E_AC = 0.9 pJ, as in Rathi & Roy (2020, 2021). Memory access and data movement are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["E_MAC_PJ", "E_AC_PJ", "LayerOps", "ann_energy_pj", "snn_energy_pj", "CONSTANTS_NOTE"]

E_MAC_PJ = 4.6
E_AC_PJ = 0.9
CONSTANTS_NOTE = "45 nm CMOS, 32-bit: MAC 4.6 pJ, AC 0.9 pJ (Horowitz 2014); compute only, no memory access"


@dataclass(frozen=True)
class LayerOps:
    """Operation counts of one layer for one sample.

    Attributes
    ----------
    name
        Layer name.
    macs
        MACs of the layer as an ANN (fan-in × outputs).
    synaptic_events
        SNN: input spikes × fan-out, summed over all time steps (ACs).
    analog_input
        The layer receives analog values (e.g. direct encoding): counted as ``macs × time steps`` MACs.
    time_steps
        Number of time steps of the SNN.
    outputs
        Output neurons of the layer for one sample (for ``reuse_constant_input``).
    """

    name: str
    macs: float
    synaptic_events: float = 0.0
    analog_input: bool = False
    time_steps: int = 1
    outputs: float = 0.0


def ann_energy_pj(layers: list[LayerOps]) -> float:
    """Energy of the ANN: every layer's MACs × E_MAC."""
    return sum(layer.macs for layer in layers) * E_MAC_PJ


def snn_energy_pj(layers: list[LayerOps], reuse_constant_input: bool = False) -> float:
    """Energy of the SNN: analog-input layers as MACs at every step, spiking layers as ACs per event.

    ``reuse_constant_input``: an analog-input layer whose input is the same at every step (direct encoding) costs
    its MACs once plus ``outputs × time_steps`` ACs (the held current added to each membrane at each step)."""
    total = 0.0
    for layer in layers:
        if layer.analog_input and reuse_constant_input:
            if layer.outputs <= 0:
                raise ValueError(f"layer {layer.name!r}: reuse_constant_input needs its number of outputs")
            total += layer.macs * E_MAC_PJ + layer.outputs * layer.time_steps * E_AC_PJ
        elif layer.analog_input:
            total += layer.macs * layer.time_steps * E_MAC_PJ
        else:
            total += layer.synaptic_events * E_AC_PJ
    return total

"""STDP-driven pruning and conductance quantization of the input synapses (Rathi et al. 2018, thesis part 1).

Applied at regular intervals *during* training, between simulation chunks:

- **prune**: power-law STDP depresses synapses whose presynaptic input rarely precedes the postsynaptic spike
  (low pre/post correlation), so their weight falls. Synapses below ``prune_threshold`` are removed for good:
  their weight is set to 0 and their ``alive`` flag cleared, which also blocks all later STDP updates.
- **quantize**: the remaining weights are programmed onto the memristive device of :mod:`bioSNN.device`
  (``2**bits`` levels), the same code the PyTorch engine uses for quantization-aware training. By default
  (``column_levels``) each excitatory neuron's levels reach up to its own largest weight m and the column is
  then rescaled to the normalisation sum: one shared set of device states, one read-out gain per neuron.
  Without pruning the lowest state is weight 0 (``unipolar``: 0, m/3, 2m/3, m at 2 bits); with pruning a zero
  weight is an absent cell, so all states serve kept synapses (``proportional``: m/4, m/2, 3m/4, m at 2 bits,
  ``zero_level``), and a weight nearer 0 than m/4 is pruned rather than raised (``snap_to_absent``).

Measured at N = 100 (15,000 MNIST images, labels from the last 5,000, 2,000 test; full network 77.2 %),
pruned + 2-bit during training from image 5,000, every 1,000 images: one level set up to the array's largest
weight, weak synapses raised to m/4: 66.2 %; with ``snap_to_absent``: 75.6 %; per-neuron levels as well:
**76.4 %** (82 % of synapses pruned).

Cost model for the reports: :data:`COST_MODEL`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .. import device as _device
from .. import energy

# how the reports count synaptic events, energy and area (stated so every number can be checked)
COST_MODEL = """\
- *synaptic events* per test image = Σ over inputs of (expected input spikes) × (kept synapses of that
  input);
  expected spikes = rate × presentation time of each pixel;
- *energy* = synaptic events × E_AC of :mod:`bioSNN.energy` (the PyTorch engine's constants: one accumulate
  per event, 0.9 pJ at 45 nm), the same for every event (a crossbar read or an accumulate), so energy ratios
  equal event ratios;
- *area* = memory cells: kept synapses × bits per synapse, against the full network at ``reference_bits``."""

__all__ = [
    "COST_MODEL",
    "CompressionConfig",
    "prune",
    "quantize",
    "quantize_columns",
    "compress",
    "compress_with_feedback",
    "synaptic_events",
    "cost_report",
]

_VARIANT = re.compile(r"^(full|pruned|q(\d)|pruned\+q(\d))$")


@dataclass(frozen=True)
class CompressionConfig:
    """When and how to compress.

    Attributes
    ----------
    prune
        Prune at all.
    prune_threshold
        Weight below which an alive synapse is pruned.
    bits
        Device bits per synapse (``2**bits`` levels); 0 = no quantization.
    interval
        Images between two compression steps (K).
    start
        Images seen before the first compression step (STDP must first separate the synapses).
    reference_bits
        Precision of the uncompressed network in the area model.
    zero_level
        Whether one of the ``2**bits`` states is weight 0; ``None``: only when not pruning (see the module).
    column_levels
        Quantize each neuron's weights on levels up to its own largest weight, then rescale the column to the
        normalisation sum (one read-out gain per neuron, :func:`quantize_columns`) instead of one level set up
        to the largest weight of the array (:func:`quantize`).
    snap_to_absent
        When pruning and quantizing without a zero state (:func:`compress`): prune the alive weights that lie
        nearer to 0 (an absent cell) than to the lowest state, instead of raising them to that state. Without
        it every compression step during training lifts the weakest kept synapses to m/2**bits, STDP cannot
        depress them below the pruning threshold before the next step, and fields keep a blurred background
        (N = 100, 15,000 images: pruning alone or 2-bit alone from image 10,000 cost 1 point each, both
        together 9 points).
    error_feedback
        Carry each quantization step's rounding error into the next (:func:`compress_with_feedback`): the next
        step quantizes the weight plus the carried remainder, so STDP changes smaller than half a level
        spacing add up until they move the synapse to another level instead of being snapped back every
        interval. The simulated network still runs on device levels only; the remainder is one extra number
        per synapse during training (it is not part of the deployed network).
    """

    prune: bool = False
    prune_threshold: float = 0.05
    bits: int = 0
    interval: int = 1000
    start: int = 1000
    reference_bits: int = 8
    zero_level: bool | None = None
    column_levels: bool = True
    snap_to_absent: bool = True
    error_feedback: bool = False

    def __post_init__(self):
        if self.bits < 0 or self.interval < 1 or self.start < 0 or self.prune_threshold < 0:
            raise ValueError("need bits >= 0, interval >= 1, start >= 0, prune_threshold >= 0")

    @property
    def active(self) -> bool:
        return self.prune or self.bits > 0

    @property
    def levels_include_zero(self) -> bool:
        return (not self.prune) if self.zero_level is None else bool(self.zero_level)

    @classmethod
    def from_variant(
        cls,
        variant: str,
        prune_threshold: float = 0.05,
        interval: int = 1000,
        start: int = 1000,
        reference_bits: int = 8,
        zero_level: bool | None = None,
        column_levels: bool = True,
        snap_to_absent: bool = True,
        error_feedback: bool = False,
    ) -> CompressionConfig:
        """Parse a scheme name: ``full``, ``pruned``, ``q<bits>`` or ``pruned+q<bits>``, optionally followed by
        options that override the arguments: ``:global`` (one level set for the whole array instead of
        ``column_levels``) and ``:raise`` (raise weak kept weights to the lowest state instead of
        ``snap_to_absent``), e.g. ``pruned+q2:global:raise``. The one grammar of compression schemes, during
        training (the compression experiment's variants) and after it
        (:mod:`bioSNN.experiments.compression_posthoc`)."""
        base, *options = variant.split(":")
        m = _VARIANT.match(base)
        if not m:
            raise ValueError(
                f"unknown variant {variant!r}: use full, pruned, q<bits>, pruned+q<bits>, "
                "optionally with :global and :raise"
            )
        for option in options:
            if option == "global":
                column_levels = False
            elif option == "raise":
                snap_to_absent = False
            else:
                raise ValueError(f"unknown option {option!r} of variant {variant!r}: use :global or :raise")
        bits = int(m.group(2) or m.group(3) or 0)
        return cls(
            prune=base.startswith("pruned"),
            prune_threshold=prune_threshold,
            bits=bits,
            interval=interval,
            start=start,
            reference_bits=reference_bits,
            zero_level=zero_level,
            column_levels=column_levels,
            snap_to_absent=snap_to_absent,
            error_feedback=error_feedback,
        )


def prune(w: np.ndarray, alive: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Remove alive synapses with ``w < threshold``; pruned synapses stay pruned (``alive`` only shrinks)."""
    alive = alive & (w >= threshold)
    return np.where(alive, w, 0.0), alive


def quantize(
    w: np.ndarray, alive: np.ndarray, bits: int, zero_level: bool = True
) -> tuple[np.ndarray, _device.DeviceConfig]:
    """Alive weights on the nearest of ``2**bits`` device levels up to m = the largest alive weight:
    k·m/(2**bits − 1), k = 0 … 2**bits − 1 (``unipolar``) with ``zero_level``, else k·m/2**bits,
    k = 1 … 2**bits (``proportional``, g_min = g_max / 2**bits). Pruned synapses are 0."""
    w_max = max(float(w[alive].max()) if alive.any() else 1.0, 1e-12)
    cfg = _levels(bits, zero_level, w_max)
    return np.where(alive, _device.quantize(w, cfg), 0.0), cfg


def _levels(bits: int, zero_level: bool, w_max: float) -> _device.DeviceConfig:
    """The device of 2**bits states up to ``w_max``: with a zero state (``unipolar``) or all nonzero
    (``proportional``)."""
    if zero_level:
        return _device.DeviceConfig.from_bits(bits, mapping="unipolar", w_max=w_max)
    return _device.DeviceConfig.proportional(bits, w_max=w_max)


def quantize_columns(
    w: np.ndarray, alive: np.ndarray, bits: int, zero_level: bool = True, column_sum: float | None = None
) -> tuple[np.ndarray, _device.DeviceConfig, np.ndarray]:
    """Per-neuron (per-column) quantization: each column's alive weights on the device levels scaled to that
    column's own largest weight, then (``column_sum``) the column rescaled to that sum, as the per-image
    normalisation of training does. Returns ``(w, device, gain)`` with ``w[:, j] = gain[j] · level``, the levels
    those of ``device`` (``w_max`` = 1): one shared set of conductance states, one read-out gain per neuron.

    Global levels (:func:`quantize`) flatten every neuron whose weights are all small onto the lowest state or
    two; per-column levels keep each receptive field's shape in all ``2**bits`` states.
    """
    w = np.asarray(w, dtype=np.float64)
    alive = np.asarray(alive, bool)
    if w.ndim != 2 or alive.shape != w.shape:
        raise ValueError(f"w and alive must be 2-D arrays of one shape, got {w.shape} and {alive.shape}")
    cfg = _levels(bits, zero_level, 1.0)
    m = np.where(alive, w, 0.0).max(0)
    m = np.where(m > 0, m, 1.0)
    levels = np.where(alive, _device.quantize(np.where(alive, w, 0.0) / m, cfg), 0.0)
    gain = m.copy()
    if column_sum is not None:
        s = levels.sum(0)
        gain = np.where(s > 0, column_sum / np.maximum(s, 1e-300), m)
    return levels * gain, cfg, gain


def compress(
    w: np.ndarray, alive: np.ndarray, comp: CompressionConfig, column_sum: float | None = None
) -> tuple[np.ndarray, np.ndarray, dict | None, np.ndarray | None]:
    """One compression step as ``comp`` says: prune, then quantize. Returns ``(w, alive, device, gain)``;
    ``device`` (a :class:`bioSNN.device.DeviceConfig` dict) and the per-neuron ``gain`` (column levels only)
    are None when nothing is quantized."""
    device, gain = None, None
    if comp.prune:
        w, alive = prune(w, alive, comp.prune_threshold)
    if comp.bits and comp.prune and comp.snap_to_absent and not comp.levels_include_zero:
        # the crossbar can hold an alive weight at a state k·m/2**bits or not at all (an absent cell, weight 0):
        # a weight nearer to 0 than to the lowest state is pruned instead of raised to that state
        m = np.where(alive, w, 0.0).max(0 if comp.column_levels else None)
        w, alive = prune(w, alive, m / 2 ** (comp.bits + 1))
    if comp.bits:
        if comp.column_levels:
            w, cfg, gain = quantize_columns(w, alive, comp.bits, comp.levels_include_zero, column_sum)
        else:
            w, cfg = quantize(w, alive, comp.bits, comp.levels_include_zero)
        device = cfg.to_dict()
    return w, alive, device, gain


def compress_with_feedback(
    w: np.ndarray,
    alive: np.ndarray,
    comp: CompressionConfig,
    column_sum: float | None = None,
    residual: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict | None, np.ndarray | None, np.ndarray | None]:
    """:func:`compress` with error feedback (``comp.error_feedback``, with quantization): compresses
    ``w + residual`` and returns ``(w, alive, device, gain, residual)``, the new residual being what that
    step's rounding left out (0 where pruned). ``residual`` None: nothing carried yet. Without error feedback
    or without quantization this is :func:`compress` and the returned residual is None."""
    if not (comp.error_feedback and comp.bits):
        return (*compress(w, alive, comp, column_sum), None)
    target = np.asarray(w, np.float64)
    if residual is not None:
        if residual.shape != target.shape:
            raise ValueError(f"residual shape {residual.shape} does not match the weights {target.shape}")
        target = np.where(alive, target + residual, 0.0)
    new_w, new_alive, device, gain = compress(target, alive, comp, column_sum)
    return new_w, new_alive, device, gain, np.where(new_alive, target - new_w, 0.0)


def synaptic_events(images: np.ndarray, alive: np.ndarray, max_rate_hz: float, t_present_s: float) -> float:
    """Expected synaptic events per image: Σ_i E[spikes of input i] × kept synapses of input i, averaged."""
    expected_spikes = images.astype(float) / 255.0 * max_rate_hz * t_present_s  # (n_images, n_input)
    return float((expected_spikes @ alive.sum(1)).mean())


def cost_report(images, alive, bits: int, max_rate_hz: float, t_present_s: float, reference_bits: int) -> dict:
    """Synapses kept, bits, events/energy and area relative to the full (unpruned, reference-precision) network."""
    full = np.ones_like(alive)
    ev, ev_full = (synaptic_events(images, a, max_rate_hz, t_present_s) for a in (alive, full))
    b = bits or reference_bits
    n_input, n_exc = alive.shape
    return {
        "synapses_kept": int(alive.sum()),
        "fraction_pruned": float(1 - alive.mean()),
        "bits_per_synapse": b,
        "synaptic_events_per_image": ev,
        "energy_pj_per_image": energy.snn_energy_pj([energy.LayerOps("input_exc", n_input * n_exc, ev)]),
        "energy_model": energy.CONSTANTS_NOTE,
        "energy_vs_full": ev / ev_full,  # = the energies' ratio: every event costs the same
        "area_vs_full": float(alive.sum() * b) / (alive.size * reference_bits),
    }

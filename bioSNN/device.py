"""Memristive crossbar device model: weights ⇄ quantized synaptic conductances.

The one place where weights become conductances, shared by STDP compression (Brian2) and quantization-aware
training (PyTorch).

Model
-----
A device holds one of ``L = levels`` conductance states between ``g_min`` and ``g_max`` (siemens). With write
nonlinearity ``ν`` (0 = linear) the k-th state reached by identical programming pulses is

    G_k = g_min + (g_max − g_min) · (1 − exp(−ν k / (L − 1))) / (1 − exp(−ν)),   k = 0 … L − 1

(the usual saturating pulse response, e.g. Chen et al., NeuroSim, IEEE TCAD 2018). A weight maps linearly to a
target conductance and is programmed to the nearest state:

- ``unipolar``: w ∈ [0, w_max] → G = g_min + (g_max − g_min) · w / w_max (one device per synapse);
- ``differential``: signed w ∈ [−w_max, w_max] → a pair with w ∝ G⁺ − G⁻; the sign picks the device that
  carries |w|, the other stays at g_min (two devices per synapse);
- ``proportional``: w ∈ (0, w_max] → G = g_max · w / w_max, read as w = w_max · G / g_max (one device, no
  offset subtraction). Every state is a nonzero weight, the lowest w_max · g_min / g_max: for pruned crossbars,
  where a zero weight is a cell that is not there, so all states serve the kept synapses (with
  g_min = g_max / L the weights are w_max · k / L, k = 1 … L).

Weights outside the range are clipped to it. Programming a real array adds Gaussian noise of standard deviation
``noise · (g_max − g_min)`` to every device (clipped at 0 S) and leaves a fraction ``stuck_off`` of devices at
g_min and ``stuck_on`` at g_max, drawn independently per device from ``seed``.

``quantize`` returns weights that the device can represent exactly (nearest state, no noise);
``program`` returns the weights read back after programming (noise and faults). Both accept numpy arrays and
torch tensors; on tensors the gradient passes straight through (Bengio et al. 2013).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

__all__ = ["DeviceConfig", "level_conductances", "to_conductance", "from_conductance", "quantize", "program"]


@dataclass(frozen=True)
class DeviceConfig:
    """Memristive device parameters (frozen, validated on construction).

    Attributes
    ----------
    levels
        Number of attainable conductance states per device, >= 2 (``2**bits``; see :meth:`from_bits`).
    g_min, g_max
        Lowest and highest conductance in siemens, ``0 <= g_min < g_max``.
    mapping
        ``"unipolar"`` (w in [0, w_max], one device), ``"differential"`` (signed w = G⁺ − G⁻, two devices) or
        ``"proportional"`` (w = w_max · G / g_max > 0, one device; zero weights are absent cells).
    w_max
        Weight magnitude mapped to ``g_max`` (dimensionless, > 0).
    nonlinearity
        Write nonlinearity ν >= 0 of the pulse response; 0 gives equally spaced levels.
    noise
        Programming noise: σ as a fraction of ``g_max − g_min``, >= 0.
    stuck_off, stuck_on
        Fractions of devices stuck at ``g_min`` / ``g_max``; each >= 0, sum <= 1.
    seed
        Seed of the noise and fault draws.
    """

    levels: int = 16
    g_min: float = 1e-6
    g_max: float = 1e-4
    mapping: Literal["unipolar", "differential", "proportional"] = "unipolar"
    w_max: float = 1.0
    nonlinearity: float = 0.0
    noise: float = 0.0
    stuck_off: float = 0.0
    stuck_on: float = 0.0
    seed: int = 0

    def __post_init__(self):
        if int(self.levels) != self.levels or self.levels < 2:
            raise ValueError(f"levels must be an integer >= 2, got {self.levels}")
        if not (0 <= self.g_min < self.g_max) or not math.isfinite(self.g_max):
            raise ValueError(f"need 0 <= g_min < g_max, got g_min={self.g_min}, g_max={self.g_max}")
        if self.mapping not in ("unipolar", "differential", "proportional"):
            raise ValueError(f"mapping must be 'unipolar', 'differential' or 'proportional', got {self.mapping!r}")
        if not self.w_max > 0:
            raise ValueError(f"w_max must be > 0, got {self.w_max}")
        if self.nonlinearity < 0 or self.noise < 0:
            raise ValueError(f"nonlinearity and noise must be >= 0, got {self.nonlinearity}, {self.noise}")
        if self.stuck_off < 0 or self.stuck_on < 0 or self.stuck_off + self.stuck_on > 1:
            raise ValueError(f"fault rates must be >= 0 and sum to <= 1, got {self.stuck_off}, {self.stuck_on}")

    @classmethod
    def from_bits(cls, bits: int, **kwargs) -> DeviceConfig:
        """A device with ``2**bits`` levels."""
        if int(bits) != bits or bits < 1:
            raise ValueError(f"bits must be an integer >= 1, got {bits}")
        return cls(levels=2 ** int(bits), **kwargs)

    @classmethod
    def proportional(cls, bits: int, w_max: float = 1.0, **kwargs) -> DeviceConfig:
        """A ``proportional`` device with ``2**bits`` equally spaced nonzero weights w_max·k/2**bits,
        k = 1 … 2**bits (g_min = g_max / 2**bits): every state serves a kept synapse of a pruned crossbar."""
        g_max = kwargs.pop("g_max", cls.g_max)
        return cls.from_bits(
            bits, mapping="proportional", w_max=w_max, g_min=g_max / 2 ** int(bits), g_max=g_max, **kwargs
        )

    @property
    def bits(self) -> float:
        """Information per device, log2(levels)."""
        return math.log2(self.levels)

    @property
    def devices_per_synapse(self) -> int:
        return 2 if self.mapping == "differential" else 1

    def to_dict(self) -> dict:
        return asdict(self)


def level_conductances(cfg: DeviceConfig) -> np.ndarray:
    """The ``levels`` attainable conductances in siemens, increasing, from g_min to g_max."""
    k = np.arange(cfg.levels, dtype=np.float64) / (cfg.levels - 1)
    shape = k if cfg.nonlinearity == 0 else (1 - np.exp(-cfg.nonlinearity * k)) / (1 - np.exp(-cfg.nonlinearity))
    g = cfg.g_min + (cfg.g_max - cfg.g_min) * shape
    g[0], g[-1] = cfg.g_min, cfg.g_max  # exact end points despite rounding
    return g


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _nearest_level(g, cfg: DeviceConfig):
    """Snap conductances to the nearest attainable level (numpy or torch)."""
    levels = level_conductances(cfg)
    mids = (levels[1:] + levels[:-1]) / 2
    if _is_torch(g):
        import torch

        lv = torch.as_tensor(levels, dtype=g.dtype, device=g.device)
        idx = torch.bucketize(g, torch.as_tensor(mids, dtype=g.dtype, device=g.device))
        return lv[idx]
    return levels[np.searchsorted(mids, g)]


def _weight_to_target(w, cfg: DeviceConfig):
    """Clip weights to the mapping's range and scale to target conductance(s) before snapping."""
    span = cfg.g_max - cfg.g_min
    if _is_torch(w):
        import torch

        if cfg.mapping == "unipolar":
            return (cfg.g_min + span * w.clamp(0, cfg.w_max) / cfg.w_max).unsqueeze(0)
        if cfg.mapping == "proportional":
            return (cfg.g_max * w.clamp(0, cfg.w_max) / cfg.w_max).unsqueeze(0)
        mag = cfg.g_min + span * w.abs().clamp(max=cfg.w_max) / cfg.w_max
        low = torch.full_like(w, cfg.g_min)
        return torch.stack([torch.where(w >= 0, mag, low), torch.where(w < 0, mag, low)])
    w = np.asarray(w, dtype=np.float64)
    if cfg.mapping == "unipolar":
        return (cfg.g_min + span * np.clip(w, 0, cfg.w_max) / cfg.w_max)[None]
    if cfg.mapping == "proportional":
        return (cfg.g_max * np.clip(w, 0, cfg.w_max) / cfg.w_max)[None]
    mag = cfg.g_min + span * np.minimum(np.abs(w), cfg.w_max) / cfg.w_max
    return np.stack([np.where(w >= 0, mag, cfg.g_min), np.where(w < 0, mag, cfg.g_min)])


def to_conductance(w, cfg: DeviceConfig, *, programmed: bool = False) -> np.ndarray:
    """Conductances (S) that represent weights ``w`` on the device.

    Returns an array of shape ``(1, *w.shape)`` for ``unipolar`` and ``(2, *w.shape)`` = ``[G⁺, G⁻]`` for
    ``differential``: one row per device of a synapse. Each conductance is the nearest attainable level; with
    ``programmed=True`` programming noise and stuck-at faults are applied (numpy only, seeded by ``cfg.seed``).
    """
    if _is_torch(w):
        if programmed:
            raise NotImplementedError("programming noise is applied on numpy arrays; use program() for tensors")
        return _nearest_level(_weight_to_target(w, cfg), cfg)
    g = _nearest_level(_weight_to_target(w, cfg), cfg)
    if programmed:
        g = _program_conductances(g, cfg)
    return g


def _program_conductances(g: np.ndarray, cfg: DeviceConfig) -> np.ndarray:
    rng = np.random.default_rng(cfg.seed)
    g = g.copy()
    if cfg.noise > 0:
        g = np.maximum(g + rng.normal(0.0, cfg.noise * (cfg.g_max - cfg.g_min), g.shape), 0.0)
    if cfg.stuck_off > 0 or cfg.stuck_on > 0:
        u = rng.random(g.shape)
        g[u < cfg.stuck_off] = cfg.g_min
        g[(u >= cfg.stuck_off) & (u < cfg.stuck_off + cfg.stuck_on)] = cfg.g_max
    return g


def from_conductance(g, cfg: DeviceConfig):
    """Weights represented by conductances ``g`` (the layout :func:`to_conductance` returns)."""
    if g.shape[0] != cfg.devices_per_synapse:
        raise ValueError(
            f"{cfg.mapping} mapping expects a leading axis of {cfg.devices_per_synapse} "
            f"device(s), got shape {tuple(g.shape)}"
        )
    if cfg.mapping == "proportional":
        return g[0] * (cfg.w_max / cfg.g_max)
    scale = cfg.w_max / (cfg.g_max - cfg.g_min)
    if cfg.mapping == "unipolar":
        return (g[0] - cfg.g_min) * scale
    return (g[0] - g[1]) * scale


def quantize(w, cfg: DeviceConfig):
    """Weights snapped to the nearest value the device can hold (deterministic, no noise or faults).

    numpy in → numpy out (float64). torch in → torch out, same dtype, with a straight-through gradient:
    the forward value is quantized, the backward pass is the identity.
    """
    if _is_torch(w):
        with _no_grad():
            q = from_conductance(to_conductance(w.detach(), cfg), cfg).to(w.dtype)
        return w + (q - w).detach()
    return from_conductance(to_conductance(w, cfg), cfg)


def program(w, cfg: DeviceConfig):
    """Weights read back after programming them onto the device: nearest level plus noise and faults.

    Torch tensors are programmed through numpy (no gradient); the result has the input's dtype and device.
    """
    if _is_torch(w):
        import torch

        arr = w.detach().cpu().double().numpy()
        return torch.as_tensor(
            from_conductance(to_conductance(arr, cfg, programmed=True), cfg), dtype=w.dtype, device=w.device
        )
    return from_conductance(to_conductance(w, cfg, programmed=True), cfg)


def _no_grad():
    import torch

    return torch.no_grad()

"""The Diehl & Cook (2015) unsupervised MNIST network, as a bioSNN bundle and from one.

The network itself is built by :class:`bioSNN.brian.network.DiehlCookNetwork`; this module names its
populations and projections for the weight bundle, so a trained network (weights, θ, pruning mask, label
assignment, device) can be saved, inspected, and loaded back into a new network or another simulator.
"""

from __future__ import annotations

import numpy as np

from bioSNN import io
from bioSNN.brian.network import DiehlCookConfig

__all__ = ["to_bundle", "state_from_bundle"]


def to_bundle(cfg: DiehlCookConfig, w: np.ndarray, alive: np.ndarray, theta_mv: np.ndarray,
              assignments: np.ndarray | None = None, device: dict | None = None,
              column_gain: np.ndarray | None = None, **kwargs) -> io.Bundle:
    """The network's state as a bundle: dense input weights ``(n_input, n_exc)``, fixed exc↔inh weights,
    θ (mV), the pruning mask and, once known, each neuron's class. A network quantized per neuron
    (:func:`bioSNN.brian.compression.quantize_columns`) also stores ``input_exc.column_gain``: column j's weights
    are ``column_gain[j]`` × a level of ``device``."""
    n = cfg.n_exc
    pops = [
        io.Population("input", cfg.n_input, "poisson", {
            "max_rate": {"value": cfg.max_rate, "unit": "Hz"}, "t_present": {"value": cfg.t_present, "unit": "ms"},
            "t_rest": {"value": cfg.t_rest, "unit": "ms"}}),
        io.Population("exc", n, "lif_conductance_adaptive_threshold", cfg.exc.nir_params()),
        io.Population("inh", n, "lif_conductance", cfg.inh.nir_params()),
    ]
    w_ie = np.full((n, n), cfg.w_inh_exc)
    np.fill_diagonal(w_ie, 0.0)
    arrays = {"input_exc.w": np.asarray(w, np.float64), "input_exc.alive": np.asarray(alive, bool),
              "exc.theta_mV": np.asarray(theta_mv, np.float64), "exc_inh.w": np.full(n, cfg.w_exc_inh),
              "inh_exc.w": w_ie}
    if assignments is not None:
        arrays["exc.assignment"] = np.asarray(assignments, np.int64)
    if column_gain is not None:
        arrays["input_exc.column_gain"] = np.asarray(column_gain, np.float64)
    rule = {"rule": cfg.rule, **cfg.stdp.to_dict()}
    projs = [
        io.Projection("input_exc", "input", "exc", "input_exc.w", params={
            "stdp": {"value": rule, "unit": ""}, "w_sum": {"value": cfg.w_sum, "unit": "1"}}),
        io.Projection("exc_inh", "exc", "inh", "exc_inh.w", connectivity="one_to_one"),
        io.Projection("inh_exc", "inh", "exc", "inh_exc.w"),
    ]
    return io.Bundle(pops, projs, arrays, engine="brian2", name="diehl_cook", device=device, **kwargs)


def state_from_bundle(bundle: io.Bundle, cfg: DiehlCookConfig) -> dict:
    """``w``, ``alive``, ``theta`` (mV) and ``assignment`` (or None) of a saved network, checked against ``cfg``."""
    w = bundle.arrays["input_exc.w"]
    if w.shape != (cfg.n_input, cfg.n_exc):
        raise ValueError(f"bundle holds a {w.shape[0]}x{w.shape[1]} network, config asks for "
                         f"{cfg.n_input}x{cfg.n_exc}")
    return {"w": w.copy(), "alive": bundle.arrays["input_exc.alive"].astype(bool),
            "theta": bundle.arrays["exc.theta_mV"].copy(), "assignment": bundle.arrays.get("exc.assignment")}

"""Brian2 STDP networks as bioSNN bundles and back: the one bundle writer of the Brian2 engine.

Every network of :class:`~bioSNN.brian.network.EnsembleNetwork` is stored the same way. An ensemble's
populations are ``input`` (Poisson), ``exc`` (conductance LIF with adaptive threshold) and ``inh``; its
projections ``input_exc`` (dense weights, pruning mask ``alive``, STDP rule), ``exc_inh``
(one-to-one) and ``inh_exc`` (all but self); θ (mV), each neuron's class once known, and, for a network
quantized per neuron (:func:`bioSNN.brian.compression.quantize_columns`), ``input_exc.column_gain``: column j's
weights are ``column_gain[j]`` × a level of the bundle's ``device``.

The single unnamed ensemble of :class:`~bioSNN.brian.network.DiehlCookNetwork` uses these names as they are
(bundle ``diehl_cook``); named ensembles (``image``, ``audio``) prefix them (``image_exc``, arrays
``image.input_exc.w``), and cross-modal projections are dense arrays ``image_to_audio.w`` / ``.alive`` with their
gain (bundle ``multimodal_stdp``).

Dense arrays are stored ``(target, source)`` as every bundle stores them (``input_exc.w``: ``(n_exc, n_input)``,
row j = the receptive field of excitatory neuron j); the engine holds them ``(source, target)`` (Brian2's synapse
order ``i`` → ``j``) and this module transposes on the way in and out.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import bundles
from .network import CrossConfig, DiehlCookConfig

__all__ = ["to_bundle", "state_from_bundle", "array_key"]


def _names(name: str) -> tuple[str, str]:
    """(population prefix, array prefix) of an ensemble."""
    return (f"{name}_", f"{name}.") if name else ("", "")


def array_key(ensemble: str, key: str) -> str:
    """The bundle array ``key`` (e.g. ``input_exc.column_gain``) of an ensemble: prefixed with ``<name>.`` for a
    named ensemble, as it is for the unnamed one."""
    return _names(ensemble)[1] + key


def to_bundle(
    configs: dict[str, DiehlCookConfig],
    state: dict,
    cross_state: dict | None = None,
    cross: CrossConfig | None = None,
    assignments: dict | None = None,
    device: dict | None = None,
    column_gain: dict | None = None,
    **kwargs,
) -> bundles.Bundle:
    """The networks's state as a bundle. ``configs``, ``state`` (``w``, ``alive``, ``theta`` in mV),
    ``assignments`` and ``column_gain`` are keyed by ensemble name (``""`` for the single unnamed ensemble);
    ``cross_state`` by cross-modal projection (``a_to_b``: ``w``, ``alive``). ``kwargs`` go to
    :class:`~bioSNN.bundles.Bundle` (provenance, extra)."""
    pops, projs, arrays = [], [], {}
    for name, cfg in configs.items():
        pp, ap = _names(name)
        st, n = state[name], cfg.n_exc
        pops += [
            bundles.Population(
                f"{pp}input",
                cfg.n_input,
                "poisson",
                {
                    "max_rate": {"value": cfg.max_rate, "unit": "Hz"},
                    "t_present": {"value": cfg.t_present, "unit": "ms"},
                    "t_rest": {"value": cfg.t_rest, "unit": "ms"},
                },
            ),
            bundles.Population(f"{pp}exc", n, "lif_conductance_adaptive_threshold", cfg.exc.nir_params()),
            bundles.Population(f"{pp}inh", n, "lif_conductance", cfg.inh.nir_params()),
        ]
        w_ie = np.full((n, n), cfg.w_inh_exc)
        np.fill_diagonal(w_ie, 0.0)
        arrays.update(
            {
                f"{ap}input_exc.w": np.ascontiguousarray(np.asarray(st["w"], np.float64).T),
                f"{ap}input_exc.alive": np.ascontiguousarray(np.asarray(st["alive"], bool).T),
                f"{ap}exc.theta_mV": np.asarray(st["theta"], np.float64),
                f"{ap}exc_inh.w": np.full(n, cfg.w_exc_inh),
                f"{ap}inh_exc.w": w_ie,
            }
        )
        if (assignments or {}).get(name) is not None:
            arrays[f"{ap}exc.assignment"] = np.asarray(assignments[name], np.int64)
        if (column_gain or {}).get(name) is not None:
            arrays[array_key(name, "input_exc.column_gain")] = np.asarray(column_gain[name], np.float64)
        rule = {"rule": cfg.rule, **cfg.stdp.to_dict()}
        projs += [
            bundles.Projection(
                f"{pp}input_exc",
                f"{pp}input",
                f"{pp}exc",
                f"{ap}input_exc.w",
                params={"stdp": {"value": rule, "unit": ""}, "w_sum": {"value": cfg.w_sum, "unit": "1"}},
            ),
            bundles.Projection(f"{pp}exc_inh", f"{pp}exc", f"{pp}inh", f"{ap}exc_inh.w", connectivity="one_to_one"),
            bundles.Projection(f"{pp}inh_exc", f"{pp}inh", f"{pp}exc", f"{ap}inh_exc.w"),
        ]
    for key, st in (cross_state or {}).items():
        src, dst = key.split("_to_")
        arrays[f"{key}.w"] = np.ascontiguousarray(np.asarray(st["w"], np.float64).T)
        arrays[f"{key}.alive"] = np.ascontiguousarray(np.asarray(st["alive"], bool).T)
        params = {
            "gain": {"value": cross.gain if cross else 0.0, "unit": "1"},
            "stdp": {"value": cross.stdp.to_dict() if cross else {}, "unit": ""},
        }
        projs.append(bundles.Projection(key, f"{src}_exc", f"{dst}_exc", f"{key}.w", params=params))
    name = "diehl_cook" if list(configs) == [""] else "multimodal_stdp"
    # every ensemble's configuration: what another engine needs to simulate the network without the run's config
    extra = {**kwargs.pop("extra", {}), "network": {n: dataclasses.asdict(c) for n, c in configs.items()}}
    return bundles.Bundle(pops, projs, arrays, engine="brian2", name=name, device=device, extra=extra, **kwargs)


def state_from_bundle(bundle: bundles.Bundle, configs: dict[str, DiehlCookConfig]) -> tuple[dict, dict, dict]:
    """``(state, cross_state, assignments)`` of a saved network, keyed as :func:`to_bundle` keys them; shapes are
    checked against ``configs``; an assignment not saved yet is None."""
    state, assignments = {}, {}
    for name, cfg in configs.items():
        ap = _names(name)[1]
        w = bundle.arrays[f"{ap}input_exc.w"].T  # (n_input, n_exc), the engine's order
        if w.shape != (cfg.n_input, cfg.n_exc):
            raise ValueError(
                f"bundle holds a {w.shape[0]}x{w.shape[1]} network{f' {name!r}' if name else ''}, "
                f"config asks for {cfg.n_input}x{cfg.n_exc}"
            )
        state[name] = {
            "w": np.ascontiguousarray(w),
            "alive": np.ascontiguousarray(bundle.arrays[f"{ap}input_exc.alive"].T.astype(bool)),
            "theta": bundle.arrays[f"{ap}exc.theta_mV"].copy(),
        }
        assignments[name] = bundle.arrays.get(f"{ap}exc.assignment")
    cross_state = {
        p.name: {
            "w": np.ascontiguousarray(bundle.arrays[f"{p.name}.w"].T),
            "alive": np.ascontiguousarray(bundle.arrays[f"{p.name}.alive"].T.astype(bool)),
        }
        for p in bundle.projections
        if "_to_" in p.name
    }
    return state, cross_state, assignments

"""The multimodal STDP network (thesis part 2) as a bioSNN bundle and from one.

Two Diehl & Cook ensembles (``image``, ``audio``; built by :class:`bioSNN.brian.network.EnsembleNetwork`) whose
excitatory populations are joined by plastic cross-modal synapses. Each ensemble is stored exactly like
:mod:`bioSNN.models.diehl_cook` with its name as a prefix (``image_input``, ``image_exc``, arrays
``image.input_exc.w`` ...), the cross-modal projections as dense ``(n_exc_src, n_exc_dst)`` arrays
``image_to_audio.w`` / ``.alive`` with their gain.
"""

from __future__ import annotations

import numpy as np

from bioSNN import io
from bioSNN.brian.network import CrossConfig, DiehlCookConfig

from . import diehl_cook

__all__ = ["to_bundle", "state_from_bundle"]


def to_bundle(configs: dict[str, DiehlCookConfig], state: dict, cross_state: dict, cross: CrossConfig | None,
              assignments: dict | None = None, device: dict | None = None, **kwargs) -> io.Bundle:
    pops, projs, arrays = [], [], {}
    for name, cfg in configs.items():
        st = state[name]
        b = diehl_cook.to_bundle(cfg, st["w"], st["alive"], st["theta"], (assignments or {}).get(name))
        pops += [io.Population(f"{name}_{p.name}", p.size, p.model, p.params) for p in b.populations]
        projs += [io.Projection(f"{name}_{p.name}", f"{name}_{p.source}", f"{name}_{p.target}", f"{name}.{p.weights}",
                                p.connectivity, p.params) for p in b.projections]
        arrays.update({f"{name}.{k}": v for k, v in b.arrays.items()})
    for key, st in cross_state.items():
        src, dst = key.split("_to_")
        arrays[f"{key}.w"], arrays[f"{key}.alive"] = np.asarray(st["w"], np.float64), np.asarray(st["alive"], bool)
        params = {"gain": {"value": cross.gain if cross else 0.0, "unit": "1"},
                  "stdp": {"value": cross.stdp.to_dict() if cross else {}, "unit": ""}}
        projs.append(io.Projection(key, f"{src}_exc", f"{dst}_exc", f"{key}.w", params=params))
    return io.Bundle(pops, projs, arrays, engine="brian2", name="multimodal_stdp", device=device, **kwargs)


def state_from_bundle(bundle: io.Bundle, configs: dict[str, DiehlCookConfig]) -> tuple[dict, dict, dict]:
    """``(state, cross_state, assignments)`` of a saved network, shapes checked against ``configs``."""
    state, assignments = {}, {}
    for name, cfg in configs.items():
        sub = io.Bundle([], [], {k[len(name) + 1:]: v for k, v in bundle.arrays.items() if k.startswith(name + ".")})
        s = diehl_cook.state_from_bundle(sub, cfg)
        assignments[name] = s.pop("assignment")
        state[name] = s
    cross_state = {}
    for p in bundle.projections:
        if "_to_" in p.name:
            cross_state[p.name] = {"w": bundle.arrays[f"{p.name}.w"].copy(),
                                   "alive": bundle.arrays[f"{p.name}.alive"].astype(bool)}
    return state, cross_state, assignments

"""PyTorch training state ⇄ bioSNN bundle arrays (no pickle anywhere).

The model's weights go into the bundle through the model's own ``to_bundle``; this module adds the optimizer
state (tensors as arrays ``optim.<param>.<key>``, hyper-parameters as JSON) so a killed run resumes exactly.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["optimizer_to_arrays", "optimizer_from_arrays"]

_PREFIX = "optim."


def optimizer_to_arrays(opt: torch.optim.Optimizer) -> tuple[dict[str, np.ndarray], dict]:
    """Split ``opt.state_dict()`` into arrays and a JSON-ready description."""
    sd = opt.state_dict()
    arrays, scalars = {}, {}
    for idx, state in sd["state"].items():
        for k, v in state.items():
            if torch.is_tensor(v):
                arrays[f"{_PREFIX}{idx}.{k}"] = v.detach().cpu().numpy()
            else:
                scalars[f"{idx}.{k}"] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return arrays, {"param_groups": groups, "scalars": scalars}


def optimizer_from_arrays(opt: torch.optim.Optimizer, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Restore what :func:`optimizer_to_arrays` saved into ``opt`` (same parameter layout required)."""
    state: dict[int, dict] = {}
    for key, a in arrays.items():
        if key.startswith(_PREFIX):
            idx, _, name = key[len(_PREFIX):].partition(".")
            state.setdefault(int(idx), {})[name] = torch.from_numpy(np.array(a))
    for key, v in meta.get("scalars", {}).items():
        idx, _, name = key.partition(".")
        state.setdefault(int(idx), {})[name] = v
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        for k, v in g.items():
            if isinstance(v, list) and k != "params":
                g[k] = tuple(v)
        groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": groups})

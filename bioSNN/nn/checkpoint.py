"""PyTorch training state ⇄ bioSNN bundle arrays (no pickle anywhere).

The model's weights go into the bundle through the model's own ``to_bundle``; this module adds what else a
killed run needs to go on exactly where it stopped: the optimizer's state (tensors as arrays
``optim.<param>.<key>``, hyper-parameters as JSON), the learning-rate scheduler's state (JSON: its step count,
milestones and last rates — restored, never replayed, so a rate lowered before the kill is not lowered again)
and the global torch RNG.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

__all__ = [
    "optimizer_to_arrays",
    "optimizer_from_arrays",
    "scheduler_to_json",
    "scheduler_from_json",
    "training_state",
    "restore_training_state",
    "RNG",
]

_PREFIX = "optim."
RNG = "training.torch_rng_state"  # array key of the global torch RNG state


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
            idx, _, name = key[len(_PREFIX) :].partition(".")
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


def _to_json(v, key: str):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, Counter):  # MultiStepLR's milestones: {epoch: how many drops}
        return {"counter": [[_to_json(k, key), n] for k, n in sorted(v.items())]}
    if isinstance(v, (list, tuple)):
        return [_to_json(x, key) for x in v]
    if torch.is_tensor(v) and v.numel() == 1:
        return v.item()
    raise TypeError(
        f"scheduler state {key!r} holds a {type(v).__name__}, which a checkpoint cannot store "
        "without pickle (use a scheduler whose state is numbers and lists, e.g. MultiStepLR)"
    )


def scheduler_to_json(scheduler) -> dict:
    """A learning-rate scheduler's ``state_dict()`` as JSON (numbers, lists and MultiStepLR's milestone
    counter); anything else — e.g. a ``LambdaLR``'s functions — is refused with a TypeError naming the key."""
    return {k: _to_json(v, k) for k, v in scheduler.state_dict().items()}


def scheduler_from_json(scheduler, state: dict) -> None:
    """Load what :func:`scheduler_to_json` wrote into ``scheduler`` (a scheduler of the same kind)."""

    def back(v):
        if isinstance(v, dict) and set(v) == {"counter"}:
            return Counter({int(k): int(n) for k, n in v["counter"]})
        return v

    scheduler.load_state_dict({k: back(v) for k, v in state.items()})


def training_state(opt: torch.optim.Optimizer, scheduler=None) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and JSON of everything besides the model a resumed run needs: optimizer, scheduler, torch RNG."""
    arrays, meta = optimizer_to_arrays(opt)
    arrays[RNG] = torch.get_rng_state().numpy()
    extra = {"optimizer": meta}
    if scheduler is not None:
        extra["scheduler"] = scheduler_to_json(scheduler)
    return arrays, extra


def restore_training_state(
    arrays: dict[str, np.ndarray], extra: dict, opt: torch.optim.Optimizer, scheduler=None, epochs_done: int = 0
) -> None:
    """Put back what :func:`training_state` saved. The optimizer comes back with the learning rate it had at the
    save; the scheduler with its step count. A checkpoint of an older bioSNN has no scheduler state: its
    scheduler is moved to ``epochs_done`` without stepping (the optimizer already holds the lowered rate)."""
    optimizer_from_arrays(opt, arrays, extra["optimizer"])
    if scheduler is not None:
        if "scheduler" in extra:
            scheduler_from_json(scheduler, extra["scheduler"])
        else:
            scheduler.last_epoch = epochs_done
            scheduler._step_count = epochs_done + 1
            scheduler._last_lr = [g["lr"] for g in opt.param_groups]
    if RNG in arrays:  # absent in checkpoints of older bioSNN taken at an epoch boundary
        torch.set_rng_state(torch.from_numpy(np.ascontiguousarray(arrays[RNG], np.uint8)))


def write_checkpoint(
    path, model_bundle, opt: torch.optim.Optimizer, scheduler=None, partial: dict | None = None, **fields
) -> None:
    """One atomic checkpoint file: the model's bundle (``model_bundle``), the training state
    (:func:`training_state`), ``fields`` (epoch, history ...) in its ``extra``, and ``partial``, the running totals
    of an epoch in progress, when given."""
    import dataclasses

    from bioSNN import bundles

    arrays, state = training_state(opt, scheduler)
    extra = {**model_bundle.extra, **fields, **state}
    if partial is not None:
        extra["partial"] = dict(partial)
    bundles.write(
        path, dataclasses.replace(model_bundle, arrays={**model_bundle.arrays, **arrays}, engine="torch", extra=extra)
    )

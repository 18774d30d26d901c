"""``biosnn inspect``: re-simulate a saved network on a few test items and look inside its neurons.

A run folder or bundle is simulated again on the first ``items`` test items of the dataset its bundle names,
with :class:`~bioSNN.monitors.MonitorSpec` s on every population (spikes) and on one population's state
variables (``population``, ``variables``, ``neurons``). The same specs run in either engine:

- a Diehl & Cook network (compression runs): ``torch`` (:class:`~bioSNN.models.diehl_cook.FrozenDiehlCook`) or
  ``brian2`` (:class:`~bioSNN.brian.network.DiehlCookNetwork`, runtime backend); populations ``input``, ``exc``
  (``v``, ``ge``, ``gi``, ``theta``), ``inh`` (``v``, ``ge``, ``gi``);
- a multimodal network (multimodal runs; the run folder's ``config.json`` gives the audio coding): either engine
  (:meth:`~bioSNN.models.diehl_cook.FrozenDiehlCook.coupled`, or
  :class:`~bioSNN.brian.network.EnsembleNetwork` on the runtime backend) on the first clean test pairs;
  populations ``image_exc``, ``audio_inh``, ... as Brian2 names them;
- a PyTorch SpikingNet (demo, hybrid, DIET runs): ``torch``; populations are the activations (``act1``, ...),
  variable ``v``. (Its Brian2 path, :mod:`bioSNN.interop.nir_brian`, records spikes only.)

Writes into ``out`` (default ``inspect-<engine>`` beside the bundle): ``inspect.png`` (rasters, traces, firing rates
and,
for the STDP networks, receptive fields of the traced neurons), ``recording.npz`` (every recording as plain
arrays) and ``inspect.json`` (settings, firing rates per population, spike counts per item).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from .config import ConfigError

log = logging.getLogger(__name__)

__all__ = ["inspect", "resolve"]


def resolve(source: str | Path, variant: str | None = None) -> Path:
    """The bundle of ``source``: a bundle file, a compression run folder (``variants/<variant>/network.npz``,
    default its first variant) or another run folder (its main network)."""
    src = Path(source)
    if src.is_file():
        return src
    if not src.is_dir():
        raise ConfigError(f"{src}: no such run folder or bundle")
    if (src / "variants").is_dir():
        have = sorted(p.parent.name for p in (src / "variants").glob("*/network.npz"))
        if not have:
            raise ConfigError(f"{src}: no finished variant (variants/*/network.npz)")
        # a multimodal run's main network is its multimodal variant
        name = (variant or ("multimodal" if "multimodal" in have else have[0])).replace("+", "_")
        if name not in have:
            raise ConfigError(f"{src}: no variant {variant!r}; finished: {have}")
        return src / "variants" / name / "network.npz"
    if variant:
        raise ConfigError(f"{src}: --variant applies to compression run folders")
    from .runs import main_bundle

    return main_bundle(src)


def inspect(
    source,
    engine: str = "torch",
    population: str | None = None,
    variables: tuple[str, ...] | None = None,
    neurons: tuple[int, ...] = (0, 1, 2),
    items: int = 3,
    out: str | Path | None = None,
    variant: str | None = None,
) -> Path:
    """Simulate ``source`` on ``items`` test items with monitors and write the outputs; returns ``out``."""
    from . import bundles

    if engine not in ("torch", "brian2"):
        raise ConfigError(f"--engine: choose torch or brian2, got {engine!r}")
    if items < 1:
        raise ConfigError(f"--items: at least 1, got {items}")
    if not neurons or min(neurons) < 0:
        raise ConfigError(f"--neurons: indices >= 0, at least one, got {list(neurons)}")
    path = resolve(source, variant)
    b = bundles.read(path)
    multimodal = b.engine == "brian2" and set(b.extra.get("network", {})) != {""}
    dataset = b.provenance.get("dataset")
    if multimodal:
        run_cfg = _multimodal_config(path)
        dataset = f"{run_cfg.image_dataset}+{run_cfg.audio_dataset}"
    elif not dataset:
        raise ConfigError(f"{path}: the bundle names no dataset (provenance.dataset); cannot pick test items")
    out = (
        Path(out)
        if out
        else (path.parent if path.parent.name != "variants" else path.parent.parent) / f"inspect-{engine}"
    )
    log.info("inspect: %s on %d test item(s) of %s in the %s engine ...", path, items, dataset, engine)
    t0 = time.perf_counter()
    if multimodal:
        result = _multimodal(b, run_cfg, engine, population, variables, neurons, items)
    elif b.engine == "brian2":
        result = _diehl_cook(b, dataset, engine, population or "exc", variables, neurons, items)
    else:
        if engine == "brian2":
            raise ConfigError(
                f"{path}: a SpikingNet runs in Brian2 through NIR (biosnn export), which records "
                "spikes only; use --engine torch here"
            )
        result = _spiking_net(b, dataset, population or "act1", variables, neurons, items)
    out.mkdir(parents=True, exist_ok=True)
    recs, summary, fields = result
    arrays = {}
    for spec, rec in recs.items():
        key = f"{spec.population}"
        arrays[f"{key}/spike_t"], arrays[f"{key}/spike_i"] = rec.spike_t, rec.spike_i
        if rec.state:
            arrays[f"{key}/t"] = rec.t
            for v, a in rec.state.items():
                arrays[f"{key}/{v}"] = a
    np.savez_compressed(out / "recording.npz", **arrays)
    summary.update({"source": str(path), "engine": engine, "items": items, "dataset": dataset})
    (out / "inspect.json").write_text(json.dumps(summary, indent=2))
    _figure(out / "inspect.png", recs, summary, fields, neurons)
    log.info("inspect: simulated and drawn in %.0f s", time.perf_counter() - t0)
    return out


def _check_items(items: int, available: int, dataset: str) -> None:
    if items > available:
        raise ConfigError(f"--items: {dataset} has {available} test items, got {items}")


def _state_spec(population, variables, allowed):
    if population not in allowed:
        raise ConfigError(f"--population: {population!r} is not one of {sorted(allowed)}")
    variables = tuple(variables) if variables is not None else allowed[population][:3]
    bad = set(variables) - set(allowed[population])
    if bad:
        raise ConfigError(f"--vars: population {population!r} has no {sorted(bad)}; it has {list(allowed[population])}")
    return variables


def _diehl_cook(b, dataset, engine, population, variables, neurons, items):
    from . import data
    from .models.diehl_cook import FrozenDiehlCook

    frozen = FrozenDiehlCook.from_bundle(b)
    cfg = frozen.cfg
    ds = data.load(dataset)
    _check_items(items, len(ds.x_test), dataset)
    x = np.asarray(ds.x_test[:items]).reshape(items, -1)
    if x.shape[1] != cfg.n_input or x.dtype != np.uint8:
        raise ConfigError(f"{dataset} test images ({x.shape[1]} pixels) do not fit the network ({cfg.n_input} inputs)")
    return _stdp(b, frozen, {"": x}, engine, population, variables, neurons, items)


def _stdp(b, frozen, stimuli: dict, engine, population, variables, neurons, items):
    """Monitors on every population of a saved STDP network (one unnamed ensemble, or named ensembles joined by
    cross-modal synapses), ``stimuli[name][:items]`` shown in ``engine``: ``(recordings, summary, fields)``."""
    from .brian import bundle as brian_bundle
    from .monitors import MonitorSpec

    names, allowed, cfg = frozen.names, frozen.monitorable, frozen.cfg
    variables = _state_spec(population, variables, allowed)
    if population.endswith("input") and variables:
        raise ConfigError("--vars: an input population has spikes only")
    ens = next(x for x in frozen.ens if population.startswith(x.prefix))
    size = ens.cfg.n_input if population.endswith("input") else ens.cfg.n_exc
    if max(neurons) >= size or min(neurons) < 0:
        raise ConfigError(
            f"--neurons: {population} has {size} neurons, so indices must lie in [0, {size}); got {list(neurons)}"
        )
    window = items * (cfg.max_repeats + 1) * cfg.t_slot
    specs = {
        p: MonitorSpec(
            p,
            variables if p == population else (),
            tuple(neurons) if p == population else (0,),
            dt_ms=cfg.dt,
            spikes=True,
            keep_ms=window,
        )
        for p in allowed
    }
    shown = {n: stimuli[n][:items] for n in names}
    if engine == "torch":
        import torch

        r = frozen.present(
            shown if frozen.coupled_net else shown[""],
            monitors=tuple(specs.values()),
            generator=torch.Generator().manual_seed(0),
        )
        counts = r.counts if frozen.coupled_net else {"": r.counts}
        repeats, recs = r.repeats, {s: r.recordings[s] for s in specs.values()}
    else:
        from .brian.backend import Backend, backend
        from .brian.network import CrossConfig, EnsembleNetwork

        configs = {x.name: _short(x.cfg, items) for x in frozen.ens}
        state, cross_state, _ = brian_bundle.state_from_bundle(b, configs)
        with backend(Backend("numpy")):
            bn = EnsembleNetwork(
                {n: (configs[n], shown[n]) for n in names},
                Backend("numpy"),
                monitors=tuple(specs.values()),
                cross=CrossConfig(gain=frozen.cross_gain) if cross_state else None,
            )
            for n in names:
                bn.state[n].update(state[n])
            for k, v in cross_state.items():
                bn.cross_state[k].update(v)
            p = bn.present({n: np.arange(items) for n in names}, plastic=False, progress=False)
        counts, repeats, recs = p.counts, p.repeats, {s: bn.recordings[s] for s in specs.values()}
    t_end = (items + int(repeats.sum())) * cfg.t_slot  # the slots the items took
    sizes = {
        f"{x.prefix}{pop}": (x.cfg.n_input if pop == "input" else x.cfg.n_exc)
        for x in frozen.ens
        for pop in ("input", "exc", "inh")
    }
    rates = {s.population: len(recs[s].spike_t) / sizes[s.population] / (t_end * 1e-3) for s in specs.values()}
    side = int(round(math.sqrt(ens.cfg.n_input)))
    fields = (
        ens.w.cpu().numpy()[:, list(neurons)].T.reshape(len(neurons), side, side)
        if population == f"{ens.prefix}exc" and side * side == ens.cfg.n_input
        else None
    )
    summary = {
        "network": "diehl_cook",
        "population": population,
        "variables": list(variables),
        "neurons": list(neurons),
        "rates_hz": rates,
        "simulated_ms": t_end,
    }
    if frozen.coupled_net:
        summary.update(
            ensembles=names,
            cross_gain=frozen.cross_gain,
            exc_spikes_per_item={n: counts[n].sum(1).tolist() for n in names},
        )
    else:
        summary.update(n_exc=cfg.n_exc, exc_spikes_per_item=counts[""].sum(1).tolist())
    return recs, summary, fields


def _short(cfg, items: int):
    """``cfg`` with chunks no longer than ``items`` items can take (each at most ``max_repeats + 1`` slots): a
    Brian2 chunk simulates all its slots, and a run's chunk (1,000 slots at full scale) would run ~8 minutes of
    numpy for one test item."""
    import dataclasses

    return dataclasses.replace(cfg, chunk=min(cfg.chunk, items * (cfg.max_repeats + 1) + 1))


def _multimodal_config(path: Path):
    """The multimodal run config of the run folder holding bundle ``path`` (``RUN/variants/<v>/network.npz``): its
    audio coding (mel bands, frames, dB range, ON/OFF statistics of the training set) decides the test inputs."""
    from .config import apply_overrides
    from .experiments import multimodal  # the run's own config class and stimulus preparation
    from .runs import read_run_config

    run_dir = path.resolve().parent.parent.parent
    try:
        saved = read_run_config(run_dir, "multimodal")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: a multimodal network is inspected from its run folder (RUN/variants/<variant>/"
            "network.npz beside RUN/config.json), whose audio coding gives the test inputs"
        ) from None
    return apply_overrides(multimodal.Config(), saved["config"])


def _multimodal(b, run_cfg, engine, population, variables, neurons, items):
    from .experiments import multimodal
    from .models.diehl_cook import FrozenDiehlCook

    frozen = FrozenDiehlCook.from_bundle(b)
    d = multimodal.prepare(run_cfg)
    img_ids, aud_ids = d["conditions"]["clean"]
    if items > len(img_ids):
        raise ConfigError(f"--items: at most {len(img_ids)} test pairs")
    stimuli = {"image": d["images"][img_ids[:items]], "audio": d["audio"][aud_ids[:items]]}
    recs, summary, fields = _stdp(
        b,
        frozen,
        {n: stimuli[n] for n in frozen.names},
        engine,
        population or f"{frozen.names[0]}_exc",
        variables,
        neurons,
        items,
    )
    summary["labels"] = np.asarray(d["test_labels"][:items]).tolist()
    return recs, summary, fields


def _spiking_net(b, dataset, population, variables, neurons, items):
    import torch

    from . import data
    from .models.from_bundle import network_from_bundle
    from .monitors import MonitorSpec
    from .nn.train import to_tensor_images

    run = b.extra.get("run")
    if not run:
        raise ConfigError("the bundle records no run settings (extra.run: time steps, encoder)")
    net = network_from_bundle(b).eval()
    names = [net.name_of(a) for a in net.activations()]
    variables = _state_spec(population, variables, {n: ("v",) for n in names})
    size = next((p.size for p in b.populations if p.name == population), None)
    if size is not None and max(neurons) >= size:
        raise ConfigError(
            f"--neurons: {population} has {size} neurons, so indices must lie in [0, {size}); got {max(neurons)}"
        )
    T, encoder, step_ms = int(run["time_steps"]), run["encoder"], float(run.get("dt", 1e-3)) * 1e3
    ds = data.load(dataset)
    _check_items(items, len(ds.x_test), dataset)
    x = to_tensor_images(np.asarray(ds.x_test[:items]))
    window = items * T * step_ms
    recs = {
        n: MonitorSpec(
            n,
            variables if n == population else (),
            tuple(neurons) if n == population else (0,),
            dt_ms=step_ms,
            spikes=True,
            keep_ms=window,
        )
        for n in names
    }
    from .monitors import Recording

    merged = {s: Recording(s) for s in recs.values()}
    per_item, sizes = [], {}
    with torch.no_grad():
        for k in range(items):  # one item at a time: a recording follows the batch's first sample
            o = net.snn(
                x[k : k + 1],
                T,
                encoder,
                monitors=tuple(recs.values()),
                step_ms=step_ms,
                record=True,
                generator=torch.Generator().manual_seed(k),
            )
            for s, r in o.recordings.items():
                merged[s].append(r.t, r.state, r.spike_i, r.spike_t, k * T * step_ms * 1e-3)
            per_item.append(int(o.logits.argmax(1)[0]))
            sizes = {n: int(v[0, 0].numel()) for n, v in o.spikes.items()}
    rates = {s.population: len(merged[s].spike_t) / sizes[s.population] / (items * T) for s in recs.values()}
    summary = {
        "network": "spiking_net",
        "time_steps": T,
        "encoder": encoder,
        "population": population,
        "variables": list(variables),
        "neurons": list(neurons),
        "spikes_per_neuron_per_step": rates,
        "predictions": per_item,
        "labels": np.asarray(ds.y_test[:items]).tolist(),
    }
    return merged, summary, None


def _figure(path: Path, recs: dict, summary: dict, fields, neurons) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pops = [s for s in recs if len(recs[s].spike_t) or not recs[s].state]
    traced = [s for s in recs if recs[s].state]
    nvars = sum(len(recs[s].state) for s in traced)
    rows = len(pops) + nvars + 1
    fig = plt.figure(figsize=(9, 1.6 * rows + (1.6 if fields is not None else 0)))
    grid = fig.add_gridspec(rows + (1 if fields is not None else 0), 1)
    ax0 = None
    for k, s in enumerate(pops):
        ax = fig.add_subplot(grid[k], sharex=ax0)
        ax0 = ax0 or ax
        r = recs[s]
        ax.plot(r.spike_t, r.spike_i, "|", ms=3, color="k")
        ax.set_ylabel(f"{s.population}\nneuron", fontsize=8)
    k = len(pops)
    unit = {"v": (1e3, "mV"), "theta": (1e3, "mV")}
    for s in traced:
        r = recs[s]
        for var, a in r.state.items():
            ax = fig.add_subplot(grid[k], sharex=ax0)
            scale, u = unit.get(var, (1.0, "")) if summary["network"] == "diehl_cook" else (1.0, "")
            for row, n in zip(a, neurons):
                ax.plot(r.t, row * scale, lw=0.7, label=f"neuron {n}")
            ax.set_ylabel(f"{s.population}.{var}\n{u}", fontsize=8)
            ax.legend(fontsize=6, loc="upper right")
            k += 1
    if k:
        fig.axes[-1].set_xlabel("time (s)", fontsize=8)
    if ax0 is not None:
        where = "/".join(Path(summary["source"]).parts[-3:])
        ax0.set_title(f"{where} ({summary['engine']}, {summary['items']} test items)", fontsize=8)
    ax = fig.add_subplot(grid[k])
    rates = summary.get("rates_hz") or summary.get("spikes_per_neuron_per_step")
    ax.bar(list(rates), list(rates.values()), color="0.4")
    ax.set_yscale("log")
    ax.set_ylabel("Hz" if "rates_hz" in summary else "spikes/neuron/step", fontsize=8)
    ax.set_title("firing rate per population", fontsize=8)
    if fields is not None:
        sub = grid[k + 1].subgridspec(1, len(fields))
        for j, f in enumerate(fields):
            a = fig.add_subplot(sub[j])
            a.imshow(f, cmap="hot_r")
            a.set_xticks([]), a.set_yticks([])
            a.set_title(f"field of neuron {neurons[j]}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)

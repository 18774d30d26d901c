"""Thesis part 1: Diehl & Cook network with power-law STDP, pruned and quantized during training.

For each *variant* (``full``, ``pruned``, ``q<bits>``, ``pruned+q<bits>``) one network is trained with the same
seed and data, compressed every ``interval`` images as the variant says, labelled on training images with
weights frozen, and tested. The run folder gets ``metrics.json`` (one row per variant: accuracy, synapses
kept, bits, energy and area relative to the full network), receptive fields, accuracy-vs-images curves and the
accuracy-vs-compression plots, plus a bundle per variant. Variants run in ``workers`` parallel processes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from bioSNN import bundles, data, viz
from bioSNN.atomic import write_json
from bioSNN.brian import compression, readout
from bioSNN.brian.backend import Backend, BackendName, backend
from bioSNN.brian.network import DiehlCookConfig, DiehlCookNetwork
from bioSNN.brian.training import RunningCurve, STDPTraining, previous_result
from bioSNN.config import ConfigError, validate
from bioSNN.data import DatasetName
from bioSNN.models.diehl_cook import FrozenDiehlCook
from bioSNN.monitors import MonitorSpec
from bioSNN.runs import map_in_workers

log = logging.getLogger(__name__)

SUMMARY = "Diehl&Cook STDP network (Brian2): power-law STDP, pruning + conductance quantization during training"


@dataclass(frozen=True)
class Config:
    dataset: DatasetName = "mnist"  # image dataset of bioSNN.data; 'digits' is the embedded default
    n_train: int = 60000  # training images per epoch (0 = all)
    epochs: int = 1
    n_label: int = 10000  # training images (the last ones of the set) used to assign labels
    n_test: int = 10000  # test images (0 = all)
    variants: tuple[str, ...] = ("full", "pruned", "q1", "q2", "q3", "q4", "pruned+q2")
    prune_threshold: float = 0.02  # weight below which a synapse is pruned
    interval: int = 1000  # images between compression steps
    start: int = 5000  # images before the first compression step
    reference_bits: int = 8  # precision of the full network in the area model
    zero_level: bool | None = None  # is one device state weight 0? None: only without pruning (compression.py)
    column_levels: bool = True  # quantize per neuron: own levels, one read-out gain each (compression.py)
    snap_to_absent: bool = True  # pruned + quantized: prune weights nearer 0 than the lowest state (compression.py)
    # carry each quantization step's rounding error into the next, so small (e.g. annealed) STDP changes add up
    # instead of being snapped back every interval (compression.py)
    error_feedback: bool = True
    # STDP annealing: the learning rate's multiplier falls geometrically from 1 (first image) to eta_end (last
    # image of the last epoch), updated every chunk; 1 keeps the rule's rate constant (Diehl & Cook)
    eta_end: float = 1.0
    network: DiehlCookConfig = field(default_factory=DiehlCookConfig)
    backend: BackendName = "cpp_standalone"
    # the engine that labels and tests the trained network: 'torch' (bioSNN.models.diehl_cook, the same equations
    # and time step, many images side by side) or 'brian2' (the training backend, one image after another)
    test_engine: Literal["torch", "brian2"] = "torch"
    # torch: images presented side by side in independent runs from the initial state (0: one run per
    # network.chunk images, as many fresh starts as the Brian2 engine makes)
    test_streams: int = 0
    workers: int = 2  # variants trained in parallel processes
    curve_block: int = 1000  # block size of the accuracy-vs-images curve
    monitor: bool = False  # record the first seconds of training (rasters, v and theta traces) of one variant
    monitor_neurons: int = 3  # excitatory neurons whose v, theta, ge are traced
    seed: int = 0

    RULES: ClassVar[dict] = {
        "n_train": ">=0",
        "epochs": ">=1",
        "n_label": ">=1",
        "n_test": ">=0",
        "prune_threshold": ">=0",
        "interval": ">=1",
        "start": ">=0",
        "reference_bits": "[1,32]",
        "eta_end": "(0,1]",
        "workers": ">=1",
        "curve_block": ">=1",
        "monitor_neurons": ">=0",
        "seed": ">=0",
        "test_streams": ">=0",
    }

    def cross_check(self) -> None:
        if not self.variants:
            raise ConfigError("variants: name at least one variant (full, pruned, q<bits>, pruned+q<bits>)")
        if len(set(self.variants)) != len(self.variants):
            raise ConfigError(f"variants: each variant once, got {list(self.variants)}")
        for v in self.variants:
            try:
                compression_for(v, self)
            except ValueError as e:
                raise ConfigError(f"variants: {e}") from None
        if self.n_train and self.n_label > self.n_train:
            raise ConfigError(f"n_label: at most n_train ({self.n_train}), got {self.n_label}")


# a resumed run may train more epochs (from its checkpoints) and use other worker counts; nothing else
RESUMABLE: tuple[str, ...] = ("epochs", "workers")

PRESETS = {
    # a few minutes on 2 cores, embedded digits (8x8): a smoke run of the whole pipeline
    "quick": {
        "dataset": "digits",
        "n_train": 0,
        "epochs": 3,
        "n_label": 1347,
        "n_test": 0,
        "variants": ("full", "pruned+q2"),
        "interval": 300,
        "start": 600,
        "curve_block": 300,
        "monitor": True,
        "network": {"n_input": 64, "n_exc": 50, "w_sum": 12.8, "max_rate": 255.0, "chunk": 300},
    },
    # MNIST, N = 400, one epoch; power-law STDP with its defaults (all-spikes trace, eta = 0.003: the best of a
    # reduced-scale sweep, see the README), annealed to eta/10 over the epoch (85.8 % instead of 79.6 %)
    "full": {"n_train": 60000, "epochs": 1, "eta_end": 0.1, "network": {"n_exc": 400}},
}


def compression_for(variant: str, cfg: Config) -> compression.CompressionConfig:
    return compression.CompressionConfig.from_variant(
        variant,
        cfg.prune_threshold,
        cfg.interval,
        cfg.start,
        cfg.reference_bits,
        cfg.zero_level,
        cfg.column_levels,
        cfg.snap_to_absent,
        cfg.error_feedback,
    )


def load_images(cfg: Config):
    ds = data.load(cfg.dataset)
    if not isinstance(ds, data.ImageData) or ds.x_train.ndim != 3:
        raise ValueError(f"compression needs a grey-scale image dataset, {cfg.dataset!r} is not one")
    n_tr = cfg.n_train or len(ds.x_train)
    n_te = cfg.n_test or len(ds.x_test)
    if n_tr > len(ds.x_train) or n_te > len(ds.x_test) or cfg.n_label > n_tr:
        raise ValueError(
            f"{cfg.dataset} has {len(ds.x_train)} train / {len(ds.x_test)} test images; asked for "
            f"n_train={n_tr}, n_test={n_te}, n_label={cfg.n_label} (<= n_train)"
        )
    x = np.concatenate([ds.x_train[:n_tr], ds.x_test[:n_te]]).reshape(n_tr + n_te, -1)
    if x.shape[1] != cfg.network.n_input:
        raise ValueError(f"{cfg.dataset} images have {x.shape[1]} pixels, network.n_input is {cfg.network.n_input}")
    return ds, x, ds.y_train[:n_tr], ds.y_test[:n_te], n_tr


def train_variant(cfg: Config, variant: str, out: Path, progress: bool = False) -> dict:
    """Train, label and test one variant in ``out``; resumes from ``out/checkpoint.npz`` (see
    :class:`bioSNN.brian.training.STDPTraining`), returns at once when the variant has finished before."""
    out.mkdir(parents=True, exist_ok=True)
    if (prev := previous_result(out, cfg.epochs)) is not None:
        return prev
    comp = compression_for(variant, cfg)
    ds, x, y_tr, y_te, n_tr = load_images(cfg)
    net_cfg = dataclasses.replace(cfg.network, seed=cfg.seed)
    n_classes = ds.n_classes
    monitors = ()
    if cfg.monitor and variant == cfg.variants[0]:
        keep = 10 * net_cfg.t_slot
        monitors = (
            MonitorSpec("input", spikes=True, keep_ms=keep),
            MonitorSpec(
                "exc",
                ("v", "theta", "ge"),
                tuple(range(min(cfg.monitor_neurons, net_cfg.n_exc))),
                dt_ms=1.0,
                spikes=True,
                keep_ms=keep,
            ),
        )
    be = Backend.for_run(cfg.backend, out)
    with backend(be):
        net = DiehlCookNetwork(net_cfg, x, be, monitors=monitors)
        training = STDPTraining(
            net,
            comp,
            out / "checkpoint.npz",
            cfg.eta_end,
            RunningCurve(cfg.curve_block, n_classes),
            bundles.provenance(cfg.dataset, cfg.seed, variant=variant),
        )
        rng = np.random.default_rng(cfg.seed)
        orders = [rng.permutation(n_tr) for _ in range(cfg.epochs)]

        def draw(net):  # the recording window closed in the first chunk
            if monitors and not (out / "dynamics.png").exists():
                _dynamics_figure(out / "dynamics.png", net, net_cfg)

        training.train(
            [{"": o} for o in orders], [y_tr[o] for o in orders], progress, f"{variant} epoch {{epoch}}", draw
        )
        # label on the last n_label training images, then test; weights and theta frozen
        label_ids = np.arange(n_tr - cfg.n_label, n_tr)
        lab, test = label_and_test(
            cfg, net_cfg, net.w, net.state[""]["theta"], x, label_ids, np.arange(n_tr, len(x)), net, progress, variant
        )
        assign = readout.assign_labels(lab.counts, y_tr[label_ids], n_classes)
        pred = readout.predict(test.counts, assign, n_classes)
        acc = float((pred == y_te).mean())
        bundles.write(out / "network.npz", training.bundle({"": assign}))

    cost = compression.cost_report(
        x[n_tr:], net.alive, comp.bits, net_cfg.max_rate, net_cfg.t_present * 1e-3, comp.reference_bits
    )
    side = int(round(np.sqrt(net_cfg.n_input)))
    curve = training.curve
    result = {
        "variant": variant,
        "accuracy": acc,
        "epochs": cfg.epochs,
        "images_seen": int(training.progress["seen"]),
        **cost,
        "confusion": readout.confusion(y_te, pred, n_classes).tolist(),
        "curve": {"images": curve.images, "accuracy": curve.accuracy, "from_image": 0},
        "mean_repeats_train": curve.mean_repeats,
        "unassigned_neurons": int((assign < 0).sum()),
        "receptive_field_copies": readout.field_copies(net.w),
        "test_spikes_per_image": float(test.counts.sum(1).mean()),
        "test_engine": cfg.test_engine,
        "sim_seconds": {"test": test.seconds, "label": lab.seconds},
        "build_seconds": net.build_seconds,
        "test_images_per_second": len(pred) / test.seconds if test.seconds else None,
        "wall_seconds": training.seconds(),  # every segment up to its last checkpoint
    }
    np.save(out / "receptive_fields.npy", net.w.T.reshape(net_cfg.n_exc, side, side).astype(np.float32))
    write_json(out / "result.json", result)
    return result


def label_and_test(
    cfg: Config,
    net_cfg: DiehlCookConfig,
    w: np.ndarray,
    theta: np.ndarray,
    images: np.ndarray,
    label_ids,
    test_ids,
    brian_net: DiehlCookNetwork | None = None,
    progress: bool = False,
    name: str = "",
):
    """The labelling and test presentations of a trained network (``w`` ``(n_input, n_exc)``, ``theta`` in mV)
    in ``cfg.test_engine``; each returns ``counts``, ``repeats`` and the ``seconds`` it simulated. The Brian2
    engine presents through ``brian_net`` (holding this state); the torch engine draws its input spikes from
    generators seeded by ``cfg.seed`` and the phase, so a rerun gives the same responses."""
    log.info(
        "%s: labelling on %d and testing on %d images (%s engine)",
        name or "network",
        len(label_ids),
        len(test_ids),
        cfg.test_engine,
    )
    if cfg.test_engine == "brian2":
        if brian_net is None:
            raise ValueError("test_engine 'brian2' presents through a built DiehlCookNetwork (brian_net)")
        return tuple(
            brian_net.present(ids, plastic=False, progress=progress, desc=f"{name} {phase}")
            for phase, ids in (("labelling", label_ids), ("test", test_ids))
        )
    frozen = FrozenDiehlCook(net_cfg, w, theta)
    # variants run side by side in worker processes: share the cores between them (oversubscribed OpenMP threads
    # spin at every slot's end)
    threads = max(1, (os.cpu_count() or 1) // max(1, min(cfg.workers, len(cfg.variants))))
    out = []
    for phase, ids in enumerate((label_ids, test_ids)):
        streams = cfg.test_streams or -(-len(ids) // net_cfg.chunk)
        start = time.perf_counter()
        r = frozen.present(
            images,
            ids,
            streams=streams,
            generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + phase),
            threads=threads,
        )
        out.append(types.SimpleNamespace(counts=r.counts, repeats=r.repeats, seconds=time.perf_counter() - start))
    return tuple(out)


def _worker(args):
    cfg_dict, variant, out = args
    from bioSNN.config import apply_overrides

    return train_variant(apply_overrides(Config(), cfg_dict), variant, Path(out))


def run(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    validate(cfg)  # fail before any training (the CLI has checked already; callers from Python may not have)
    jobs = [(dataclasses.asdict(cfg), v, str(run_dir / "variants" / v.replace("+", "_"))) for v in cfg.variants]
    if cfg.workers > 1 and len(jobs) > 1:
        # workers die with this process (a kill of the run must not leave them writing checkpoints)
        results = map_in_workers(_worker, jobs, cfg.workers)
    else:
        results = [train_variant(cfg, v, Path(o), progress) for _, v, o in jobs]
    _figures(run_dir, results)
    first = run_dir / "variants" / cfg.variants[0].replace("+", "_") / "dynamics.png"
    if first.exists():
        (run_dir / "dynamics.png").write_bytes(first.read_bytes())
    table = {
        r["variant"]: {
            k: r[k]
            for k in (
                "accuracy",
                "synapses_kept",
                "fraction_pruned",
                "bits_per_synapse",
                "energy_vs_full",
                "area_vs_full",
                "test_images_per_second",
            )
        }
        for r in results
    }
    for r in results:
        log.info(
            "%10s: accuracy %.4f  synapses kept %d (%.1f %%)  bits %s  energy x%.2f  area x%.3f",
            r["variant"],
            r["accuracy"],
            r["synapses_kept"],
            100 * (1 - r["fraction_pruned"]),
            r["bits_per_synapse"],
            r["energy_vs_full"],
            r["area_vs_full"],
        )
    main = next((r for r in results if r["variant"] == "full"), results[0])
    return {
        "accuracy": main["accuracy"],
        "main_variant": main["variant"],
        "variants": table,
        "details": {
            r["variant"]: {
                k: r[k]
                for k in (
                    "curve",
                    "confusion",
                    "mean_repeats_train",
                    "unassigned_neurons",
                    "test_spikes_per_image",
                    "build_seconds",
                    "wall_seconds",
                )
            }
            for r in results
        },
        "cost_model": compression.COST_MODEL,
    }


def _figures(run_dir: Path, results: list[dict], receptive_fields: bool = True):
    for r in results if receptive_fields else ():
        rf = np.load(run_dir / "variants" / r["variant"].replace("+", "_") / "receptive_fields.npy")
        fig = viz.figure(figsize=(8, 8))[0]
        fig.clf()
        viz.plot_tiles(fig, rf)
        fig.suptitle(f"input weights ({r['variant']}, accuracy {100 * r['accuracy']:.1f} %)")
        viz.save(fig, run_dir / f"receptive_fields_{r['variant'].replace('+', '_')}.png", dpi=80)
    fig, axes = viz.figure(1, 3, figsize=(15, 4), gridspec_kw={"wspace": 0.35})
    viz.plot_curves(
        axes[0],
        {r["variant"]: (r["curve"]["images"], r["curve"]["accuracy"]) for r in results},
        "training images seen",
        "accuracy (next block)",
        "accuracy vs images seen"
        + (" (since the resume)" if any(r["curve"].get("from_image") for r in results) else ""),
    )
    for r in results:
        axes[1].scatter(r["fraction_pruned"], r["accuracy"], label=r["variant"])
        axes[2].scatter(r["bits_per_synapse"], r["accuracy"], label=r["variant"])
    axes[1].set(xlabel="fraction of synapses pruned", ylabel="test accuracy", title="accuracy vs pruning")
    axes[2].set(xlabel="bits per synapse", ylabel="test accuracy", title="accuracy vs bits")
    for ax in axes[1:]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    viz.save(fig, run_dir / "compression.png")
    main = next((r for r in results if r["variant"] == "full"), results[0])
    fig, ax = viz.figure(figsize=(4.5, 4))
    viz.plot_confusion(ax, np.array(main["confusion"]), title=f"confusion ({main['variant']})")
    viz.save(fig, run_dir / "confusion.png")


def _dynamics_figure(path: Path, net: DiehlCookNetwork, cfg: DiehlCookConfig):
    """Input and excitatory rasters, membrane potential and adaptive threshold of the first images."""
    recs = {spec.population: rec for spec, rec in net.recordings.items()}
    inp, exc = recs["input"], recs["exc"]
    fig, axes = viz.figure(4, 1, figsize=(10, 9), sharex=True, gridspec_kw={"hspace": 0.15})
    axes[0].scatter(inp.spike_t, inp.spike_i, s=1, marker="|", color="k")
    axes[0].set(
        ylabel="input neuron",
        title=f"first presentations of training (slots of {cfg.t_present:g} ms image + {cfg.t_rest:g} ms rest)",
    )
    axes[1].scatter(exc.spike_t, exc.spike_i, s=3, marker="|", color="tab:red")
    axes[1].set(ylabel="excitatory neuron")
    for k, idx in enumerate(exc.spec.indices):
        axes[2].plot(exc.t, exc.state["v"][k] * 1e3, lw=0.6, label=f"v, neuron {idx}")
        axes[3].plot(exc.t, exc.state["theta"][k] * 1e3, lw=0.8, label=f"θ, neuron {idx}")
    axes[2].axhline(cfg.exc.v_threshold, ls=":", color="grey")
    axes[2].set(ylabel="v (mV)")
    axes[3].set(ylabel="θ (mV)", xlabel="time (s)")
    for ax in axes[2:]:
        ax.legend(fontsize=7, loc="upper right")
    for t in np.arange(0, exc.t.max() if exc.t.size else 0, cfg.t_slot * 1e-3):
        for ax in axes:
            ax.axvline(t, color="grey", lw=0.3)
    viz.save(fig, path, dpi=80)

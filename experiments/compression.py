"""Thesis part 1: Diehl & Cook network with power-law STDP, pruned and quantized during training.

For each *variant* (``full``, ``pruned``, ``q<bits>``, ``pruned+q<bits>``) one network is trained with the same
seed and data, compressed every ``interval`` images as the variant says, labelled on training images with
weights frozen, and tested. The run folder gets ``metrics.json`` (one row per variant: accuracy, synapses
kept, bits, energy and area relative to the full network), receptive fields, accuracy-vs-images curves and the
accuracy-vs-compression plots, plus a bundle per variant. Variants run in ``workers`` parallel processes.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import numpy as np

from bioSNN import _atomic as io_atomic
from bioSNN import data, io, viz
from bioSNN.brian import compression, readout
from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.backend import BACKENDS
from bioSNN.config import ConfigError, validate
from bioSNN.data import DATASETS
from bioSNN.brian.network import DiehlCookConfig, DiehlCookNetwork
from bioSNN.brian.stdp import eta_schedule
from bioSNN.monitors import MonitorSpec
from bioSNN.runs import map_in_workers
from bioSNN.models import diehl_cook

SUMMARY = "Diehl&Cook STDP network (Brian2): power-law STDP, pruning + conductance quantization during training"

@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"  # image dataset of bioSNN.data; 'digits' is the embedded default
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
    backend: str = "cpp_standalone"
    workers: int = 2  # variants trained in parallel processes
    curve_block: int = 1000  # block size of the accuracy-vs-images curve
    monitor: bool = False  # record the first seconds of training (rasters, v and theta traces) of one variant
    monitor_neurons: int = 3  # excitatory neurons whose v, theta, ge are traced
    seed: int = 0

    RULES: ClassVar[dict] = {
        "dataset": tuple(DATASETS), "n_train": ">=0", "epochs": ">=1", "n_label": ">=1", "n_test": ">=0",
        "prune_threshold": ">=0", "interval": ">=1", "start": ">=0", "reference_bits": "[1,32]",
        "eta_end": "(0,1]", "backend": BACKENDS, "workers": ">=1", "curve_block": ">=1", "monitor_neurons": ">=0",
        "seed": ">=0"}

    def cross_check(self) -> None:
        if not self.variants:
            raise ConfigError("variants: name at least one variant (full, pruned, q<bits>, pruned+q<bits>)")
        if len(set(self.variants)) != len(self.variants):
            raise ConfigError(f"variants: each variant once, got {list(self.variants)}")
        for v in self.variants:
            try:
                _compression_for(v, self)
            except ValueError as e:
                raise ConfigError(f"variants: {e}") from None
        if self.n_train and self.n_label > self.n_train:
            raise ConfigError(f"n_label: at most n_train ({self.n_train}), got {self.n_label}")


# a resumed run may train more epochs (from its checkpoints) and use other worker counts; nothing else
RESUMABLE: tuple[str, ...] = ("epochs", "workers")

PRESETS = {
    # a few minutes on 2 cores, embedded digits (8x8): a smoke run of the whole pipeline
    "quick": {"dataset": "digits", "n_train": 0, "epochs": 3, "n_label": 1347, "n_test": 0,
              "variants": ("full", "pruned+q2"), "interval": 300, "start": 600, "curve_block": 300, "monitor": True,
              "network": {"n_input": 64, "n_exc": 50, "w_sum": 12.8, "max_rate": 255.0, "chunk": 300}},
    # MNIST, N = 400, one epoch; power-law STDP with its defaults (all-spikes trace, eta = 0.003: the best of a
    # reduced-scale sweep, see the README), annealed to eta/10 over the epoch (85.8 % instead of 79.6 %)
    "full": {"n_train": 60000, "epochs": 1, "eta_end": 0.1, "network": {"n_exc": 400}},
}


RESIDUAL = "input_exc.quantization_residual"  # checkpoint array of error feedback


def _compression_for(variant: str, cfg: Config) -> compression.CompressionConfig:
    return compression.CompressionConfig.from_variant(variant, cfg.prune_threshold, cfg.interval, cfg.start,
                                                      cfg.reference_bits, cfg.zero_level, cfg.column_levels,
                                                      cfg.snap_to_absent, cfg.error_feedback)


def _data(cfg: Config):
    ds = data.load(cfg.dataset)
    if not isinstance(ds, data.ImageData) or ds.x_train.ndim != 3:
        raise ValueError(f"compression needs a grey-scale image dataset, {cfg.dataset!r} is not one")
    n_tr = cfg.n_train or len(ds.x_train)
    n_te = cfg.n_test or len(ds.x_test)
    if n_tr > len(ds.x_train) or n_te > len(ds.x_test) or cfg.n_label > n_tr:
        raise ValueError(f"{cfg.dataset} has {len(ds.x_train)} train / {len(ds.x_test)} test images; asked for "
                         f"n_train={n_tr}, n_test={n_te}, n_label={cfg.n_label} (<= n_train)")
    x = np.concatenate([ds.x_train[:n_tr], ds.x_test[:n_te]]).reshape(n_tr + n_te, -1)
    if x.shape[1] != cfg.network.n_input:
        raise ValueError(f"{cfg.dataset} images have {x.shape[1]} pixels, network.n_input is {cfg.network.n_input}")
    return ds, x, ds.y_train[:n_tr], ds.y_test[:n_te], n_tr


class RunningCurve:
    """D&C's training curve, built as training goes: labels assigned on block b-1 classify block b (no extra
    simulation); each point sits at the number of training images seen after its block.

    Its whole state (the points so far, the last full block and the unfinished one, the repeat totals) goes into
    the checkpoint, so a resumed run draws the same curve as an uninterrupted one."""

    def __init__(self, block: int, n_classes: int):
        self.block, self.n_classes = block, n_classes
        self.images, self.accuracy = [], []
        self.seen = 0  # images in finished blocks
        self.prev: tuple[np.ndarray, np.ndarray] | None = None  # counts and labels of the last finished block
        self.cur_counts, self.cur_labels = None, np.zeros(0, np.int64)
        self.repeats_sum, self.repeats_n = 0, 0

    def add(self, counts: np.ndarray, labels: np.ndarray, repeats: np.ndarray) -> None:
        """Responses of the next training images (in order), their labels and repeats."""
        self.repeats_sum += int(np.sum(repeats))
        self.repeats_n += len(repeats)
        c = counts if self.cur_counts is None else np.concatenate([self.cur_counts, counts])
        lab = np.concatenate([self.cur_labels, labels])
        while len(lab) >= self.block:
            blk = (c[:self.block], lab[:self.block])
            c, lab = c[self.block:], lab[self.block:]
            self.seen += self.block
            if self.prev is not None:
                assign = readout.assign_labels(self.prev[0], self.prev[1], self.n_classes)
                self.accuracy.append(float((readout.predict(blk[0], assign, self.n_classes) == blk[1]).mean()))
                self.images.append(self.seen)
            self.prev = blk
        self.cur_counts, self.cur_labels = c, lab

    @property
    def mean_repeats(self) -> float | None:
        return self.repeats_sum / self.repeats_n if self.repeats_n else None

    _ARRAYS = ("prev_counts", "prev_labels", "cur_counts", "cur_labels")

    def state(self) -> tuple[dict, dict]:
        """(arrays, JSON) for a checkpoint."""
        n_exc = self.prev[0].shape[1] if self.prev is not None else (
            self.cur_counts.shape[1] if self.cur_counts is not None else 0)
        empty = np.zeros((0, n_exc), np.int32)
        arrays = {"prev_counts": self.prev[0] if self.prev else empty,
                  "prev_labels": self.prev[1] if self.prev else np.zeros(0, np.int64),
                  "cur_counts": self.cur_counts if self.cur_counts is not None else empty,
                  "cur_labels": self.cur_labels}
        return ({f"training.curve_{k}": v for k, v in arrays.items()},
                {"images": self.images, "accuracy": self.accuracy, "seen": self.seen, "has_prev": self.prev is not None,
                 "repeats_sum": self.repeats_sum, "repeats_n": self.repeats_n})

    def restore(self, arrays: dict, js: dict) -> None:
        a = {k: arrays[f"training.curve_{k}"] for k in self._ARRAYS}
        self.images, self.accuracy, self.seen = list(js["images"]), list(js["accuracy"]), js["seen"]
        self.prev = (a["prev_counts"], a["prev_labels"]) if js["has_prev"] else None
        self.cur_counts, self.cur_labels = a["cur_counts"], a["cur_labels"]
        self.repeats_sum, self.repeats_n = js["repeats_sum"], js["repeats_n"]


def train_variant(cfg: Config, variant: str, out: Path, progress: bool = False) -> dict:
    """Train, label and test one variant; checkpoints after every chunk in ``out/checkpoint.npz``.

    The checkpoint holds all the state the rest of the run depends on (weights, masks, thresholds, device
    levels, error-feedback remainder, the chunk counter that seeds the simulator's random numbers, the training
    curve, the seconds spent), so a run killed anywhere and resumed ends bit-identical to an uninterrupted one
    (timings aside) on the standalone backends."""
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    done = out / "result.json"
    if done.exists():  # finished before an interruption of the whole run ...
        prev = json.loads(done.read_text())
        if prev.get("epochs", 1) == cfg.epochs:
            return prev
        # ... or a run resumed with more epochs: keep the shorter run's result, train on from its checkpoint
        done.replace(out / f"result_epochs{prev.get('epochs', 1)}.json")
    comp = _compression_for(variant, cfg)
    ds, x, y_tr, y_te, n_tr = _data(cfg)
    net_cfg = dataclasses.replace(cfg.network, seed=cfg.seed)
    be = Backend(cfg.backend, directory=str(out / "brian_project") if cfg.backend.endswith("standalone") else None)
    ckpt = out / "checkpoint.npz"
    n_classes = ds.n_classes
    monitors = ()
    if cfg.monitor and variant == cfg.variants[0]:
        keep = 10 * net_cfg.t_slot
        monitors = (MonitorSpec("input", spikes=True, keep_ms=keep),
                    MonitorSpec("exc", ("v", "theta", "ge"), tuple(range(min(cfg.monitor_neurons, net_cfg.n_exc))),
                                dt_ms=1.0, spikes=True, keep_ms=keep))
    curve = RunningCurve(cfg.curve_block, n_classes)
    with backend(be):
        net = DiehlCookNetwork(net_cfg, x, be, monitors=monitors)
        state = {"epoch": 0, "pos": 0, "seen": 0, "next_compress": comp.start, "chunks": 0, "seconds": 0.0}
        dev, gain, residual = None, None, None
        if ckpt.exists():
            b = io.read(ckpt)
            s = diehl_cook.state_from_bundle(b, net_cfg)
            net.w, net.alive, net.theta = s["w"], s["alive"], s["theta"]
            state = {**state, **b.extra["progress"]}
            dev, gain = b.device, b.arrays.get("input_exc.column_gain")
            residual = b.arrays.get(RESIDUAL)
            net.chunks_run = state["chunks"]
            if "curve" in b.extra:
                curve.restore(b.arrays, b.extra["curve"])
        seconds_before = state["seconds"]

        def save(extra_state):
            c_arrays, c_json = curve.state()
            extra_state = {**extra_state, "chunks": net.chunks_run,
                           "seconds": seconds_before + time.perf_counter() - t0}
            bundle = diehl_cook.to_bundle(net_cfg, net.w, net.alive, net.theta, device=dev, column_gain=gain,
                                          provenance=io.provenance(cfg.dataset, cfg.seed, variant=variant),
                                          extra={"progress": extra_state, "curve": c_json})
            if residual is not None:  # training state of error feedback, not part of the deployed network
                bundle.arrays[RESIDUAL] = residual
            bundle.arrays.update(c_arrays)
            io.write(ckpt, bundle)

        def compress(seen):
            nonlocal dev, gain, residual
            net.w, net.alive, d, g, residual = compression.compress_with_feedback(net.w, net.alive, comp,
                                                                                  net_cfg.w_sum, residual)
            dev, gain = d or dev, g if g is not None else gain

        rng = np.random.default_rng(cfg.seed)
        orders = [rng.permutation(n_tr) for _ in range(cfg.epochs)]
        net.eta_scale = eta_schedule(state["seen"], cfg.epochs * n_tr, cfg.eta_end)
        for epoch in range(state["epoch"], cfg.epochs):
            order = orders[epoch]
            start_pos = state["pos"] if epoch == state["epoch"] else 0

            def on_chunk(done, _epoch=epoch, _start=start_pos, _order=order):
                last = net.last_chunk
                curve.add(last.counts, y_tr[_order[_start + done - len(last.repeats):_start + done]], last.repeats)
                if monitors and not (out / "dynamics.png").exists():  # the recording window closed in chunk 1
                    _dynamics_figure(out / "dynamics.png", net, net_cfg)
                seen = state["seen_at_start"] + done
                if comp.active and seen >= state["next_compress"]:
                    compress(seen)
                    state["next_compress"] = seen + comp.interval
                ended = _start + done == len(_order)  # a finished epoch is saved as the start of the next
                save({"epoch": _epoch + ended, "pos": 0 if ended else _start + done, "seen": seen,
                      "next_compress": state["next_compress"]})
                net.eta_scale = eta_schedule(seen, cfg.epochs * n_tr, cfg.eta_end)

            state["seen_at_start"] = state["seen"]
            net.present(order[start_pos:], plastic=True, on_chunk=on_chunk, progress=progress,
                        desc=f"{variant} epoch {epoch + 1}")
            state["seen"] += len(order) - start_pos
            state["pos"] = 0
        if comp.active:
            compress(state["seen"])  # the deployed network: pruned and on device levels
        # label on the last n_label training images, then test; weights and theta frozen
        label_ids = np.arange(n_tr - cfg.n_label, n_tr)
        lab = net.present(label_ids, plastic=False, progress=progress, desc=f"{variant} labelling")
        assign = readout.assign_labels(lab.counts, y_tr[label_ids], n_classes)
        test = net.present(np.arange(n_tr, len(x)), plastic=False, progress=progress, desc=f"{variant} test")
        pred = readout.predict(test.counts, assign, n_classes)
        acc = float((pred == y_te).mean())
        bundle = diehl_cook.to_bundle(net_cfg, net.w, net.alive, net.theta, assign, device=dev, column_gain=gain,
                                      provenance=io.provenance(cfg.dataset, cfg.seed, variant=variant))
        io.write(out / "network.npz", bundle)
        build_s = net.build_seconds

    cost = compression.cost_report(x[n_tr:], net.alive, comp.bits, net_cfg.max_rate, net_cfg.t_present * 1e-3,
                                   comp.reference_bits)
    side = int(round(np.sqrt(net_cfg.n_input)))
    result = {
        "variant": variant, "accuracy": acc, "epochs": cfg.epochs, "images_seen": int(state["seen"]), **cost,
        "confusion": readout.confusion(y_te, pred, n_classes).tolist(),
        "curve": {"images": curve.images, "accuracy": curve.accuracy, "from_image": 0},
        "mean_repeats_train": curve.mean_repeats,
        "unassigned_neurons": int((assign < 0).sum()),
        "receptive_field_copies": readout.field_copies(net.w),
        "test_spikes_per_image": float(test.counts.sum(1).mean()),
        "sim_seconds": {"test": test.seconds, "label": lab.seconds}, "build_seconds": build_s,
        "test_images_per_second": len(pred) / test.seconds if test.seconds else None,
        "wall_seconds": seconds_before + time.perf_counter() - t0,  # every segment up to its last checkpoint
    }
    np.save(out / "receptive_fields.npy", net.w.T.reshape(net_cfg.n_exc, side, side).astype(np.float32))
    io_atomic.write_json(out / "result.json", result)
    return result


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
    table = {r["variant"]: {k: r[k] for k in ("accuracy", "synapses_kept", "fraction_pruned", "bits_per_synapse",
                                              "energy_vs_full", "area_vs_full", "test_images_per_second")}
             for r in results}
    for r in results:
        print(f"{r['variant']:>10}: accuracy {r['accuracy']:.4f}  synapses kept {r['synapses_kept']}"
              f" ({100 * (1 - r['fraction_pruned']):.1f} %)  bits {r['bits_per_synapse']}"
              f"  energy x{r['energy_vs_full']:.2f}  area x{r['area_vs_full']:.3f}")
    main = next((r for r in results if r["variant"] == "full"), results[0])
    return {"accuracy": main["accuracy"], "main_variant": main["variant"], "variants": table,
            "details": {r["variant"]: {k: r[k] for k in ("curve", "confusion", "mean_repeats_train",
                                                         "unassigned_neurons", "test_spikes_per_image",
                                                         "build_seconds", "wall_seconds")} for r in results},
            "cost_model": compression.__doc__.split("Cost model for the reports")[1].strip()}


def _figures(run_dir: Path, results: list[dict], receptive_fields: bool = True):
    for r in results if receptive_fields else ():
        rf = np.load(run_dir / "variants" / r["variant"].replace("+", "_") / "receptive_fields.npy")
        fig = viz.figure(figsize=(8, 8))[0]
        fig.clf()
        viz.plot_tiles(fig, rf)
        fig.suptitle(f"input weights ({r['variant']}, accuracy {100 * r['accuracy']:.1f} %)")
        viz.save(fig, run_dir / f"receptive_fields_{r['variant'].replace('+', '_')}.png", dpi=80)
    fig, axes = viz.figure(1, 3, figsize=(15, 4), gridspec_kw={"wspace": 0.35})
    viz.plot_curves(axes[0], {r["variant"]: (r["curve"]["images"], r["curve"]["accuracy"]) for r in results},
                    "training images seen", "accuracy (next block)", "accuracy vs images seen"
                    + (" (since the resume)" if any(r["curve"].get("from_image") for r in results) else ""))
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
    axes[0].set(ylabel="input neuron", title="first presentations of training (slots of "
                f"{cfg.t_present:g} ms image + {cfg.t_rest:g} ms rest)")
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

"""Hybrid conversion + STDB (thesis part 3; Rathi, Srinivasan, Panda & Roy, ICLR 2020).

1. Train the ANN (ReLU, no biases, average pooling, dropout).
2. Convert: IF neurons, per-layer thresholds by threshold balancing on training samples (the maximum — or a
   percentile — of each layer's input while the converted network runs, × a scaling factor); evaluate at each
   ``convert_steps`` T.
3. Hybrid: for each ``hybrid_steps`` T, start from the converted network balanced at that T, switch to LIF
   neurons with the STDB surrogate (∂o/∂u = α·exp(−β·Δt), Δt = steps since the last spike) and train for
   ``hybrid_epochs`` with cross-entropy on the accumulated output membrane.

Writes ``metrics.json`` (accuracy per model and T, spike rate per layer, ANN vs SNN compute energy),
``accuracy_vs_t.png``, one bundle per trained network, and an atomic checkpoint after every epoch of every
phase, so ``--resume`` continues where a run stopped. Under ``torchrun`` training is data-parallel
(``torch.distributed``, gloo on CPU / NCCL on GPU); rank 0 writes the results.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from bioSNN import bundles, viz
from bioSNN.atomic import write_json
from bioSNN.nn import distributed as dist
from bioSNN.nn.bundle import load_state, to_bundle
from bioSNN.nn.convert import to_snn
from bioSNN.config import ConfigError
from bioSNN.data import DATASETS
from bioSNN.nn.surrogate import SURROGATES
from bioSNN.nn.train import Checkpoint, augmentation, evaluate, fit, image_tensors, step_schedule
from bioSNN.models import MODELS, build_spiking

SUMMARY = "ANN -> SNN conversion (threshold balancing) + hybrid STDB fine-tuning at few time steps (VGG/ResNet)"


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"  # image dataset of bioSNN.data (mnist, fashion_mnist, cifar10, digits)
    model: str = "vgg5"  # vgg5, vgg9, vgg11, vgg16, resnet20
    width: float = 1.0  # channel multiplier of the model
    hidden: int = 1024  # width of the VGG classifier's hidden layers
    dropout: float = 0.2
    train_limit: int = 0  # first N training images only (0 = all)
    test_limit: int = 0  # first N test images only (0 = all)
    batch_size: int = 64
    # true / "crop_flip": crop (pad 4) + flip (CIFAR); "crop": shifts only (digits); "shift_flip": shifts + flips
    augment: bool | str = False
    ann_bundle: str = ""  # start from this trained ANN (a bioSNN bundle of the same model) instead of training one
    ann_epochs: int = 10
    ann_lr: float = 1e-3  # Adam
    ann_lr_milestones: tuple[float, ...] = ()  # fractions of ann_epochs after which the ANN's rate drops x0.1
    convert_steps: tuple[int, ...] = (25, 50, 100)
    balance_samples: int = 512  # training images used for threshold balancing
    balance_percentile: float = 100.0  # 100 = the maximum input
    convert_scale: float = 0.8  # threshold = scale x statistic, for the converted networks
    convert_test_limit: int = 0  # evaluate conversions on the first N test images (0 = all); large T is slow
    hybrid_steps: tuple[int, ...] = (10, 25)
    hybrid_scale: float = 0.3  # thresholds hybrid training starts from; short windows need low ones (digits: 0.7
    # left T = 5 silent and untrainable in one of two runs, 0.3 gave 90.9 % at T = 5 and 95.1 % at T = 10)
    hybrid_epochs: int = 3
    hybrid_lr: float = 1e-4  # Adam
    hybrid_train_limit: int = 0  # train the hybrid phase on the first N training images (0 = as ANN)
    leak: float = 1.0  # LIF leak during hybrid training (1.0 = IF)
    surrogate: str = "stdb"
    encoder: str = "poisson"  # input coding of the SNN: poisson (signed rate) or direct
    threads: int = 2
    checkpoint_seconds: float = 600.0  # checkpoint inside an epoch this often too (0: after every batch)
    seed: int = 0

    RULES: ClassVar[dict] = {
        "dataset": tuple(DATASETS), "model": MODELS, "width": ">0", "hidden": ">=1", "dropout": "[0,1)",
        "train_limit": ">=0", "test_limit": ">=0", "batch_size": ">=1", "ann_epochs": ">=0", "ann_lr": ">0",
        "ann_lr_milestones": "(0,1]", "balance_samples": ">=1", "hybrid_epochs": ">=0", "hybrid_lr": ">0",
        "threads": ">=1", "checkpoint_seconds": ">=0", "seed": ">=0",
        "convert_steps": ">=1", "balance_percentile": "(0,100]", "convert_scale": ">0", "convert_test_limit": ">=0",
        "hybrid_steps": ">=1", "hybrid_scale": ">0", "hybrid_train_limit": ">=0", "leak": "(0,1]",
        "surrogate": tuple(SURROGATES), "encoder": ("poisson", "direct")}

    def cross_check(self) -> None:
        try:
            augmentation(self.augment)
        except ValueError as e:
            raise ConfigError(f"augment: {e}") from None


# a resumed run may train its phases for more epochs; nothing else
RESUMABLE: tuple[str, ...] = ("checkpoint_seconds", "ann_epochs", "hybrid_epochs")

PRESETS = {
    # a few minutes on 2 cores: the embedded 8x8 digits, a small VGG5
    "quick": {"dataset": "digits", "width": 0.25, "hidden": 128, "ann_epochs": 15, "convert_steps": (10, 25, 50),
              "hybrid_steps": (5, 10), "hybrid_epochs": 3, "hybrid_lr": 5e-4, "balance_samples": 256},
    # MNIST VGG5 as in the issue; hours on 2 cores (see the README for the scale actually run)
    "full": {"dataset": "mnist", "ann_epochs": 10, "ann_lr_milestones": (0.6, 0.8), "convert_steps": (25, 50, 100),
             "hybrid_steps": (10, 25)},
}

def _spec(cfg: Config) -> dict:
    return {"model": cfg.model, "width": cfg.width, "hidden": cfg.hidden, "dropout": cfg.dropout}


def _build(cfg: Config, input_shape, n_classes: int):
    return build_spiking(cfg.model, input_shape, n_classes, cfg.width, cfg.hidden, cfg.dropout)


def run(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    t_start = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    dist.setup()
    torch.manual_seed(cfg.seed)
    if cfg.encoder not in ("poisson", "direct"):
        raise ValueError(f"encoder must be 'poisson' or 'direct', got {cfg.encoder!r}")
    ds, (x_tr, y_tr), (x_te, y_te) = image_tensors(cfg.dataset, cfg.train_limit, cfg.test_limit)
    n_classes = ds.n_classes
    net = _build(cfg, tuple(x_tr.shape[1:]), n_classes)
    prov = bundles.provenance(cfg.dataset, cfg.seed)
    ck = run_dir / "checkpoints"
    ck.mkdir(exist_ok=True)
    results = {"ann": {}, "converted": {}, "hybrid": {}}

    # 1. ANN (trained here, or loaded from a bundle)
    if cfg.ann_bundle:
        load_state(net, bundles.read(cfg.ann_bundle))
        results["ann"] = {**evaluate(net, x_te, y_te).summary(), "source": cfg.ann_bundle}
    else:
        opt = torch.optim.Adam(net.parameters(), lr=cfg.ann_lr)
        ann_hist = fit(net, opt, Checkpoint(ck / "ann.npz", _spec(cfg), prov), (x_tr, y_tr), (x_te, y_te),
                       cfg.ann_epochs, batch_size=cfg.batch_size, augment=cfg.augment, seed=cfg.seed,
                       scheduler=step_schedule(opt, cfg.ann_epochs, cfg.ann_lr_milestones), label="ANN",
                       verbose=progress, checkpoint_seconds=cfg.checkpoint_seconds)
        results["ann"] = {**evaluate(net, x_te, y_te).summary(), "history": ann_hist}
    ann_state = copy.deepcopy(net.state_dict())
    g = torch.Generator().manual_seed(cfg.seed)
    balance = [x_tr[torch.randperm(len(x_tr), generator=g)[:cfg.balance_samples]]]
    x_conv, y_conv = (x_te[:cfg.convert_test_limit], y_te[:cfg.convert_test_limit]) if cfg.convert_test_limit \
        else (x_te, y_te)

    # 2. conversion at each T (rank 0 only: evaluation is not distributed)
    if dist.is_main():
        for t in cfg.convert_steps:
            path = ck / f"converted_T{t}.json"
            if path.exists():
                results["converted"][str(t)] = json.loads(path.read_text())
                continue
            snn = copy.deepcopy(net)
            thr = to_snn(snn, balance, t, cfg.convert_scale, cfg.balance_percentile, cfg.encoder,
                         generator=torch.Generator().manual_seed(cfg.seed))
            r = {**evaluate(snn, x_conv, y_conv, t, cfg.encoder, seed=cfg.seed).summary(), "thresholds": thr,
                 "test_images": len(x_conv)}
            write_json(path, r)
            results["converted"][str(t)] = r
            if progress:
                print(f"converted T={t}: {r['accuracy']:.4f}  spike rate {r['mean_spike_rate']:.3f}", flush=True)

    # 3. hybrid STDB from the network converted at each T
    x_hy, y_hy = (x_tr[:cfg.hybrid_train_limit], y_tr[:cfg.hybrid_train_limit]) if cfg.hybrid_train_limit \
        else (x_tr, y_tr)
    for t in cfg.hybrid_steps:
        snn = _build(cfg, tuple(x_tr.shape[1:]), n_classes)
        snn.load_state_dict(ann_state)
        thr = to_snn(snn, balance, t, cfg.hybrid_scale, cfg.balance_percentile, cfg.encoder,
                     generator=torch.Generator().manual_seed(cfg.seed))
        snn.set_neurons(leak=cfg.leak, surrogate=cfg.surrogate)
        start_acc = evaluate(snn, x_te, y_te, t, cfg.encoder, seed=cfg.seed).accuracy if dist.is_main() else 0.0
        opt = torch.optim.Adam([p for p in snn.parameters() if p.requires_grad], lr=cfg.hybrid_lr)
        hist = fit(snn, opt, Checkpoint(ck / f"hybrid_T{t}.npz", _spec(cfg), prov), (x_hy, y_hy), (x_te, y_te),
                   cfg.hybrid_epochs, t, cfg.encoder, cfg.batch_size, cfg.augment, cfg.seed,
                   label=f"hybrid T={t}", verbose=progress,
                   checkpoint_seconds=cfg.checkpoint_seconds)
        if dist.is_main():
            r = {**evaluate(snn, x_te, y_te, t, cfg.encoder, seed=cfg.seed).summary(), "initial_thresholds": thr,
                 "accuracy_before_training": start_acc, "history": hist}
            results["hybrid"][str(t)] = r
            bundles.write(run_dir / f"hybrid_T{t}.npz", to_bundle(snn, model=_spec(cfg), provenance=prov))
    if not dist.is_main():
        dist.barrier()
        return {"accuracy": 0.0}

    main_t = str(min(cfg.hybrid_steps)) if cfg.hybrid_steps else None
    metrics = {
        "accuracy": results["hybrid"][main_t]["accuracy"] if main_t else results["ann"]["accuracy"],
        "main": f"hybrid T={main_t}" if main_t else "ann",
        "dataset": cfg.dataset, "model": cfg.model, "n_train": len(x_tr), "n_test": len(x_te),
        "table": _table(results), **results,
        "train_seconds": time.perf_counter() - t_start, "world_size": dist.rank_world()[1],
    }
    _figure(run_dir / "accuracy_vs_t.png", results, cfg)
    if progress:
        for row in metrics["table"]:
            print(f"{row['network']:>14}  T={row['T']:>4}  accuracy {row['accuracy']:.4f}  "
                  f"spike rate {row['spike_rate']}  energy ANN/SNN {row['energy_ann_over_snn']}")
    dist.barrier()
    return metrics


def _table(results: dict) -> list[dict]:
    rows = [{"network": "ANN", "T": 0, "accuracy": results["ann"]["accuracy"], "spike_rate": None,
             "energy_ann_over_snn": 1.0}]
    for kind in ("converted", "hybrid"):
        for t, r in sorted(results[kind].items(), key=lambda kv: int(kv[0])):
            rows.append({"network": kind, "T": int(t), "accuracy": r["accuracy"],
                         "spike_rate": round(r["mean_spike_rate"], 4),
                         "energy_ann_over_snn": round(r["energy_ratio_ann_over_snn"], 3)})
    return rows


def _figure(path: Path, results: dict, cfg: Config) -> None:
    fig, axes = viz.figure(1, 2, figsize=(10, 3.8), gridspec_kw={"wspace": 0.35})
    curves = {}
    for kind in ("converted", "hybrid"):
        if results[kind]:
            ts = sorted(results[kind], key=int)
            curves[kind] = ([int(t) for t in ts], [results[kind][t]["accuracy"] for t in ts])
    if results["hybrid"]:  # where STDB started: converted with the hybrid phase's (lower) threshold scale
        ts = sorted(results["hybrid"], key=int)
        curves[f"converted ×{cfg.hybrid_scale:g}, before STDB"] = (
            [int(t) for t in ts], [results["hybrid"][t]["accuracy_before_training"] for t in ts])
    viz.plot_curves(axes[0], curves, "time steps T", "test accuracy", f"{cfg.model} on {cfg.dataset}")
    axes[0].axhline(results["ann"]["accuracy"], color="k", ls="--", lw=1, label="ANN")
    axes[0].legend()
    for kind, marker in (("converted", "o"), ("hybrid", "s")):
        for t, r in sorted(results[kind].items(), key=lambda kv: int(kv[0])):
            rates = r["spike_rate"]
            axes[1].plot(range(len(rates)), list(rates.values()), marker=marker, ms=3, label=f"{kind} T={t}")
            names = list(rates)
    if results["converted"] or results["hybrid"]:
        axes[1].set_xticks(range(len(names)), names, rotation=45, fontsize=7)
    axes[1].set(xlabel="activation layer", ylabel="spikes / neuron / step", title="spike rate per layer")
    axes[1].legend(fontsize=7)
    viz.save(fig, path)

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
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bioSNN import viz
from bioSNN.config import validate
from bioSNN.models import ModelName, build_spiking
from bioSNN.nn.network import Encoder
from bioSNN.nn.pipeline import Pipeline, PipelineConfig
from bioSNN.nn.surrogate import SurrogateName

SUMMARY = "ANN -> SNN conversion (threshold balancing) + hybrid STDB fine-tuning at few time steps (VGG/ResNet)"


@dataclass(frozen=True)
class Config(PipelineConfig):
    model: ModelName = "vgg5"  # vgg5, vgg9, vgg11, vgg16, resnet20
    convert_steps: tuple[int, ...] = (25, 50, 100)
    balance_percentile: float = 100.0  # 100 = the maximum input
    convert_scale: float = 0.8  # threshold = scale x statistic, for the converted networks
    convert_test_limit: int = 0  # evaluate conversions on the first N test images (0 = all); large T is slow
    hybrid_steps: tuple[int, ...] = (10, 25)
    hybrid_scale: float = 0.3  # thresholds hybrid training starts from; short windows need low ones (digits: 0.7
    # left T = 5 silent and untrainable in one of two runs, 0.3 gave 90.9 % at T = 5 and 95.1 % at T = 10)
    hybrid_train_limit: int = 0  # train the hybrid phase on the first N training images (0 = as ANN)
    leak: float = 1.0  # LIF leak during hybrid training (1.0 = IF)
    surrogate: SurrogateName = "stdb"
    encoder: Encoder = "poisson"  # input coding of the SNN: poisson (signed rate) or direct

    RULES: ClassVar[dict] = {
        **PipelineConfig.RULES,
        "convert_steps": ">=1",
        "balance_percentile": "(0,100]",
        "convert_scale": ">0",
        "convert_test_limit": ">=0",
        "hybrid_steps": ">=1",
        "hybrid_scale": ">0",
        "hybrid_train_limit": ">=0",
        "leak": "(0,1]",
    }


# a resumed run may train its phases for more epochs; nothing else
RESUMABLE: tuple[str, ...] = ("checkpoint_seconds", "ann_epochs", "hybrid_epochs")

PRESETS = {
    # a few minutes on 2 cores: the embedded 8x8 digits, a small VGG5
    "quick": {
        "dataset": "digits",
        "width": 0.25,
        "hidden": 128,
        "ann_epochs": 15,
        "convert_steps": (10, 25, 50),
        "hybrid_steps": (5, 10),
        "hybrid_epochs": 3,
        "hybrid_lr": 5e-4,
        "balance_samples": 256,
    },
    # MNIST VGG5 as in the issue; hours on 2 cores (see the README for the scale actually run)
    "full": {
        "dataset": "mnist",
        "ann_epochs": 10,
        "ann_lr_milestones": (0.6, 0.8),
        "convert_steps": (25, 50, 100),
        "hybrid_steps": (10, 25),
    },
}


def run(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    validate(cfg)  # fail before the ANN trains (the CLI has checked already; callers from Python may not have)
    p = Pipeline(cfg, run_dir, build_spiking, progress)
    results = {"ann": {}, "converted": {}, "hybrid": {}}
    net = p.build()
    results["ann"] = p.ann(net)
    ann_state = copy.deepcopy(net.state_dict())
    x_te, y_te = p.test
    conv_test = (x_te[: cfg.convert_test_limit], y_te[: cfg.convert_test_limit]) if cfg.convert_test_limit else None
    if p.main:  # evaluation is not distributed
        for t in cfg.convert_steps:
            results["converted"][str(t)] = p.converted(
                net, t, cfg.convert_scale, cfg.balance_percentile, cfg.encoder, conv_test
            )
    x_tr, y_tr = p.train
    train = (x_tr[: cfg.hybrid_train_limit], y_tr[: cfg.hybrid_train_limit]) if cfg.hybrid_train_limit else None
    for t in cfg.hybrid_steps:
        snn = p.build()  # the converted ANN, in a network of its own
        snn.load_state_dict(ann_state)
        r = p.hybrid(
            snn,
            t,
            cfg.hybrid_scale,
            cfg.hybrid_lr,
            cfg.hybrid_epochs,
            cfg.balance_percentile,
            cfg.encoder,
            cfg.leak,
            cfg.surrogate,
            train,
        )
        if p.main:
            results["hybrid"][str(t)] = r
            p.save(snn, f"hybrid_T{t}", t, cfg.encoder)
    main_t = str(min(cfg.hybrid_steps)) if cfg.hybrid_steps else None
    return p.finish(
        results, "hybrid", main_t, ("converted", "hybrid"), lambda r: _figure(run_dir / "accuracy_vs_t.png", r, cfg)
    )


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
            [int(t) for t in ts],
            [results["hybrid"][t]["accuracy_before_training"] for t in ts],
        )
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

"""DIET-SNN: direct input encoding with trained membrane leak and threshold (thesis part 4; Rathi & Roy, 2021).

1. Train the ANN (or load one: ``ann_bundle``, e.g. the ``checkpoints/ann.npz`` of a hybrid run).
2. For each T in ``diet_steps``: start from the ANN weights, thresholds = ``scale`` × the 99.7th percentile of
   each layer's ANN pre-activations, leak λ = 1; feed the analog pixels to the first layer at every step
   (direct coding) and train weights, λ and θ of every layer with the linear surrogate
   0.3·max(0, 1 − |u/θ − 1|), λ clamped to [0, 1] after each step.
3. For comparison at ``compare_steps``: the converted network (IF, threshold balancing, same direct input) and
   hybrid STDB training (Poisson input, fixed λ and θ) of the same ANN.
4. Optionally (``device_bits``): quantization-aware fine-tuning of the DIET network at ``qat_steps`` with weights
   on 2**bits-level differential memristive pairs (:mod:`bioSNN.nn.qat`, through :mod:`bioSNN.device`).

Writes ``metrics.json`` (accuracy per method and T, learned λ and θ per layer, spike rates, ANN vs SNN compute
energy), ``diet.png`` and a bundle per trained network; every phase checkpoints after each epoch (``--resume``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch

from bioSNN import viz
from bioSNN.atomic import write_json
from bioSNN.config import ConfigError, validate
from bioSNN.models import ModelName, build_spiking
from bioSNN.nn import qat
from bioSNN.nn.convert import balance_thresholds
from bioSNN.nn.pipeline import Pipeline, PipelineConfig
from bioSNN.nn.surrogate import SurrogateName
from bioSNN.nn.train import step_schedule

SUMMARY = "DIET-SNN: direct input, leak and threshold trained with the weights, few time steps (+ QAT on devices)"


@dataclass(frozen=True)
class Config(PipelineConfig):
    model: ModelName = "vgg5"  # vgg5, vgg9, vgg11, vgg16, resnet20
    hybrid_epochs: int = 2
    diet_steps: tuple[int, ...] = (2, 3, 5, 10)
    diet_epochs: int = 5
    optimizer: Literal["adam", "sgd"] = "adam"  # adam or sgd (momentum 0.9)
    diet_lr: float = 1e-4
    lr_milestones: tuple[float, ...] = (0.6, 0.8)  # fractions of the epochs at which the learning rate drops x0.1
    percentile: float = 99.7  # of the ANN pre-activations, for the initial thresholds
    scale: float = 0.3  # initial threshold = scale x percentile (digits, T=2: 0.3 trains, 0.5 barely, 0.7 not)
    surrogate: SurrogateName = "linear"
    # α of an energy term in the DIET loss: cross-entropy + α · E_SNN/E_ANN (bioSNN.energy's model, differentiable
    # through the surrogate gradient); 0 trains as the thesis does, on cross-entropy alone
    energy_penalty: float = 0.0
    compare_steps: tuple[int, ...] = (5,)  # converted and hybrid networks at these T
    convert_scale: float = 0.3  # short windows need low thresholds ("smaller for short ones")
    device_bits: tuple[int, ...] = ()  # QAT of the DIET network on 2**bits-level devices
    qat_steps: int = 5
    qat_epochs: int = 2
    qat_lr: float = 5e-5

    RULES: ClassVar[dict] = {
        **PipelineConfig.RULES,
        "diet_steps": ">=1",
        "diet_epochs": ">=0",
        "diet_lr": ">0",
        "lr_milestones": "(0,1]",
        "percentile": "(0,100]",
        "scale": ">0",
        "energy_penalty": ">=0",
        "compare_steps": ">=1",
        "convert_scale": ">0",
        "device_bits": "[1,16]",
        "qat_steps": ">=1",
        "qat_epochs": ">=0",
        "qat_lr": ">0",
    }

    def cross_check(self) -> None:
        super().cross_check()
        if self.device_bits and self.qat_steps not in self.diet_steps:
            raise ConfigError(
                f"qat_steps: QAT starts from a DIET network, so it must be one of diet_steps "
                f"{list(self.diet_steps)}, got {self.qat_steps}"
            )


# a resumed run may train its phases for more epochs and add QAT on other devices; nothing else
RESUMABLE: tuple[str, ...] = (
    "checkpoint_seconds",
    "ann_epochs",
    "diet_epochs",
    "hybrid_epochs",
    "qat_epochs",
    "device_bits",
)

PRESETS = {
    "quick": {
        "dataset": "digits",
        "width": 0.25,
        "hidden": 128,
        "ann_epochs": 15,
        "diet_steps": (2, 5),
        "diet_epochs": 3,
        "diet_lr": 5e-4,
        "hybrid_epochs": 3,
        "hybrid_lr": 5e-4,
        "balance_samples": 256,
        "device_bits": (2,),
        "qat_epochs": 2,
        "qat_lr": 2e-4,
    },
    "full": {"dataset": "mnist", "ann_lr_milestones": (0.6, 0.8)},
}


def _optimizer(cfg: Config, params, lr: float):
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
    return torch.optim.Adam(params, lr=lr)


def _neurons(net) -> dict:
    return {
        net.name_of(a): {"leak": float(a.leak.detach()), "threshold": float(a.threshold.detach())}
        for a in net.activations()
    }


def run(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    validate(cfg)  # fail before the ANN trains, not after (the CLI has checked already; Python callers may not)
    p = Pipeline(cfg, run_dir, build_spiking, progress)
    res: dict = {"ann": {}, "diet": {}, "converted": {}, "hybrid": {}, "qat": {}}
    ann = p.build()
    res["ann"] = p.ann(ann)

    # DIET at each T: the ANN's weights, thresholds from its pre-activations, leak and threshold trained
    diet_nets = {}
    for t in cfg.diet_steps:
        net = copy.deepcopy(ann)
        init = balance_thresholds(net, p.balance_set(), percentile=cfg.percentile, scale=cfg.scale, source="ann")
        net.set_neurons(leak=1.0, reset="soft", surrogate=cfg.surrogate, train_leak=True, train_threshold=True)
        before = p.evaluate(net, t).accuracy if p.main else 0.0
        opt = _optimizer(cfg, net.parameters(), cfg.diet_lr)
        hist = p.fit(
            net,
            opt,
            f"diet_T{t}",
            cfg.diet_epochs,
            t,
            "direct",
            step_schedule(opt, cfg.diet_epochs, cfg.lr_milestones),
            f"DIET T={t}",
            energy_penalty=cfg.energy_penalty,
        )
        diet_nets[t] = net
        if p.main:
            res["diet"][str(t)] = {
                **p.evaluate(net, t).summary(),
                "initial_thresholds": init,
                "accuracy_before_training": before,
                "neurons": _neurons(net),
                "history": hist,
            }
            p.save(net, f"diet_T{t}", t, "direct")
            write_json(run_dir / "partial.json", res)  # what is finished, readable before the run ends

    # the converted and the hybrid network of the same ANN at the comparison T
    for t in cfg.compare_steps:
        if p.main:
            res["converted"][str(t)] = p.converted(ann, t, cfg.convert_scale, encoder="direct")
        r = p.hybrid(copy.deepcopy(ann), t, cfg.convert_scale, cfg.hybrid_lr, cfg.hybrid_epochs)
        if p.main:
            res["hybrid"][str(t)] = r
            write_json(run_dir / "partial.json", res)

    # DIET on memristive devices: quantization-aware fine-tuning
    for bits in cfg.device_bits:
        t = cfg.qat_steps
        net = copy.deepcopy(diet_nets[t])
        devices = qat.attach(net, bits)
        before = p.evaluate(net, t).accuracy if p.main else 0.0
        opt = _optimizer(cfg, net.parameters(), cfg.qat_lr)
        hist = p.fit(net, opt, f"qat_{bits}bit", cfg.qat_epochs, t, "direct", label=f"QAT {bits}-bit")
        if p.main:
            res["qat"][f"{bits}bit"] = {
                **p.evaluate(net, t).summary(),
                "time_steps": t,
                "accuracy_quantized_before_qat": before,
                "devices": {k: v.to_dict() for k, v in devices.items()},
                "history": hist,
            }
            write_json(run_dir / "partial.json", res)
            qat.freeze(net)
            p.save(
                net,
                f"diet_T{t}_{bits}bit",
                t,
                "direct",
                device={"per_layer": {k: v.to_dict() for k, v in devices.items()}},
            )

    main_t = "5" if "5" in res["diet"] else (next(iter(res["diet"])) if res["diet"] else None)
    return p.finish(
        res, "diet", main_t, ("diet", "converted", "hybrid", "qat"), lambda r: _figure(run_dir / "diet.png", r, cfg)
    )


def _figure(path: Path, res: dict, cfg: Config) -> None:
    fig, axes = viz.figure(1, 3, figsize=(15, 3.8), gridspec_kw={"wspace": 0.4})
    curves = {}
    for kind in ("diet", "converted", "hybrid"):
        if res[kind]:
            ts = sorted(res[kind], key=int)
            curves[kind] = ([int(t) for t in ts], [res[kind][t]["accuracy"] for t in ts])
    viz.plot_curves(axes[0], curves, "time steps T", "test accuracy", f"{cfg.model} on {cfg.dataset}")
    axes[0].axhline(res["ann"]["accuracy"], color="k", ls="--", lw=1, label="ANN")
    axes[0].legend()
    for t, r in sorted(res["diet"].items(), key=lambda kv: int(kv[0])):
        names = list(r["neurons"])
        axes[1].plot(range(len(names)), [r["neurons"][n]["leak"] for n in names], marker="o", ms=3, label=f"λ, T={t}")
        axes[2].plot(range(len(names)), list(r["spike_rate"].values()), marker="o", ms=3, label=f"T={t}")
    if res["diet"]:
        for ax in axes[1:]:
            ax.set_xticks(range(len(names)), names, rotation=45, fontsize=7)
    axes[1].set(xlabel="layer", ylabel="learned leak λ", title="trained membrane leak")
    axes[2].set(xlabel="layer", ylabel="spikes / neuron / step", title="DIET spike rate per layer")
    axes[1].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    viz.save(fig, path)

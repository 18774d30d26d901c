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
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from bioSNN import bundles, viz
from bioSNN.atomic import write_json
from bioSNN.nn import distributed as dist
from bioSNN.nn import qat
from bioSNN.nn.bundle import load_state, to_bundle
from bioSNN.nn.convert import balance_thresholds, to_snn
from bioSNN.config import ConfigError, validate
from bioSNN.data import DATASETS
from bioSNN.nn.surrogate import SURROGATES
from bioSNN.nn.train import Checkpoint, augmentation, evaluate, fit, image_tensors, step_schedule
from bioSNN.models import MODELS, build_spiking

SUMMARY = "DIET-SNN: direct input, leak and threshold trained with the weights, few time steps (+ QAT on devices)"


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"
    model: str = "vgg5"
    width: float = 1.0
    hidden: int = 1024
    dropout: float = 0.2
    train_limit: int = 0
    test_limit: int = 0
    batch_size: int = 64
    # true / "crop_flip": crop (pad 4) + flip (CIFAR); "crop": shifts only (digits); "shift_flip": shifts + flips
    augment: bool | str = False
    ann_bundle: str = ""  # start from this trained ANN (a bioSNN bundle of the same model) instead of training one
    ann_epochs: int = 10
    ann_lr: float = 1e-3
    ann_lr_milestones: tuple[float, ...] = ()  # fractions of ann_epochs after which the ANN's rate drops x0.1
    diet_steps: tuple[int, ...] = (2, 3, 5, 10)
    diet_epochs: int = 5
    optimizer: str = "adam"  # adam or sgd (momentum 0.9)
    diet_lr: float = 1e-4
    lr_milestones: tuple[float, ...] = (0.6, 0.8)  # fractions of the epochs at which the learning rate drops x0.1
    percentile: float = 99.7  # of the ANN pre-activations, for the initial thresholds
    scale: float = 0.3  # initial threshold = scale x percentile (digits, T=2: 0.3 trains, 0.5 barely, 0.7 not)
    surrogate: str = "linear"
    # α of an energy term in the DIET loss: cross-entropy + α · E_SNN/E_ANN (bioSNN.energy's model, differentiable
    # through the surrogate gradient); 0 trains as the thesis does, on cross-entropy alone
    energy_penalty: float = 0.0
    compare_steps: tuple[int, ...] = (5,)  # converted and hybrid networks at these T
    convert_scale: float = 0.3  # short windows need low thresholds ("smaller for short ones")
    balance_samples: int = 512
    hybrid_epochs: int = 2
    hybrid_lr: float = 1e-4
    device_bits: tuple[int, ...] = ()  # QAT of the DIET network on 2**bits-level devices
    qat_steps: int = 5
    qat_epochs: int = 2
    qat_lr: float = 5e-5
    threads: int = 2
    checkpoint_seconds: float = 600.0  # checkpoint inside an epoch this often too (0: after every batch)
    seed: int = 0

    RULES: ClassVar[dict] = {
        "dataset": tuple(DATASETS), "model": MODELS, "width": ">0", "hidden": ">=1", "dropout": "[0,1)",
        "train_limit": ">=0", "test_limit": ">=0", "batch_size": ">=1", "ann_epochs": ">=0", "ann_lr": ">0",
        "ann_lr_milestones": "(0,1]", "balance_samples": ">=1", "hybrid_epochs": ">=0", "hybrid_lr": ">0",
        "threads": ">=1", "checkpoint_seconds": ">=0", "seed": ">=0",
        "diet_steps": ">=1", "diet_epochs": ">=0", "optimizer": ("adam", "sgd"), "diet_lr": ">0",
        "lr_milestones": "(0,1]", "percentile": "(0,100]", "scale": ">0", "surrogate": tuple(SURROGATES),
        "energy_penalty": ">=0", "compare_steps": ">=1", "convert_scale": ">0", "device_bits": "[1,16]",
        "qat_steps": ">=1", "qat_epochs": ">=0", "qat_lr": ">0"}

    def cross_check(self) -> None:
        try:
            augmentation(self.augment)
        except ValueError as e:
            raise ConfigError(f"augment: {e}") from None
        if self.device_bits and self.qat_steps not in self.diet_steps:
            raise ConfigError(f"qat_steps: QAT starts from a DIET network, so it must be one of diet_steps "
                              f"{list(self.diet_steps)}, got {self.qat_steps}")


# a resumed run may train its phases for more epochs and add QAT on other devices; nothing else
RESUMABLE: tuple[str, ...] = ("checkpoint_seconds", "ann_epochs", "diet_epochs", "hybrid_epochs", "qat_epochs",
                              "device_bits")

PRESETS = {
    "quick": {"dataset": "digits", "width": 0.25, "hidden": 128, "ann_epochs": 15, "diet_steps": (2, 5),
              "diet_epochs": 3, "diet_lr": 5e-4, "hybrid_epochs": 3, "hybrid_lr": 5e-4, "balance_samples": 256,
              "device_bits": (2,), "qat_epochs": 2, "qat_lr": 2e-4},
    "full": {"dataset": "mnist", "ann_lr_milestones": (0.6, 0.8)},
}


def _spec(cfg: Config) -> dict:
    return {"model": cfg.model, "width": cfg.width, "hidden": cfg.hidden, "dropout": cfg.dropout}


def _optimizer(cfg: Config, params, lr: float):
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {cfg.optimizer!r}")


def _neurons(net) -> dict:
    return {net.name_of(a): {"leak": float(a.leak.detach()), "threshold": float(a.threshold.detach())}
            for a in net.activations()}


def run(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    t_start = time.perf_counter()
    validate(cfg)  # fail before the ANN trains, not after (the CLI has checked already; Python callers may not)
    torch.set_num_threads(cfg.threads)
    dist.setup()
    torch.manual_seed(cfg.seed)
    ds, (x_tr, y_tr), (x_te, y_te) = image_tensors(cfg.dataset, cfg.train_limit, cfg.test_limit)
    shape, n_classes = tuple(x_tr.shape[1:]), ds.n_classes

    def build():
        return build_spiking(cfg.model, shape, n_classes, cfg.width, cfg.hidden, cfg.dropout)

    prov = bundles.provenance(cfg.dataset, cfg.seed)
    ck = run_dir / "checkpoints"
    ck.mkdir(exist_ok=True)
    train, test = (x_tr, y_tr), (x_te, y_te)
    res: dict = {"ann": {}, "diet": {}, "converted": {}, "hybrid": {}, "qat": {}}

    # 1. the ANN
    ann = build()
    if cfg.ann_bundle:
        load_state(ann, bundles.read(cfg.ann_bundle))
        res["ann"]["source"] = cfg.ann_bundle
    else:
        opt = torch.optim.Adam(ann.parameters(), cfg.ann_lr)
        fit(ann, opt, Checkpoint(ck / "ann.npz", _spec(cfg), prov), train, test, cfg.ann_epochs,
            batch_size=cfg.batch_size, augment=cfg.augment, seed=cfg.seed,
            scheduler=step_schedule(opt, cfg.ann_epochs, cfg.ann_lr_milestones), label="ANN", verbose=progress,
            checkpoint_seconds=cfg.checkpoint_seconds)
    res["ann"].update(evaluate(ann, x_te, y_te).summary())
    g = torch.Generator().manual_seed(cfg.seed)
    balance = [x_tr[torch.randperm(len(x_tr), generator=g)[:cfg.balance_samples]]]

    # 2. DIET at each T
    diet_nets = {}
    for t in cfg.diet_steps:
        net = copy.deepcopy(ann)
        init = balance_thresholds(net, balance, percentile=cfg.percentile, scale=cfg.scale, source="ann")
        net.set_neurons(leak=1.0, reset="soft", surrogate=cfg.surrogate, train_leak=True, train_threshold=True)
        before = evaluate(net, x_te, y_te, t, "direct", seed=cfg.seed).accuracy if dist.is_main() else 0.0
        opt = _optimizer(cfg, net.parameters(), cfg.diet_lr)
        hist = fit(net, opt, Checkpoint(ck / f"diet_T{t}.npz", _spec(cfg), prov), train, test, cfg.diet_epochs, t,
                   "direct", cfg.batch_size, cfg.augment, cfg.seed,
                   step_schedule(opt, cfg.diet_epochs, cfg.lr_milestones), f"DIET T={t}", progress,
                   energy_penalty=cfg.energy_penalty, checkpoint_seconds=cfg.checkpoint_seconds)
        diet_nets[t] = net
        if dist.is_main():
            res["diet"][str(t)] = {**evaluate(net, x_te, y_te, t, "direct", seed=cfg.seed).summary(),
                                   "initial_thresholds": init, "accuracy_before_training": before,
                                   "neurons": _neurons(net), "history": hist}
            bundles.write(run_dir / f"diet_T{t}.npz", to_bundle(net, model=_spec(cfg), provenance=prov))
            write_json(run_dir / "partial.json", res)  # what is finished, readable before the run ends

    # 3. converted and hybrid networks of the same ANN at the comparison T
    for t in cfg.compare_steps:
        path = ck / f"converted_T{t}.json"
        if dist.is_main():
            if path.exists():
                res["converted"][str(t)] = json.loads(path.read_text())
            else:
                snn = copy.deepcopy(ann)
                thr = to_snn(snn, balance, t, cfg.convert_scale, 100.0, "direct")
                res["converted"][str(t)] = {**evaluate(snn, x_te, y_te, t, "direct").summary(), "thresholds": thr}
                write_json(path, res["converted"][str(t)])
        snn = copy.deepcopy(ann)
        to_snn(snn, balance, t, cfg.convert_scale, 100.0, "poisson", generator=torch.Generator().manual_seed(0))
        snn.set_neurons(surrogate="stdb")
        opt = torch.optim.Adam([p for p in snn.parameters() if p.requires_grad], cfg.hybrid_lr)
        hist = fit(snn, opt, Checkpoint(ck / f"hybrid_T{t}.npz", _spec(cfg), prov), train, test, cfg.hybrid_epochs,
                   t, "poisson", cfg.batch_size, cfg.augment, cfg.seed, label=f"hybrid T={t}", verbose=progress,
                   checkpoint_seconds=cfg.checkpoint_seconds)
        if dist.is_main():
            res["hybrid"][str(t)] = {**evaluate(snn, x_te, y_te, t, "poisson", seed=cfg.seed).summary(),
                                     "history": hist}
            write_json(run_dir / "partial.json", res)

    # 4. DIET on memristive devices: quantization-aware fine-tuning
    for bits in cfg.device_bits:
        if cfg.qat_steps not in diet_nets:
            raise ValueError(f"qat_steps={cfg.qat_steps} must be one of diet_steps {cfg.diet_steps}")
        net = copy.deepcopy(diet_nets[cfg.qat_steps])
        devices = qat.attach(net, bits)
        t = cfg.qat_steps
        before = evaluate(net, x_te, y_te, t, "direct", seed=cfg.seed).accuracy if dist.is_main() else 0.0
        opt = _optimizer(cfg, net.parameters(), cfg.qat_lr)
        hist = fit(net, opt, Checkpoint(ck / f"qat_{bits}bit.npz", _spec(cfg), prov), train, test, cfg.qat_epochs,
                   t, "direct", cfg.batch_size, cfg.augment, cfg.seed, label=f"QAT {bits}-bit", verbose=progress,
                   checkpoint_seconds=cfg.checkpoint_seconds)
        if dist.is_main():
            res["qat"][f"{bits}bit"] = {**evaluate(net, x_te, y_te, t, "direct", seed=cfg.seed).summary(),
                                        "time_steps": t, "accuracy_quantized_before_qat": before,
                                        "devices": {k: v.to_dict() for k, v in devices.items()}, "history": hist}
            write_json(run_dir / "partial.json", res)
            qat.freeze(net)
            bundles.write(run_dir / f"diet_T{t}_{bits}bit.npz", to_bundle(net, model=_spec(cfg), provenance=prov))

    if not dist.is_main():
        dist.barrier()
        return {"accuracy": 0.0}
    main_t = "5" if "5" in res["diet"] else (next(iter(res["diet"])) if res["diet"] else None)
    metrics = {"accuracy": res["diet"][main_t]["accuracy"] if main_t else res["ann"]["accuracy"],
               "main": f"DIET T={main_t}" if main_t else "ann", "dataset": cfg.dataset, "model": cfg.model,
               "n_train": len(x_tr), "n_test": len(x_te), "table": _table(res), **res,
               "train_seconds": time.perf_counter() - t_start, "world_size": dist.rank_world()[1]}
    _figure(run_dir / "diet.png", res, cfg)
    if progress:
        for row in metrics["table"]:
            print(f"{row['network']:>12}  T={row['T']:>3}  accuracy {row['accuracy']:.4f}  spike rate "
                  f"{row['spike_rate']}  energy ANN/SNN {row['energy_ann_over_snn']}")
    dist.barrier()
    return metrics


def _table(res: dict) -> list[dict]:
    rows = [{"network": "ANN", "T": 0, "accuracy": res["ann"]["accuracy"], "spike_rate": None,
             "energy_ann_over_snn": 1.0}]
    for kind in ("diet", "converted", "hybrid"):
        for t, r in sorted(res[kind].items(), key=lambda kv: int(kv[0])):
            rows.append({"network": kind, "T": int(t), "accuracy": r["accuracy"],
                         "spike_rate": round(r["mean_spike_rate"], 4),
                         "energy_ann_over_snn": round(r["energy_ratio_ann_over_snn"], 3)})
    for bits, r in res["qat"].items():
        rows.append({"network": f"diet {bits}", "T": r["time_steps"], "accuracy": r["accuracy"],
                     "spike_rate": round(r["mean_spike_rate"], 4),
                     "energy_ann_over_snn": round(r["energy_ratio_ann_over_snn"], 3)})
    return rows


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

"""Demo: a spiking MLP trained with surrogate gradients on Poisson-coded digits, then put on a memristive device.

Proves the whole path end to end with the PyTorch engine's own parts: config → data (embedded UCI digits by
default) → :func:`bioSNN.models.mlp.mlp` (a :class:`~bioSNN.nn.network.SpikingNet`) trained by
:func:`bioSNN.nn.train.fit` on Poisson-coded input → metrics (accuracy, spike rate, compute energy vs the ANN)
→ device quantization of the trained weights → results (``metrics.json``, ``demo.png``, ``model.npz`` bundle),
with the engine's checkpoints, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from bioSNN import bundles, device, viz
from bioSNN.data import DatasetName
from bioSNN.models.mlp import mlp
from bioSNN.nn.bundle import run_settings, to_bundle
from bioSNN.nn.surrogate import SurrogateName
from bioSNN.nn.train import Checkpoint, evaluate, fit, image_tensors

SUMMARY = (
    "spiking MLP on Poisson-coded digits (embedded UCI 8x8 by default): surrogate-gradient training + device "
    "quantization"
)


@dataclass(frozen=True)
class Config:
    dataset: DatasetName = "digits"  # any image dataset of bioSNN.data (digits, mnist, fashion_mnist, cifar10)
    hidden: int = 128  # neurons in the hidden LIF layer
    time_steps: int = 20  # simulation steps per sample
    leak: float = 0.9  # membrane leak λ per step
    threshold: float = 1.0  # firing threshold θ
    surrogate: SurrogateName = "fast_sigmoid"
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    train_limit: int = 0  # use only the first N training samples (0 = all)
    test_limit: int = 0  # use only the first N test samples (0 = all)
    device_bits: tuple[int, ...] = (1, 2, 3, 4)  # evaluate the trained weights on 2**bits-level devices
    threads: int = 2  # torch CPU threads
    seed: int = 0

    RULES: ClassVar[dict] = {
        "hidden": ">=1",
        "time_steps": ">=1",
        "leak": "(0,1]",
        "threshold": ">0",
        "epochs": ">=0",
        "batch_size": ">=1",
        "lr": ">0",
        "train_limit": ">=0",
        "test_limit": ">=0",
        "device_bits": "[1,16]",
        "threads": ">=1",
        "seed": ">=0",
    }


# a resumed run may train more epochs; nothing else
RESUMABLE: tuple[str, ...] = ("epochs",)

PRESETS = {
    "quick": {"epochs": 15},
    "full": {"epochs": 30, "hidden": 256},
}


def run(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    t_start = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    ds, (x_tr, y_tr), (x_te, y_te) = image_tensors(cfg.dataset, cfg.train_limit, cfg.test_limit)
    net = mlp(tuple(x_tr.shape[1:]), ds.n_classes, (cfg.hidden,), cfg.leak, cfg.threshold, cfg.surrogate)
    prov = bundles.provenance(cfg.dataset, cfg.seed)
    spec = {"model": "mlp", "hidden": cfg.hidden}
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    history = fit(
        net,
        opt,
        Checkpoint(run_dir / "checkpoints" / "last.npz", spec, prov),
        (x_tr, y_tr),
        (x_te, y_te),
        cfg.epochs,
        cfg.time_steps,
        "poisson",
        cfg.batch_size,
        seed=cfg.seed,
        label="demo",
        verbose=progress,
    )
    result = evaluate(net, x_te, y_te, cfg.time_steps, "poisson", seed=cfg.seed + 1)
    conf = np.zeros((ds.n_classes, ds.n_classes), np.int64)
    np.add.at(conf, (y_te.numpy(), result.predictions), 1)

    # the trained weights programmed onto differential-pair memristive devices
    layers = [layer for _, layer in net.weighted_layers()]
    original = [layer.weight.detach().clone() for layer in layers]
    w_max = max(float(w.abs().max()) for w in original)
    device_acc = {}
    for bits in cfg.device_bits:
        dev = device.DeviceConfig.from_bits(bits, mapping="differential", w_max=w_max)
        with torch.no_grad():
            for layer, w in zip(layers, original):
                layer.weight.copy_(device.quantize(w, dev))
        device_acc[f"{bits}bit"] = evaluate(net, x_te, y_te, cfg.time_steps, "poisson", seed=cfg.seed + 1).accuracy
    with torch.no_grad():
        for layer, w in zip(layers, original):
            layer.weight.copy_(w)

    bundles.write(
        run_dir / "model.npz", to_bundle(net, model=spec, provenance=prov, run=run_settings(cfg.time_steps, "poisson"))
    )
    _figure(run_dir / "demo.png", net, x_te, y_te, cfg, history, conf, ds.class_names)
    return {
        "accuracy": result.accuracy,
        "main_bundle": "model.npz",
        "dataset": cfg.dataset,
        "n_train": len(x_tr),
        "n_test": len(x_te),
        **result.summary(),
        "device_accuracy": device_acc,
        "history": history,
        "train_seconds": time.perf_counter() - t_start,
    }


def _figure(path, net, x_te, y_te, cfg, history, conf, class_names):
    fig, axes = viz.figure(1, 3, figsize=(14, 3.8), gridspec_kw={"wspace": 0.5})
    ax2 = axes[0].twinx()
    axes[0].plot(history["epoch"], history["train_loss"], color="tab:red", marker="o", ms=3)
    axes[0].set(xlabel="epoch", ylabel="train loss", title="learning curve")
    ax2.plot(history["epoch"], history["test_accuracy"], color="tab:blue", marker="o", ms=3)
    ax2.set_ylabel("test accuracy", color="tab:blue")
    with torch.no_grad():
        spikes = net.snn(
            x_te[:1], cfg.time_steps, "poisson", generator=torch.Generator().manual_seed(0), record=True
        ).spikes
    viz.plot_raster(axes[1], spikes["act1"][:, 0].numpy(), title=f"hidden spikes, test sample (label {int(y_te[0])})")
    viz.plot_confusion(axes[2], conf, list(class_names))
    viz.save(fig, path)

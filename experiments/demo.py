"""Demo: a spiking MLP trained with surrogate gradients on Poisson-coded digits, then put on a memristive device.

Proves the whole path end to end: config → data (embedded UCI digits by default) → Poisson encoder → SNN
(PyTorch engine) → metrics (accuracy, spike rate, compute energy vs the ANN) → device quantization of the
trained weights → results (``metrics.json``, ``demo.png``, ``model.npz`` bundle), with a checkpoint after each
epoch so a killed run resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from bioSNN import bundles, data, device, energy, viz
from bioSNN.data import DATASETS
from bioSNN.encoding import poisson_encode
from bioSNN.nn.surrogate import SURROGATES
from bioSNN.nn.checkpoint import optimizer_from_arrays, optimizer_to_arrays
from bioSNN.models.spiking_mlp import SpikingMLP

SUMMARY = "spiking MLP on Poisson-coded digits (embedded UCI 8x8 by default): surrogate-gradient training + device quantization"


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"  # any image dataset of bioSNN.data (digits, mnist, fashion_mnist, cifar10)
    hidden: int = 128  # neurons in the hidden LIF layer
    time_steps: int = 20  # simulation steps per sample
    leak: float = 0.9  # membrane leak λ per step
    threshold: float = 1.0  # firing threshold θ
    surrogate: str = "fast_sigmoid"
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    train_limit: int = 0  # use only the first N training samples (0 = all)
    test_limit: int = 0  # use only the first N test samples (0 = all)
    device_bits: tuple[int, ...] = (1, 2, 3, 4)  # evaluate the trained weights on 2**bits-level devices
    threads: int = 2  # torch CPU threads
    seed: int = 0

    RULES: ClassVar[dict] = {
        "dataset": tuple(DATASETS), "hidden": ">=1", "time_steps": ">=1", "leak": "(0,1]", "threshold": ">0",
        "surrogate": tuple(SURROGATES), "epochs": ">=0", "batch_size": ">=1", "lr": ">0", "train_limit": ">=0",
        "test_limit": ">=0", "device_bits": "[1,16]", "threads": ">=1", "seed": ">=0"}


# a resumed run may train more epochs; nothing else
RESUMABLE: tuple[str, ...] = ("epochs",)

PRESETS = {
    "quick": {"epochs": 15},
    "full": {"epochs": 30, "hidden": 256},
}


def _prepare(cfg: Config):
    ds = data.load(cfg.dataset)
    if not isinstance(ds, data.ImageData):
        raise ValueError(f"demo needs an image dataset; {cfg.dataset!r} is a {type(ds).__name__}")

    def flat(x, y, limit):
        if limit:
            x, y = x[:limit], y[:limit]
        return torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255.0), torch.from_numpy(y)

    return ds, flat(ds.x_train, ds.y_train, cfg.train_limit), flat(ds.x_test, ds.y_test, cfg.test_limit)


def evaluate(model: SpikingMLP, x: torch.Tensor, y: torch.Tensor, cfg: Config, seed: int):
    """Accuracy, confusion matrix and mean spike counts per sample and layer, on fixed Poisson draws."""
    gen = torch.Generator().manual_seed(seed)
    preds, counts = [], None
    with torch.no_grad():
        for i in range(0, len(x), 256):
            logits, c, _ = model(poisson_encode(x[i:i + 256], cfg.time_steps, gen))
            preds.append(logits.argmax(1))
            c = [ci.sum(0) for ci in c]
            counts = c if counts is None else [a + b for a, b in zip(counts, c)]
    pred = torch.cat(preds).numpy()
    k = int(max(y.max().item(), pred.max()) + 1)
    conf = np.zeros((k, k), np.int64)
    np.add.at(conf, (y.numpy(), pred), 1)
    return float((pred == y.numpy()).mean()), conf, [c / len(x) for c in counts]


def _checkpoint(path: Path, model, opt, epoch: int, history: dict, cfg: Config):
    bundle = model.to_bundle(provenance=bundles.provenance(cfg.dataset, cfg.seed))
    arrays, meta = optimizer_to_arrays(opt)
    bundle = bundles.Bundle(bundle.populations, bundle.projections, {**bundle.arrays, **arrays}, engine="torch",
                       name=bundle.name, provenance=bundle.provenance,
                       extra={"epoch": epoch, "history": history, "optimizer": meta,
                              "rng": torch.get_rng_state().numpy().tolist()})
    bundles.write(path, bundle)


def run(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    t_start = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    ds, (x_tr, y_tr), (x_te, y_te) = _prepare(cfg)
    model = SpikingMLP((x_tr.shape[1], cfg.hidden, ds.n_classes), cfg.leak, cfg.threshold, cfg.surrogate)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = {"epoch": [], "train_loss": [], "test_accuracy": []}
    ckpt = run_dir / "checkpoints" / "last.npz"
    start_epoch = 0
    if ckpt.exists():  # resume
        b = bundles.read(ckpt)
        model.load_bundle_arrays(b)
        optimizer_from_arrays(opt, b.arrays, b.extra["optimizer"])
        torch.set_rng_state(torch.tensor(b.extra["rng"], dtype=torch.uint8))
        history, start_epoch = b.extra["history"], b.extra["epoch"]
        print(f"resumed from {ckpt} after epoch {start_epoch}")

    for epoch in tqdm(range(start_epoch, cfg.epochs), desc="demo epochs", disable=not progress,
                      initial=start_epoch, total=cfg.epochs):
        model.train()
        perm = torch.randperm(len(x_tr))
        losses = []
        for i in range(0, len(x_tr), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            logits, _, _ = model(poisson_encode(x_tr[idx], cfg.time_steps))
            loss = torch.nn.functional.cross_entropy(logits, y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        acc, _, _ = evaluate(model, x_te, y_te, cfg, seed=cfg.seed + 1)
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(float(np.mean(losses)))
        history["test_accuracy"].append(acc)
        _checkpoint(ckpt, model, opt, epoch + 1, history, cfg)

    model.eval()
    acc, conf, counts = evaluate(model, x_te, y_te, cfg, seed=cfg.seed + 1)
    sizes = model.sizes
    # energy: each input/hidden spike is one accumulate per outgoing synapse
    layers = [energy.LayerOps(f"fc{i}", macs=sizes[i] * sizes[i + 1],
                              synaptic_events=float(counts[i].sum()) * sizes[i + 1], time_steps=cfg.time_steps)
              for i in range(len(sizes) - 1)]
    e_snn, e_ann = energy.snn_energy_pj(layers), energy.ann_energy_pj(layers)
    rates = [float(c.mean()) / cfg.time_steps for c in counts]

    # the trained weights programmed onto differential-pair memristive devices
    device_acc = {}
    original = [fc.weight.detach().clone() for fc in model.fcs]
    w_max = max(float(w.abs().max()) for w in original)
    for bits in cfg.device_bits:
        dev = device.DeviceConfig.from_bits(bits, mapping="differential", w_max=w_max)
        with torch.no_grad():
            for fc, w in zip(model.fcs, original):
                fc.weight.copy_(device.quantize(w, dev))
        device_acc[f"{bits}bit"] = evaluate(model, x_te, y_te, cfg, seed=cfg.seed + 1)[0]
    with torch.no_grad():
        for fc, w in zip(model.fcs, original):
            fc.weight.copy_(w)

    bundles.write(run_dir / "model.npz", model.to_bundle(provenance=bundles.provenance(cfg.dataset, cfg.seed)))
    _figure(run_dir / "demo.png", model, x_te, y_te, cfg, history, conf, ds.class_names)
    return {
        "accuracy": acc,
        "dataset": cfg.dataset,
        "n_train": len(x_tr),
        "n_test": len(x_te),
        "time_steps": cfg.time_steps,
        "spike_rate_per_layer": {"input": rates[0], **{f"hidden{i}": r for i, r in enumerate(rates[1:], 1)}},
        "energy_pj_per_sample": {"snn": e_snn, "ann": e_ann, "ann_over_snn": e_ann / e_snn if e_snn else None,
                                 "constants": energy.CONSTANTS_NOTE},
        "device_accuracy": device_acc,
        "history": history,
        "train_seconds": time.perf_counter() - t_start,
    }


def _figure(path, model, x_te, y_te, cfg, history, conf, class_names):
    fig, axes = viz.figure(1, 3, figsize=(14, 3.8), gridspec_kw={"wspace": 0.5})
    ax2 = axes[0].twinx()
    axes[0].plot(history["epoch"], history["train_loss"], color="tab:red", marker="o", ms=3)
    axes[0].set(xlabel="epoch", ylabel="train loss", title="learning curve")
    ax2.plot(history["epoch"], history["test_accuracy"], color="tab:blue", marker="o", ms=3)
    ax2.set_ylabel("test accuracy", color="tab:blue")
    with torch.no_grad():
        _, _, rec = model(poisson_encode(x_te[:1], cfg.time_steps, torch.Generator().manual_seed(0)), record=True)
    viz.plot_raster(axes[1], rec[0][:, 0].numpy(), title=f"hidden spikes, test sample (label {int(y_te[0])})")
    viz.plot_confusion(axes[2], conf, list(class_names))
    viz.save(fig, path)

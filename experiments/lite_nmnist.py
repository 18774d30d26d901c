"""LITE-SNN on event-camera data: a small conv SNN over binned N-MNIST events vs a CNN on the same frames.

The N-MNIST subset of bioSNN's data (1,000 train / 100 test recordings, ATIS 34×34, ON/OFF, ~300 ms: three
saccades) is binned into ``n_bins`` frames over ``duration_ms`` (:func:`bioSNN.encoding.events_to_frames`; a pixel
that saw at least one event in a bin is 1), for every count in ``bins``.

- **SNN**: :func:`bioSNN.models.events.event_convnet` run over the frames (frame t drives step t; membranes carry
  the history; leak and threshold trained with the weights; fast-sigmoid surrogate), trained with BPTT; each
  layer's threshold starts at ``init_scale`` × the 99th percentile of its input current on 256 training samples.
- **CNN**: the same layers with ReLU on the frames stacked as channels (2·T input channels): sees every bin at
  once, no state.

Reports test accuracy with its 95 % Wilson interval (100 test recordings), spike rates and compute energy (SNN:
accumulates per input and hidden spike; CNN: MACs) per bin count, and accuracy vs number of bins (``nmnist.png``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from bioSNN import bundles, viz
from bioSNN.atomic import write_json
from bioSNN.config import ConfigError, validate
from bioSNN.encoding import events_to_frames
from bioSNN.models.events import event_convnet
from bioSNN.nn.bundle import run_settings, to_bundle
from bioSNN.nn.convert import balance_thresholds
from bioSNN.nn.sequence import prepare_run
from bioSNN.nn.train import Checkpoint, evaluate, fit

SUMMARY = "LITE-SNN on events: conv SNN over binned N-MNIST frames vs a CNN on the stacked frames"


@dataclass(frozen=True)
class Config:
    bins: tuple[int, ...] = (5, 10, 20)  # time bins (= SNN time steps) per recording
    duration_ms: float = 300.0  # binned window from each recording's start (N-MNIST: ~300 ms, 3 saccades)
    channels: tuple[int, ...] = (16, 32)
    hidden: int = 128
    leak: float = 0.9  # initial λ (trained)
    init_scale: float = 0.5  # initial thresholds: this x the 99th percentile of each layer's input current
    epochs: int = 20
    lr: float = 2e-3  # Adam
    batch_size: int = 32
    baseline: bool = True  # also train the CNN on the stacked frames
    train_limit: int = 0  # first N training recordings (0: all 1,000)
    threads: int = 2
    checkpoint_seconds: float = 600.0
    seed: int = 0

    RULES: ClassVar[dict] = {
        "bins": ">=1",
        "duration_ms": ">0",
        "channels": ">=1",
        "hidden": ">=1",
        "leak": "[0,1]",
        "init_scale": ">0",
        "epochs": ">=0",
        "lr": ">0",
        "batch_size": ">=1",
        "train_limit": ">=0",
        "threads": ">=1",
        "checkpoint_seconds": ">=0",
        "seed": ">=0",
    }

    def cross_check(self) -> None:
        if len(set(self.bins)) != len(self.bins):
            raise ConfigError(f"bins: each count once, got {list(self.bins)}")


RESUMABLE: tuple[str, ...] = ("checkpoint_seconds", "epochs")

PRESETS = {
    "quick": {"bins": (5, 10), "epochs": 6, "train_limit": 500},
    "full": {},
}


def frames(ds, idx: np.ndarray, n_bins: int, duration_ms: float) -> torch.Tensor:
    """Binary event frames ``(len(idx), n_bins, 2, 34, 34)`` of the recordings ``idx``."""
    dur = int(round(duration_ms * 1000))
    out = np.stack([events_to_frames(ds.events(int(i)), ds.sensor_size, n_bins, dur) for i in idx])
    return torch.from_numpy((out > 0).astype(np.float32))


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def run(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    validate(cfg)
    from bioSNN import data

    run_dir, ckpts = prepare_run(run_dir, cfg.threads)
    ds = data.load("nmnist")
    tr, te = ds.train_indices, ds.test_indices
    if cfg.train_limit:
        tr = tr[: cfg.train_limit]
    y_tr, y_te = torch.from_numpy(ds.labels[tr]), torch.from_numpy(ds.labels[te])
    prov = bundles.provenance("nmnist", cfg.seed)
    res: dict = {"snn": {}, "cnn": {}}
    for n_bins in cfg.bins:
        x_tr, x_te = frames(ds, tr, n_bins, cfg.duration_ms), frames(ds, te, n_bins, cfg.duration_ms)
        res.setdefault("input_event_rate", {})[str(n_bins)] = float(x_tr.mean())
        for kind in ("snn", "cnn") if cfg.baseline else ("snn",):
            torch.manual_seed(cfg.seed)
            shape = (2, 34, 34) if kind == "snn" else (2 * n_bins, 34, 34)
            net = event_convnet(shape, 10, cfg.channels, cfg.hidden, cfg.leak, surrogate="fast_sigmoid")
            spec = {
                "model": "event_convnet",
                "input_shape": list(shape),
                "channels": list(cfg.channels),
                "hidden": cfg.hidden,
            }
            steps, enc = (n_bins, "frames") if kind == "snn" else (0, "direct")
            xa, xb = (x_tr, x_te) if kind == "snn" else (x_tr.flatten(1, 2), x_te.flatten(1, 2))
            init = None
            if kind == "snn":
                # a fresh SNN on sparse binary frames barely reaches threshold (no spike, no surrogate signal):
                # start each layer's threshold at init_scale x the 99th percentile of its input current (kept
                # beside the checkpoint, which holds the trained thresholds once there is one)
                init_path = ckpts / f"{kind}_bins{n_bins}_init.json"
                if (ckpts / f"{kind}_bins{n_bins}.npz").exists():
                    init = json.loads(init_path.read_text())
                else:
                    init = balance_thresholds(net, [x_tr[:256]], n_bins, cfg.init_scale, 99.0, "frames")
                    write_json(init_path, init)
            opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
            hist = fit(
                net,
                opt,
                Checkpoint(ckpts / f"{kind}_bins{n_bins}.npz", spec, prov),
                (xa, y_tr),
                (xb, y_te),
                cfg.epochs,
                steps,
                enc,
                cfg.batch_size,
                False,
                cfg.seed,
                label=f"{kind} bins={n_bins}",
                verbose=progress,
                checkpoint_seconds=cfg.checkpoint_seconds,
            )
            ev = evaluate(net, xb, y_te, steps, enc, seed=cfg.seed)
            correct = int(round(ev.accuracy * len(y_te)))
            r = {
                **ev.summary(),
                "ci95": wilson(correct, len(y_te)),
                "history": hist,
                "initial_thresholds": init,
                "parameters": sum(p.numel() for p in net.parameters()),
            }
            if kind == "cnn":  # MACs of the ANN: any one-step count of the same layers gives them
                with torch.no_grad():
                    r["energy_uj"] = net.snn(xb[:1], 1, "direct", count=True).stats.summary()["ann_energy_uj"]
            else:
                r["energy_uj"] = r["snn_energy_uj"]
                r["neurons"] = {
                    net.name_of(a): {"leak": float(a.leak.detach()), "threshold": float(a.threshold.detach())}
                    for a in net.activations()
                }
                bundles.write(
                    run_dir / f"snn_bins{n_bins}.npz",
                    to_bundle(
                        net,
                        model=spec,
                        run=run_settings(n_bins, "frames", cfg.duration_ms / n_bins * 1e-3),
                        provenance=prov,
                        extra={"bins": n_bins, "duration_ms": cfg.duration_ms},
                    ),
                )
            res[kind][str(n_bins)] = r
            write_json(run_dir / "partial.json", res)
    main = str(10 if 10 in cfg.bins else cfg.bins[0])
    _figure(run_dir / "nmnist.png", res)
    return {
        "accuracy": res["snn"][main]["accuracy"],
        "main": f"snn bins={main}",
        "main_bundle": f"snn_bins{main}.npz",
        "n_train": len(tr),
        "n_test": len(te),
        **res,
    }


def _figure(path: Path, res: dict) -> None:
    fig, axes = viz.figure(1, 2, figsize=(10, 3.8), gridspec_kw={"wspace": 0.3})
    for kind, style in (("snn", "o-"), ("cnn", "s--")):
        if not res[kind]:
            continue
        b = sorted(res[kind], key=int)
        acc = [res[kind][k]["accuracy"] for k in b]
        lo = [res[kind][k]["ci95"][0] for k in b]
        hi = [res[kind][k]["ci95"][1] for k in b]
        axes[0].plot([int(k) for k in b], acc, style, label=kind.upper())
        axes[0].fill_between([int(k) for k in b], lo, hi, alpha=0.15)
        axes[1].plot([int(k) for k in b], [res[kind][k]["energy_uj"] for k in b], style, label=kind.upper())
    axes[0].set(xlabel="time bins T", ylabel="test accuracy (95 % interval)", title="N-MNIST subset (100 test)")
    axes[1].set(xlabel="time bins T", ylabel="compute energy per recording (µJ, 45 nm)", yscale="log", title="energy")
    for ax in axes:
        ax.legend()
    viz.save(fig, path)

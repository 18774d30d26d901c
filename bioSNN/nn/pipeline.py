"""ANN → SNN pipeline of the PyTorch engine: the phases that hybrid STDB and DIET-SNN share.

1. **ANN**: train a :class:`~bioSNN.nn.network.SpikingNet` of the model zoo as an ANN (or load one from a bundle).
2. **Conversion**: IF neurons, per-layer thresholds balanced on training samples (:func:`bioSNN.nn.convert.to_snn`),
   evaluated at T steps.
3. **SNN training** from a converted network: hybrid STDB (Rathi et al. 2020) or DIET (Rathi & Roy 2021), each
   phase trained by :func:`bioSNN.nn.train.fit` with its own atomic checkpoint, so a run resumes where it stopped.

:class:`PipelineConfig` holds the settings both experiments share; ``experiments/hybrid.py`` and
``experiments/diet.py`` add theirs and decide which phases run at which T. :class:`Pipeline` runs the phases
and writes what they produce into the run folder; results of every phase go into one table
(:func:`table`): accuracy, spike rate and compute energy of the ANN and of every SNN.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from .. import bundles
from ..atomic import write_json
from ..config import ConfigError
from ..data import DatasetName
from . import distributed as dist
from .bundle import load_state, run_settings, to_bundle
from .convert import to_snn
from .network import SpikingNet
from .train import Checkpoint, augmentation, evaluate, fit, image_tensors, step_schedule

__all__ = ["PipelineConfig", "Pipeline", "table"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of the data, the model, the ANN phase and the phases' common training."""

    dataset: DatasetName = "mnist"  # image dataset of bioSNN.data (mnist, fashion_mnist, cifar10, digits)
    model: str = "vgg5"  # an architecture of the factory the Pipeline is given (experiments narrow it to their zoo)
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
    balance_samples: int = 512  # training images used for threshold balancing
    hybrid_epochs: int = 3
    hybrid_lr: float = 1e-4  # Adam
    threads: int = 2
    checkpoint_seconds: float = 600.0  # checkpoint inside an epoch this often too (0: after every batch)
    seed: int = 0

    RULES: ClassVar[dict] = {
        "width": ">0",
        "hidden": ">=1",
        "dropout": "[0,1)",
        "train_limit": ">=0",
        "test_limit": ">=0",
        "batch_size": ">=1",
        "ann_epochs": ">=0",
        "ann_lr": ">0",
        "ann_lr_milestones": "(0,1]",
        "balance_samples": ">=1",
        "hybrid_epochs": ">=0",
        "hybrid_lr": ">0",
        "threads": ">=1",
        "checkpoint_seconds": ">=0",
        "seed": ">=0",
    }

    def cross_check(self) -> None:
        try:
            augmentation(self.augment)
        except ValueError as e:
            raise ConfigError(f"augment: {e}") from None


class Pipeline:
    """The phases of one run in ``run_dir`` (checkpoints in ``run_dir/checkpoints``). Building it sets the torch
    threads and seed, joins a ``torchrun`` group if there is one, and loads the data. ``build(model, input_shape,
    n_classes, width, hidden, dropout)`` makes a fresh network (the model zoo's ``build_spiking``)."""

    def __init__(self, cfg: PipelineConfig, run_dir: Path, build: Callable[..., SpikingNet], progress: bool = True):
        self.t_start = time.perf_counter()
        self.cfg, self.run_dir, self.progress, self._build = cfg, Path(run_dir), progress, build
        torch.set_num_threads(cfg.threads)
        dist.setup()
        torch.manual_seed(cfg.seed)
        self.ds, self.train, self.test = image_tensors(cfg.dataset, cfg.train_limit, cfg.test_limit)
        self.shape, self.n_classes = tuple(self.train[0].shape[1:]), self.ds.n_classes
        self.spec = {"model": cfg.model, "width": cfg.width, "hidden": cfg.hidden, "dropout": cfg.dropout}
        self.provenance = bundles.provenance(cfg.dataset, cfg.seed)
        self.checkpoints = self.run_dir / "checkpoints"
        self.checkpoints.mkdir(exist_ok=True)
        self._balance = None

    @property
    def main(self) -> bool:
        """Whether this process writes results (rank 0, or the only process)."""
        return dist.is_main()

    def build(self) -> SpikingNet:
        """A fresh network of the configured model (its weights drawn from torch's global generator)."""
        c = self.cfg
        return self._build(c.model, self.shape, self.n_classes, c.width, c.hidden, c.dropout)

    # ------------------------------------------------------------------------------------------------ phases
    def ann(self, net: SpikingNet) -> dict:
        """Phase 1: train ``net`` as an ANN (checkpoint ``ann.npz``) or load ``ann_bundle`` into it; its test result."""
        c = self.cfg
        if c.ann_bundle:
            load_state(net, bundles.read(c.ann_bundle))
            return {**evaluate(net, *self.test).summary(), "source": c.ann_bundle}
        opt = torch.optim.Adam(net.parameters(), lr=c.ann_lr)
        history = self.fit(
            net, opt, "ann", c.ann_epochs, scheduler=step_schedule(opt, c.ann_epochs, c.ann_lr_milestones), label="ANN"
        )
        return {**evaluate(net, *self.test).summary(), "history": history}

    def balance_set(self) -> list[torch.Tensor]:
        """The training images threshold balancing runs on (``balance_samples``, drawn with the run's seed)."""
        if self._balance is None:
            g = torch.Generator().manual_seed(self.cfg.seed)
            x = self.train[0]
            self._balance = [x[torch.randperm(len(x), generator=g)[: self.cfg.balance_samples]]]
        return self._balance

    def convert(
        self, net: SpikingNet, time_steps: int, scale: float, percentile: float = 100.0, encoder: str = "poisson"
    ) -> dict:
        """:func:`~bioSNN.nn.convert.to_snn` in place with the run's balance set and seed; the thresholds."""
        return to_snn(
            net,
            self.balance_set(),
            time_steps,
            scale,
            percentile,
            encoder,
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )

    def converted(
        self,
        ann: SpikingNet,
        time_steps: int,
        scale: float,
        percentile: float = 100.0,
        encoder: str = "poisson",
        test: tuple | None = None,
    ) -> dict:
        """Phase 2 (main process only): a copy of ``ann`` converted and tested (on ``test``, by default the test
        set) at ``time_steps``; saved as ``converted_T<T>.json`` and read back on a resumed run."""
        path = self.checkpoints / f"converted_T{time_steps}.json"
        if path.exists():
            return json.loads(path.read_text())
        snn = copy.deepcopy(ann)
        thr = self.convert(snn, time_steps, scale, percentile, encoder)
        x, y = test or self.test
        r = {
            **evaluate(snn, x, y, time_steps, encoder, seed=self.cfg.seed).summary(),
            "thresholds": thr,
            "test_images": len(x),
        }
        write_json(path, r)
        log.info("converted T=%d: %.4f  spike rate %.3f", time_steps, r["accuracy"], r["mean_spike_rate"])
        return r

    def fit(
        self,
        net: SpikingNet,
        opt: torch.optim.Optimizer,
        name: str,
        epochs: int,
        time_steps: int = 0,
        encoder: str = "direct",
        scheduler=None,
        label: str = "",
        train: tuple | None = None,
        energy_penalty: float = 0.0,
    ) -> dict:
        """:func:`~bioSNN.nn.train.fit` with the run's data, batches, augmentation, seed and checkpoint
        ``checkpoints/<name>.npz``; the history."""
        c = self.cfg
        return fit(
            net,
            opt,
            Checkpoint(self.checkpoints / f"{name}.npz", self.spec, self.provenance),
            train or self.train,
            self.test,
            epochs,
            time_steps,
            encoder,
            c.batch_size,
            c.augment,
            c.seed,
            scheduler,
            label,
            self.progress,
            c.checkpoint_seconds,
            energy_penalty,
        )

    def hybrid(
        self,
        snn: SpikingNet,
        time_steps: int,
        scale: float,
        lr: float,
        epochs: int,
        percentile: float = 100.0,
        encoder: str = "poisson",
        leak: float | None = None,
        surrogate: str = "stdb",
        train: tuple | None = None,
    ) -> dict:
        """Phase 3, hybrid STDB: convert ``snn`` (a copy of the trained ANN) at ``time_steps``, set its neurons
        (``leak``: None keeps IF; the spike-time surrogate), train ``epochs`` with Adam at ``lr`` (checkpoint
        ``hybrid_T<T>.npz``). Returns the test result (main process; empty elsewhere)."""
        thr = self.convert(snn, time_steps, scale, percentile, encoder)
        snn.set_neurons(leak=leak, surrogate=surrogate)
        before = self.evaluate(snn, time_steps, encoder).accuracy if self.main else 0.0
        opt = torch.optim.Adam([p for p in snn.parameters() if p.requires_grad], lr=lr)
        history = self.fit(
            snn, opt, f"hybrid_T{time_steps}", epochs, time_steps, encoder, label=f"hybrid T={time_steps}", train=train
        )
        if not self.main:
            return {}
        return {
            **self.evaluate(snn, time_steps, encoder).summary(),
            "initial_thresholds": thr,
            "accuracy_before_training": before,
            "history": history,
        }

    # ------------------------------------------------------------------------------------------------ output
    def evaluate(self, net: SpikingNet, time_steps: int = 0, encoder: str = "direct"):
        """:func:`~bioSNN.nn.train.evaluate` on the test set with the run's seed."""
        return evaluate(net, *self.test, time_steps, encoder, seed=self.cfg.seed)

    def save(self, net: SpikingNet, name: str, time_steps: int, encoder: str, device: dict | None = None) -> None:
        """``<run>/<name>.npz``: the trained network as a bundle (main process only), with the time steps, input
        coding and update it runs with (:func:`~bioSNN.nn.bundle.run_settings`) and the devices its weights sit on
        (``device``), so it can be simulated again without the run's config."""
        if self.main:
            bundles.write(
                self.run_dir / f"{name}.npz",
                to_bundle(
                    net,
                    model=self.spec,
                    run=run_settings(time_steps, encoder),
                    provenance=self.provenance,
                    device=device,
                ),
            )

    def finish(
        self, results: dict, main_kind: str, main_t: str | None, kinds: tuple[str, ...], figure: Callable[[dict], None]
    ) -> dict:
        """The run's ``metrics.json`` (main process; ``{"accuracy": 0.0}`` on other ranks): the main network's
        accuracy (``results[main_kind][main_t]``, or the ANN's), every phase's results and their :func:`table`
        over ``kinds``; draws ``figure(results)`` and logs the table."""
        if not self.main:
            dist.barrier()
            return {"accuracy": 0.0}
        c = self.cfg
        label = {"hybrid": "hybrid", "diet": "DIET"}.get(main_kind, main_kind)
        rows = table(results, kinds)
        metrics = {
            "accuracy": results[main_kind][main_t]["accuracy"] if main_t else results["ann"]["accuracy"],
            "main": f"{label} T={main_t}" if main_t else "ann",
            "main_bundle": f"{main_kind}_T{main_t}.npz" if main_t else None,
            "dataset": c.dataset,
            "model": c.model,
            "n_train": len(self.train[0]),
            "n_test": len(self.test[0]),
            "table": rows,
            **results,
            "train_seconds": time.perf_counter() - self.t_start,
            "world_size": dist.rank_world()[1],
        }
        figure(results)
        log_table(rows)
        dist.barrier()
        return metrics


def table(results: dict, kinds: tuple[str, ...]) -> list[dict]:
    """One row per network: the ANN, then every SNN of ``results[kind][T]`` for each kind in order (QAT rows
    are keyed ``<bits>bit`` and carry their ``time_steps``): accuracy, spike rate, ANN/SNN compute energy."""
    rows = [
        {
            "network": "ANN",
            "T": 0,
            "accuracy": results["ann"]["accuracy"],
            "spike_rate": None,
            "energy_ann_over_snn": 1.0,
        }
    ]
    for kind in kinds:
        entries = results[kind].items()
        if kind != "qat":
            entries = sorted(entries, key=lambda kv: int(kv[0]))
        for key, r in entries:
            rows.append(
                {
                    "network": f"diet {key}" if kind == "qat" else kind,
                    "T": r["time_steps"] if kind == "qat" else int(key),
                    "accuracy": r["accuracy"],
                    "spike_rate": round(r["mean_spike_rate"], 4),
                    "energy_ann_over_snn": round(r["energy_ratio_ann_over_snn"], 3),
                }
            )
    return rows


def log_table(rows: list[dict]) -> None:
    for row in rows:
        log.info(
            "%14s  T=%4d  accuracy %.4f  spike rate %s  energy ANN/SNN %s",
            row["network"],
            row["T"],
            row["accuracy"],
            row["spike_rate"],
            row["energy_ann_over_snn"],
        )

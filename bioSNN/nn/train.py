"""Training and evaluation loops shared by the PyTorch experiments (hybrid STDB, DIET-SNN).

In-memory batches (the datasets here fit in memory), optional data-parallel sharding (each rank of a
``torch.distributed`` group takes every ``world``-th sample of the same seeded permutation), the two image
transforms the experiments need (random crop with zero padding, horizontal flip — written here because
torchvision does not load beside the pinned torch), cross-entropy on the logits of either mode, and evaluation
that also gathers spike and operation counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bioSNN import bundles

from . import distributed as dist
from .bundle import load_state, to_bundle
from .checkpoint import restore_training_state, write_checkpoint
from .network import Encoder, RunStats, SpikingNet

log = logging.getLogger(__name__)

__all__ = [
    "to_tensor_images",
    "image_tensors",
    "random_crop_flip",
    "batches",
    "train_epoch",
    "evaluate",
    "EvalResult",
    "Checkpoint",
    "step_schedule",
    "fit",
]


def to_tensor_images(x: np.ndarray, mean: float | tuple = 0.0, std: float | tuple = 1.0) -> torch.Tensor:
    """uint8 images ``(n, h, w)`` or ``(n, h, w, c)`` → float ``(n, c, h, w)`` in [0, 1], then ``(x − mean)/std``."""
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {x.dtype}")
    t = torch.from_numpy(x.astype(np.float32) / 255.0)
    t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
    return ((t - mean_t) / std_t).contiguous()


# value range fed to the networks: grey-scale images in [0, 1]; colour images in [-1, 1] (signed Poisson coding)
SIGNED = {"cifar10", "cifar10_full"}


def image_tensors(name: str, train_limit: int = 0, test_limit: int = 0):
    """Load an image dataset of :mod:`bioSNN.data` as float tensors ``(n, c, h, w)`` and int64 labels.

    Returns ``(dataset, (x_train, y_train), (x_test, y_test))``; ``*_limit`` keep only the first N (0 = all).
    """
    from bioSNN import data

    ds = data.load(name)
    if not isinstance(ds, data.ImageData):
        raise ValueError(f"{name!r} is a {type(ds).__name__}, not an image dataset")
    mean, std = (0.5, 0.5) if name in SIGNED else (0.0, 1.0)

    def take(x, y, limit):
        if limit:
            x, y = x[:limit], y[:limit]
        return to_tensor_images(x, mean, std), torch.from_numpy(np.asarray(y)).long()

    return ds, take(ds.x_train, ds.y_train, train_limit), take(ds.x_test, ds.y_test, test_limit)


def random_crop_flip(
    x: torch.Tensor, pad: int = 4, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-sample random crop of a zero-padded batch ``(n, c, h, w)`` back to ``(h, w)``, and a random flip."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = dy[:, None] + torch.arange(h)[None, :]  # (n, h)
    cols = dx[:, None] + torch.arange(w)[None, :]  # (n, w)
    idx_n = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        out = torch.where(mask[:, None, None, None], out.flip(3), out)
    return out.contiguous()


AUGMENTATIONS = {
    "crop_flip": lambda x, g: random_crop_flip(x, pad=4, flip=True, generator=g),  # natural images (CIFAR)
    "crop": lambda x, g: random_crop_flip(x, pad=2, flip=False, generator=g),  # digits: shifts, never mirrored
    # 28x28 objects that may be mirrored (Fashion-MNIST): small shifts and flips
    "shift_flip": lambda x, g: random_crop_flip(x, pad=2, flip=True, generator=g),
}


def augmentation(augment: bool | str) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
    """The training transform named by ``augment``: False / "" none, True / "crop_flip" random crop (pad 4) and
    horizontal flip, "crop" random shifts by up to 2 pixels without flips (digits), "shift_flip" the same shifts
    plus flips (Fashion-MNIST)."""
    if augment is False or augment == "":
        return None
    name = "crop_flip" if augment is True else augment
    if name not in AUGMENTATIONS:
        raise ValueError(f"augment must be true/false or one of {sorted(AUGMENTATIONS)}, got {augment!r}")
    return AUGMENTATIONS[name]


def batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    rank: int = 0,
    world: int = 1,
    transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    skip: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of this rank's shard; the permutation depends only on ``seed`` (same on every rank).
    ``skip``: leave out the first ``skip`` batches (resuming inside an epoch); their transforms are still drawn,
    so the batches after them are the same as in an uninterrupted pass."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=g) if shuffle else torch.arange(len(x))
    per_rank = len(order) // world  # equal shard sizes keep DDP's collective calls in step
    order = order[rank::world][:per_rank]
    tg = torch.Generator().manual_seed(seed * 1000 + rank + 1)
    for b, i in enumerate(range(0, len(order), batch_size)):
        idx = order[i : i + batch_size]
        xb = x[idx]
        if transform is not None:
            xb = transform(xb, tg)
        if b >= skip:
            yield xb, y[idx]


def train_epoch(
    model: torch.nn.Module,
    data: Iterator,
    opt: torch.optim.Optimizer,
    time_steps: int = 0,
    encoder: Encoder = "direct",
    after_step: Callable[[], None] | None = None,
    progress=None,
    totals: dict | None = None,
    on_batch: Callable[[dict], None] | None = None,
    energy_penalty: float = 0.0,
) -> dict:
    """One pass: cross-entropy on ``model(x, time_steps, encoder)`` (ANN when ``time_steps == 0``).

    ``model`` may be a :class:`SpikingNet` or a ``DistributedDataParallel`` around one; ``after_step`` runs after
    every optimizer step (e.g. clamping trained leaks). ``totals`` (``batches``, ``samples``, ``correct``,
    ``loss_sum``) continues a pass that was interrupted; ``on_batch`` gets the running totals after each batch.
    ``energy_penalty`` α (SNN only) trains on ``cross-entropy + α · E_SNN/E_ANN``, the batch's compute-energy
    ratio (:meth:`SpikingNet.snn` with ``energy_cost``), which pushes spikes down where they cost most.
    Returns mean loss (cross-entropy, without the penalty), training accuracy and, with a penalty, the mean
    energy ratio E_SNN/E_ANN seen in training.
    """
    if energy_penalty < 0:
        raise ValueError(f"energy_penalty must be >= 0, got {energy_penalty}")
    if energy_penalty and time_steps == 0:
        raise ValueError("energy_penalty applies to SNN training (time_steps >= 1), not to the ANN")
    model.train()
    t = {"batches": 0, "samples": 0, "correct": 0, "loss_sum": 0.0, "energy_sum": 0.0, **(totals or {})}
    for xb, yb in data:
        if energy_penalty:
            logits, cost = model(xb, time_steps, encoder, energy_cost=True)
            ce = F.cross_entropy(logits, yb)
            loss = ce + energy_penalty * cost
            t["energy_sum"] += float(cost.detach()) * len(yb)
        else:
            logits = model(xb, time_steps, encoder)
            loss = ce = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step()
        n = len(yb)
        t["samples"] += n
        t["loss_sum"] += float(ce.detach()) * n
        t["correct"] += int((logits.argmax(1) == yb).sum())
        t["batches"] += 1
        if progress is not None:
            progress.update(n)
        if on_batch is not None:
            on_batch(dict(t))
    total = max(t["samples"], 1)
    out = {"loss": t["loss_sum"] / total, "accuracy": t["correct"] / total, "samples": t["samples"]}
    if energy_penalty:
        out["energy_ratio_snn_over_ann"] = t["energy_sum"] / total
    return out


@dataclass
class EvalResult:
    accuracy: float
    predictions: np.ndarray
    stats: RunStats | None

    def summary(self) -> dict:
        out = {"accuracy": self.accuracy}
        if self.stats is not None:
            out.update(self.stats.summary())
        return out


@torch.no_grad()
def evaluate(
    net: SpikingNet,
    x: torch.Tensor,
    y: torch.Tensor,
    time_steps: int = 0,
    encoder: Encoder = "direct",
    batch_size: int = 256,
    seed: int = 0,
) -> EvalResult:
    """Accuracy of the ANN (``time_steps == 0``) or the SNN at ``time_steps``, with spike/operation counts."""
    net.eval()
    preds, stats = [], None
    g = torch.Generator().manual_seed(seed)
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        if time_steps == 0:
            preds.append(net.ann(xb).argmax(1))
        else:
            out = net.snn(xb, time_steps, encoder, count=True, generator=g)
            preds.append(out.logits.argmax(1))
            stats = out.stats if stats is None else stats.merge(out.stats)
    p = torch.cat(preds).numpy()
    return EvalResult(float((p == y.numpy()).mean()), p, stats)


class Checkpoint:
    """One atomic bundle per training phase: model state, optimizer state, epoch and history (no pickle)."""

    def __init__(self, path, model_spec: dict, provenance: dict | None = None):
        from pathlib import Path

        self.path, self.model_spec, self.provenance = Path(path), model_spec, provenance or {}
        self.partial: dict | None = None  # running totals of an interrupted epoch, set by load()

    def save(
        self,
        net: SpikingNet,
        opt: torch.optim.Optimizer,
        epoch: int,
        history: dict,
        partial: dict | None = None,
        scheduler=None,
    ) -> None:
        """``epoch`` finished epochs; ``partial``: the running totals of the epoch in progress (from
        :func:`train_epoch`'s ``on_batch``). The global torch RNG state (dropout masks, Poisson input) and the
        learning-rate ``scheduler``'s state are saved every time, so a run resumed at an epoch boundary or between
        phases draws what it would have drawn and trains at the rate it would have had."""
        if not dist.is_main():
            return
        b = to_bundle(net, model=self.model_spec, provenance=self.provenance)
        write_checkpoint(self.path, b, opt, scheduler, partial, epoch=epoch, history=history)

    def load(self, net: SpikingNet, opt: torch.optim.Optimizer, scheduler=None) -> tuple[int, dict]:
        """Restore a saved phase into ``net``, ``opt`` and ``scheduler``, and the torch RNG as it was at the save;
        ``(0, empty history)`` when there is none. A checkpoint taken inside an epoch leaves that epoch's running
        totals in ``self.partial`` (None after an epoch boundary)."""
        self.partial = None
        if not self.path.exists():
            return 0, {"epoch": [], "train_loss": [], "train_accuracy": [], "test_accuracy": []}
        b = bundles.read(self.path)
        load_state(net, b)
        restore_training_state(b.arrays, b.extra, opt, scheduler, int(b.extra["epoch"]))
        self.partial = b.extra.get("partial")
        if self.partial is not None:
            log.info(
                "resumed %s in epoch %d after %d batches", self.path.name, b.extra["epoch"] + 1, self.partial["batches"]
            )
        else:
            log.info("resumed %s after epoch %d", self.path.name, b.extra["epoch"])
        return int(b.extra["epoch"]), b.extra["history"]


def step_schedule(opt: torch.optim.Optimizer, epochs: int, milestones: tuple[float, ...], gamma: float = 0.1):
    """Learning rate × ``gamma`` after each milestone, given as a fraction of ``epochs`` (rounded to an epoch,
    at least 1); ``None`` when there are no milestones (constant rate)."""
    if not milestones:
        return None
    if any(not 0 < f <= 1 for f in milestones):
        raise ValueError(f"learning-rate milestones are fractions of the epochs in (0, 1], got {milestones}")
    steps = sorted({max(1, int(round(f * epochs))) for f in milestones})
    return torch.optim.lr_scheduler.MultiStepLR(opt, steps, gamma)


def fit(
    net: SpikingNet,
    opt: torch.optim.Optimizer,
    ckpt: Checkpoint,
    train: tuple,
    test: tuple,
    epochs: int,
    time_steps: int = 0,
    encoder: Encoder = "direct",
    batch_size: int = 64,
    augment: bool | str = False,
    seed: int = 0,
    scheduler=None,
    label: str = "",
    verbose: bool = True,
    checkpoint_seconds: float = 600.0,
    energy_penalty: float = 0.0,
) -> dict:
    """Train for ``epochs`` (resuming from ``ckpt``), test after each epoch, checkpoint after each epoch and
    every ``checkpoint_seconds`` inside one (0: after every batch), so that a killed run loses minutes, not an
    epoch; resuming inside an epoch gives the same weights as an uninterrupted run.

    ``time_steps == 0`` trains the ANN; otherwise the SNN, with λ and θ clamped after every step. Under
    torchrun the model is wrapped in DDP and each rank trains on its shard. ``energy_penalty``: see
    :func:`train_epoch` (the history then also holds the training energy ratio E_SNN/E_ANN per epoch).
    ``verbose``: a progress bar over each epoch's samples. Every epoch's result is logged (``bioSNN.nn.train``).
    Returns the history.
    """
    import time

    from tqdm.auto import tqdm

    transform = augmentation(augment)  # fails early on a bad name
    x, y = train
    x_te, y_te = test
    start, history = ckpt.load(net, opt, scheduler)  # the schedule's state too: restored, not replayed
    model = dist.wrap(net)
    rank, world = dist.rank_world()
    partial = ckpt.partial
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        last_save = [time.monotonic()]

        def on_batch(totals, _epoch=epoch):
            if time.monotonic() - last_save[0] >= checkpoint_seconds:
                ckpt.save(net, opt, _epoch, history, partial=totals, scheduler=scheduler)
                last_save[0] = time.monotonic()

        stream = batches(
            x,
            y,
            batch_size,
            shuffle=True,
            seed=seed * 100 + epoch,
            rank=rank,
            world=world,
            transform=transform,
            skip=partial["batches"] if partial else 0,
        )
        with tqdm(
            total=len(x) // world,
            initial=partial["samples"] if partial else 0,
            unit="sample",
            leave=False,
            desc=f"{label} epoch {epoch + 1}/{epochs}",
            disable=not (verbose and dist.is_main()),
        ) as bar:
            stats = train_epoch(
                model,
                stream,
                opt,
                time_steps,
                encoder,
                after_step=net.clamp_ if time_steps else None,
                progress=bar,
                totals=partial,
                on_batch=on_batch,
                energy_penalty=energy_penalty,
            )
        partial = None
        if scheduler is not None:
            scheduler.step()
        acc = evaluate(net, x_te, y_te, time_steps, encoder, seed=seed).accuracy if dist.is_main() else 0.0
        for k, v in (
            ("epoch", epoch + 1),
            ("train_loss", stats["loss"]),
            ("train_accuracy", stats["accuracy"]),
            ("test_accuracy", acc),
        ):
            history[k].append(v)
        if energy_penalty:
            history.setdefault("train_energy_ratio_snn_over_ann", []).append(stats["energy_ratio_snn_over_ann"])
        ckpt.save(net, opt, epoch + 1, history, scheduler=scheduler)
        if dist.is_main():
            log.info(
                "%s epoch %d/%d: loss %.4f  train %.4f  test %.4f  (%.0f s)",
                label,
                epoch + 1,
                epochs,
                stats["loss"],
                stats["accuracy"],
                acc,
                time.perf_counter() - t0,
            )
    return history

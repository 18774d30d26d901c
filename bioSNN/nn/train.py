"""Training and evaluation loops shared by the PyTorch experiments (hybrid STDB, DIET-SNN).

In-memory batches (the datasets here fit in memory), optional data-parallel sharding (each rank of a
``torch.distributed`` group takes every ``world``-th sample of the same seeded permutation), the two image
transforms the experiments need (random crop with zero padding, horizontal flip — written here because
torchvision does not load beside the pinned torch), cross-entropy on the logits of either mode, and evaluation
that also gathers spike and operation counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .network import Encoder, RunStats, SpikingNet

__all__ = ["to_tensor_images", "random_crop_flip", "batches", "train_epoch", "evaluate", "EvalResult"]


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


def random_crop_flip(x: torch.Tensor, pad: int = 4, flip: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample random crop of a zero-padded batch ``(n, c, h, w)`` back to ``(h, w)``, and a random flip."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (n, h)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (n, w)
    idx_n = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        out = torch.where(mask[:, None, None, None], out.flip(3), out)
    return out.contiguous()


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = False, seed: int = 0,
            rank: int = 0, world: int = 1,
            transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of this rank's shard; the permutation depends only on ``seed`` (same on every rank)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=g) if shuffle else torch.arange(len(x))
    per_rank = len(order) // world  # equal shard sizes keep DDP's collective calls in step
    order = order[rank::world][:per_rank]
    tg = torch.Generator().manual_seed(seed * 1000 + rank + 1)
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        xb = x[idx]
        if transform is not None:
            xb = transform(xb, tg)
        yield xb, y[idx]


def train_epoch(model: torch.nn.Module, data: Iterator, opt: torch.optim.Optimizer, time_steps: int = 0,
                encoder: Encoder = "direct", after_step: Callable[[], None] | None = None,
                progress=None) -> dict:
    """One pass: cross-entropy on ``model(x, time_steps, encoder)`` (ANN when ``time_steps == 0``).

    ``model`` may be a :class:`SpikingNet` or a ``DistributedDataParallel`` around one; ``after_step`` runs after
    every optimizer step (e.g. clamping trained leaks). Returns mean loss and training accuracy.
    """
    model.train()
    total, correct, loss_sum = 0, 0, 0.0
    for xb, yb in data:
        logits = model(xb, time_steps, encoder)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step()
        n = len(yb)
        total += n
        loss_sum += float(loss.detach()) * n
        correct += int((logits.argmax(1) == yb).sum())
        if progress is not None:
            progress.update(n)
    return {"loss": loss_sum / max(total, 1), "accuracy": correct / max(total, 1), "samples": total}


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
def evaluate(net: SpikingNet, x: torch.Tensor, y: torch.Tensor, time_steps: int = 0, encoder: Encoder = "direct",
             batch_size: int = 256, seed: int = 0) -> EvalResult:
    """Accuracy of the ANN (``time_steps == 0``) or the SNN at ``time_steps``, with spike/operation counts."""
    net.eval()
    preds, stats = [], None
    g = torch.Generator().manual_seed(seed)
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        if time_steps == 0:
            preds.append(net.ann(xb).argmax(1))
        else:
            out = net.snn(xb, time_steps, encoder, count=True, generator=g)
            preds.append(out.logits.argmax(1))
            stats = out.stats if stats is None else stats.merge(out.stats)
    p = torch.cat(preds).numpy()
    return EvalResult(float((p == y.numpy()).mean()), p, stats)

"""Training, evaluation and checkpoints of the sequence models (LITE-SNN and its baselines).

Token data live in memory as one right-padded id matrix plus lengths (:class:`TokenData`). Mini-batches are
length-bucketed — the shuffled data is cut into pools of 50 batches, each pool sorted by length, and the batch
order shuffled again — so padded steps are few; a batch is trimmed to its longest sequence. Everything random
derives from the run's seed and the epoch (batch order) or the saved global torch RNG (dropout), so a run
resumed from its checkpoint, even one taken inside an epoch, ends bit-identical to an uninterrupted one.

The checkpoint is a bioSNN bundle (no pickle): the model's state, the optimizer's, the torch RNG, the epoch,
the history and the state of the model with the best score on the selection split so far.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bioSNN import bundles

from .bundle import STATE_PREFIX, load_state
from .checkpoint import restore_training_state, write_checkpoint
from .neurons import LIF

log = logging.getLogger(__name__)

__all__ = [
    "prepare_run",
    "TokenData",
    "length_batches",
    "evaluate_tokens",
    "SeqCheckpoint",
    "fit_loop",
    "fit_tokens",
    "text_bundle",
    "load_module_state",
    "count_parameters",
]

STATE, BEST = STATE_PREFIX, "best."


def prepare_run(run_dir, threads: int) -> tuple[Path, Path]:
    """Start of a sequence experiment's run: torch on ``threads`` threads; ``(run folder, its checkpoints/)``."""
    torch.set_num_threads(threads)
    run_dir = Path(run_dir)
    ckpts = run_dir / "checkpoints"
    ckpts.mkdir(exist_ok=True)
    return run_dir, ckpts


@dataclass(frozen=True)
class TokenData:
    """``tokens`` (n, L) int64 right-padded ids, ``lengths`` (n,), ``labels`` (n,) int64."""

    tokens: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        n = len(self.lengths)
        if self.tokens.ndim != 2 or len(self.tokens) != n or len(self.labels) != n:
            raise ValueError(f"token data: {len(self.tokens)} rows, {n} lengths and {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lens = self.lengths[idx]
        tok = self.tokens[idx, : int(lens.max())]
        return torch.from_numpy(tok), torch.from_numpy(lens), torch.from_numpy(self.labels[idx])

    def subset(self, idx: np.ndarray) -> TokenData:
        return TokenData(self.tokens[idx], self.lengths[idx], self.labels[idx])


def length_batches(
    lengths: np.ndarray, batch_size: int, seed: int, shuffle: bool = True, pool: int = 50
) -> list[np.ndarray]:
    """Index batches: shuffled (``seed``), sorted by length within pools of ``pool`` batches, batch order shuffled;
    without ``shuffle``, sorted by length overall (evaluation)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    out = []
    step = batch_size * pool
    for i in range(0, n, step):
        chunk = perm[i : i + step]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [out[k] for k in rng.permutation(len(out))]


def count_parameters(model: nn.Module, embedding: bool = True) -> int:
    """Trainable-or-not parameter count; ``embedding=False`` leaves out ``nn.Embedding`` tables."""
    skip = set()
    if not embedding:
        for m in model.modules():
            if isinstance(m, nn.Embedding):
                skip |= {id(p) for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


@torch.no_grad()
def evaluate_tokens(model: nn.Module, data: TokenData, batch_size: int = 256) -> dict:
    """Accuracy, per-sample predictions, and the model's operation/spike summary on ``data``."""
    model.eval()
    preds = np.zeros(len(data), np.int64)
    stats = None
    for idx in length_batches(data.lengths, batch_size, 0, shuffle=False):
        tok, lens, _ = data.batch(idx)
        out = model(tok, lens, count=True)
        preds[idx] = out.logits.argmax(1).numpy()
        stats = out.stats if stats is None else stats.merge(out.stats)
    acc = float((preds == data.labels).mean()) if len(data) else 0.0
    return {"accuracy": acc, "predictions": preds, **(stats.summary() if stats is not None else {})}


def _lif_params(model: nn.Module) -> dict:
    return {
        name: {"leak": float(m.leak.detach()), "threshold": float(m.threshold.detach())}
        for name, m in model.named_modules()
        if isinstance(m, LIF)
    }


def text_bundle(
    model: nn.Module, spec: dict, provenance: dict | None = None, extra: dict | None = None, best: dict | None = None
) -> bundles.Bundle:
    """A sequence model as a bundle: its state under ``state.``; populations for the token input, every LIF layer
    (leak, threshold, reset, steps per token) and the output; projections for its dense layers where their ends
    are populations (the rest — embedding, recurrent cells, attention — lives in the state arrays and
    ``extra["model"]``, the factory arguments that rebuild the module). ``best``: a second state (``best.``)."""
    arrays = {STATE + k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    if best:
        arrays.update({BEST + k: np.asarray(v) for k, v in best.items()})
    emb = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    pops = [bundles.Population("tokens", emb.num_embeddings if emb is not None else 1, "token_ids")]
    projs = []
    lifs = [(n, m) for n, m in model.named_modules() if isinstance(m, LIF)]
    layers = getattr(model, "layers", None)  # SpikingTextClassifier: layers[i] drives acts[i]
    steps = getattr(model, "steps_per_token", getattr(model, "time_steps", 1))
    head = getattr(model, "readout", None) or model.out  # classifiers' readout, translators' output layer
    for name, m in lifs:
        pops.append(
            bundles.Population(
                name,
                head.in_features,
                "lif_discrete",
                {
                    "leak": {"value": float(m.leak.detach()), "unit": "1"},
                    "v_threshold": {"value": float(m.threshold.detach()), "unit": "1"},
                    "reset": {"value": m.reset, "unit": ""},
                    "steps_per_token": {"value": int(steps), "unit": "1"},
                },
            )
        )
    pops.append(bundles.Population("output", head.out_features, "integrator"))
    if layers is not None:
        names = [n for n, _ in lifs]
        for i, lay in enumerate(layers):
            if i:
                projs.append(bundles.Projection(f"layers.{i}", names[i - 1], names[i], f"{STATE}layers.{i}.weight"))
        projs.append(bundles.Projection("readout", names[-1], "output", f"{STATE}readout.weight"))
    return bundles.Bundle(
        pops,
        projs,
        arrays,
        engine="torch",
        name=type(model).__name__,
        provenance=provenance or {},
        extra={"model": spec, **(extra or {})},
    )


def load_module_state(model: nn.Module, b: bundles.Bundle, prefix: str = STATE) -> None:
    """Copy a bundle's ``prefix`` state into ``model``: :func:`bioSNN.nn.bundle.load_state`."""
    load_state(model, b, prefix)


class SeqCheckpoint:
    """One atomic bundle per trained model: state, optimizer, learning-rate schedule, RNG, epoch, history, best
    state (no pickle)."""

    def __init__(self, path, spec: dict, provenance: dict | None = None):
        self.path, self.spec, self.provenance = Path(path), spec, provenance or {}

    def save(
        self, model, opt, epoch: int, history: dict, best: dict, partial: dict | None = None, scheduler=None
    ) -> None:
        b = text_bundle(model, self.spec, self.provenance, best=best["state"])
        write_checkpoint(
            self.path,
            b,
            opt,
            scheduler,
            partial,
            epoch=epoch,
            history=history,
            best={k: v for k, v in best.items() if k != "state"},
        )

    def load(self, model, opt, scheduler=None) -> tuple[int, dict, dict, dict | None]:
        """``(epochs done, history, best, partial)``; a fresh start when there is no checkpoint. ``opt`` and
        ``scheduler`` come back as they were at the save (the schedule restored, not replayed)."""
        fresh = {"epoch": [], "train_loss": [], "train_accuracy": [], "seconds": []}  # + select_<score>
        if not self.path.exists():
            return 0, fresh, {"score": -1.0, "epoch": 0, "state": None}, None
        b = bundles.read(self.path)
        load_module_state(model, b)
        restore_training_state(b.arrays, b.extra, opt, scheduler, int(b.extra["epoch"]))
        best = dict(b.extra["best"])
        best["state"] = {k[len(BEST) :]: np.array(v) for k, v in b.arrays.items() if k.startswith(BEST)} or None
        log.info(
            "resumed %s after %d epochs%s",
            self.path.name,
            b.extra["epoch"],
            f" and {b.extra['partial']['batches']} batches" if b.extra.get("partial") else "",
        )
        return int(b.extra["epoch"]), b.extra["history"], best, b.extra.get("partial")


def fit_loop(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    ckpt: SeqCheckpoint,
    n_items: int,
    order: Callable[[int], list],
    loss_of: Callable[[np.ndarray], tuple],
    score: Callable[[], float],
    epochs: int,
    clip: float = 5.0,
    label: str = "",
    progress: bool = True,
    checkpoint_seconds: float = 600.0,
    scheduler=None,
    score_name: str = "accuracy",
) -> tuple[dict, dict]:
    """The training loop of every sequence model: for each epoch the batches ``order(epoch)`` (index arrays, a
    function of the epoch alone), ``loss_of(idx) -> (loss, correct, counted)`` per batch (``correct``/``counted``:
    e.g. right labels or tokens), an optimizer step with gradient-norm clipping at ``clip`` (0: none) and the
    model's ``clamp_`` (trained leaks and thresholds); ``score()`` after each epoch (higher is better; the best
    state is kept, history key ``select_<score_name>``). Resumes from ``ckpt``, checkpoints after every epoch
    and every ``checkpoint_seconds`` inside one. Leaves the best state in ``model``; returns ``(history, best)``."""
    from tqdm.auto import tqdm

    start, history, best, partial = ckpt.load(model, opt, scheduler)
    history.setdefault(f"select_{score_name}", [])
    clamp = getattr(model, "clamp_", None)
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        model.train()
        tot = {
            "batches": 0,
            "samples": 0,
            "correct": 0,
            "counted": 0,
            "loss_sum": 0.0,
            "seconds": 0.0,
            **(partial or {}),
        }
        skip = tot["batches"]
        last = time.monotonic()
        batches = order(epoch)
        with tqdm(
            total=n_items,
            initial=tot["samples"],
            unit="seq",
            leave=False,
            disable=not progress,
            desc=f"{label} epoch {epoch + 1}/{epochs}",
        ) as bar:
            for idx in batches[skip:]:
                loss, correct, counted = loss_of(idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                if clamp is not None:
                    clamp()
                tot["batches"] += 1
                tot["samples"] += len(idx)
                tot["correct"] += int(correct)
                tot["counted"] += int(counted)
                tot["loss_sum"] += float(loss.detach()) * len(idx)
                bar.update(len(idx))
                if time.monotonic() - last >= checkpoint_seconds and tot["batches"] < len(batches):
                    ckpt.save(
                        model,
                        opt,
                        epoch,
                        history,
                        best,
                        partial={**tot, "seconds": tot["seconds"] + time.perf_counter() - t0},
                        scheduler=scheduler,
                    )
                    last = time.monotonic()
        partial = None
        if scheduler is not None:
            scheduler.step()
        value = float(score())
        seconds = tot["seconds"] + time.perf_counter() - t0
        for k, v in (
            ("epoch", epoch + 1),
            ("train_loss", tot["loss_sum"] / max(tot["samples"], 1)),
            ("train_accuracy", tot["correct"] / max(tot["counted"], 1)),
            (f"select_{score_name}", value),
            ("seconds", seconds),
        ):
            history[k].append(v)
        if value > best["score"]:
            best = {
                "score": value,
                "epoch": epoch + 1,
                "state": {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()},
            }
        ckpt.save(model, opt, epoch + 1, history, best, scheduler=scheduler)
        log.info(
            "%s epoch %d/%d: loss %.4f  train %.4f  select %s %.4f  (%.0f s)",
            label,
            epoch + 1,
            epochs,
            history["train_loss"][-1],
            history["train_accuracy"][-1],
            score_name,
            value,
            seconds,
        )
    if best["state"] is not None:
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in best["state"].items()})
    return history, {"score": best["score"], "epoch": best["epoch"], "neurons": _lif_params(model)}


def fit_tokens(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    ckpt: SeqCheckpoint,
    train: TokenData,
    select: TokenData,
    epochs: int,
    batch_size: int = 64,
    seed: int = 0,
    clip: float = 5.0,
    label: str = "",
    progress: bool = True,
    checkpoint_seconds: float = 600.0,
    scheduler=None,
) -> tuple[dict, dict]:
    """:func:`fit_loop` for a classifier: cross-entropy on ``train``'s labels, length-bucketed batches
    (:func:`length_batches`, seeded by ``seed`` and the epoch), selection by accuracy on ``select``."""

    def loss_of(idx):
        tok, lens, y = train.batch(idx)
        logits = model(tok, lens)
        return F.cross_entropy(logits, y), int((logits.argmax(1) == y).sum()), len(y)

    return fit_loop(
        model,
        opt,
        ckpt,
        len(train),
        lambda e: length_batches(train.lengths, batch_size, seed * 1000 + e),
        loss_of,
        lambda: evaluate_tokens(model, select)["accuracy"],
        epochs,
        clip,
        label,
        progress,
        checkpoint_seconds,
        scheduler,
    )

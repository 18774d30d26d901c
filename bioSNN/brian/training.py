"""The STDP training loop of every Brian2 experiment: present, compress, anneal, checkpoint, resume.

:class:`STDPTraining` drives an :class:`~bioSNN.brian.network.EnsembleNetwork` (one ensemble, or several joined
by cross-modal synapses) through epochs of item sequences. After every simulated chunk it

1. feeds the chunk's responses to an optional :class:`RunningCurve` (accuracy while training),
2. compresses every plastic projection (prune, quantize onto device levels, with error feedback) once
   ``interval`` more items were seen (:mod:`bioSNN.brian.compression`),
3. saves a checkpoint (:mod:`bioSNN.brian.bundle` plus the loop's counters, the error-feedback remainders and
   the curve), and
4. lowers the STDP rate as the annealing schedule says (:func:`~bioSNN.brian.stdp.eta_schedule`).

The checkpoint holds all the state the rest of the run depends on — weights, masks, thresholds, device
levels, remainders, the chunk counter that seeds the simulator's random numbers, the curve, the seconds spent
— so a run killed anywhere and resumed ends bit-identical to an uninterrupted one (timings aside).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import bundles
from . import bundle as brian_bundle
from . import readout
from .compression import CompressionConfig, compress_with_feedback
from .network import EnsembleNetwork
from .stdp import eta_schedule

log = logging.getLogger(__name__)

__all__ = ["STDPTraining", "RunningCurve", "previous_result", "residual_key"]


def residual_key(projection: str) -> str:
    """Checkpoint array of a projection's error-feedback remainder: an ensemble's input synapses
    (``input_exc.quantization_residual``, ``image.input_exc.quantization_residual``) or a cross-modal projection
    (``image_to_audio.quantization_residual``)."""
    if "_to_" in projection:
        return f"{projection}.quantization_residual"
    return brian_bundle.array_key(projection, "input_exc.quantization_residual")


def previous_result(out: Path, epochs: int = 1) -> dict | None:
    """The ``result.json`` a finished training of ``epochs`` epochs left in ``out``, or None. A result of fewer
    epochs (a run resumed to train longer) is kept as ``result_epochs<n>.json`` and None returned, so training
    goes on from its checkpoint."""
    done = out / "result.json"
    if not done.exists():
        return None
    prev = json.loads(done.read_text())
    if prev.get("epochs", 1) == epochs:
        return prev
    done.replace(out / f"result_epochs{prev.get('epochs', 1)}.json")
    return None


class RunningCurve:
    """Diehl & Cook's training curve, built as training goes: labels assigned on block b-1 classify block b (no
    extra simulation); each point sits at the number of training items seen after its block.

    Its whole state (the points so far, the last full block and the unfinished one, the repeat totals) goes into
    the checkpoint, so a resumed run draws the same curve as an uninterrupted one."""

    def __init__(self, block: int, n_classes: int):
        self.block, self.n_classes = block, n_classes
        self.images, self.accuracy = [], []
        self.seen = 0  # items in finished blocks
        self.prev: tuple[np.ndarray, np.ndarray] | None = None  # counts and labels of the last finished block
        self.cur_counts, self.cur_labels = None, np.zeros(0, np.int64)
        self.repeats_sum, self.repeats_n = 0, 0

    def add(self, counts: np.ndarray, labels: np.ndarray, repeats: np.ndarray) -> None:
        """Responses of the next training items (in order), their labels and repeats."""
        self.repeats_sum += int(np.sum(repeats))
        self.repeats_n += len(repeats)
        c = counts if self.cur_counts is None else np.concatenate([self.cur_counts, counts])
        lab = np.concatenate([self.cur_labels, labels])
        while len(lab) >= self.block:
            blk = (c[: self.block], lab[: self.block])
            c, lab = c[self.block :], lab[self.block :]
            self.seen += self.block
            if self.prev is not None:
                assign = readout.assign_labels(self.prev[0], self.prev[1], self.n_classes)
                self.accuracy.append(float((readout.predict(blk[0], assign, self.n_classes) == blk[1]).mean()))
                self.images.append(self.seen)
            self.prev = blk
        self.cur_counts, self.cur_labels = c, lab

    @property
    def mean_repeats(self) -> float | None:
        return self.repeats_sum / self.repeats_n if self.repeats_n else None

    _ARRAYS = ("prev_counts", "prev_labels", "cur_counts", "cur_labels")

    def state(self) -> tuple[dict, dict]:
        """(arrays, JSON) for a checkpoint."""
        n_exc = (
            self.prev[0].shape[1]
            if self.prev is not None
            else (self.cur_counts.shape[1] if self.cur_counts is not None else 0)
        )
        empty = np.zeros((0, n_exc), np.int32)
        arrays = {
            "prev_counts": self.prev[0] if self.prev else empty,
            "prev_labels": self.prev[1] if self.prev else np.zeros(0, np.int64),
            "cur_counts": self.cur_counts if self.cur_counts is not None else empty,
            "cur_labels": self.cur_labels,
        }
        return (
            {f"training.curve_{k}": v for k, v in arrays.items()},
            {
                "images": self.images,
                "accuracy": self.accuracy,
                "seen": self.seen,
                "has_prev": self.prev is not None,
                "repeats_sum": self.repeats_sum,
                "repeats_n": self.repeats_n,
            },
        )

    def restore(self, arrays: dict, js: dict) -> None:
        a = {k: arrays[f"training.curve_{k}"] for k in self._ARRAYS}
        self.images, self.accuracy, self.seen = list(js["images"]), list(js["accuracy"]), js["seen"]
        self.prev = (a["prev_counts"], a["prev_labels"]) if js["has_prev"] else None
        self.cur_counts, self.cur_labels = a["cur_counts"], a["cur_labels"]
        self.repeats_sum, self.repeats_n = js["repeats_sum"], js["repeats_n"]


class STDPTraining:
    """Train ``net`` with STDP, compressing as ``comp`` says, with a checkpoint at ``checkpoint`` after every
    chunk; built from that checkpoint when it exists (a resumed run).

    Parameters
    ----------
    net
        The network, built inside its backend block; its ``state``/``cross_state`` are what is trained.
    comp
        When and how to compress every plastic projection (input synapses of each ensemble and cross-modal
        synapses; a cross projection is renormalised to its ``w_sum`` when that is set).
    checkpoint
        The checkpoint bundle (written atomically; read here when it exists).
    eta_end
        STDP annealing: the rate multiplier falls geometrically from 1 to ``eta_end`` over all items of all
        epochs (:func:`~bioSNN.brian.stdp.eta_schedule`); 1 keeps the rule's own rate.
    curve
        Optional :class:`RunningCurve` fed with every chunk (single-ensemble networks), checkpointed with it.
    provenance
        Provenance of every bundle written (checkpoint and :meth:`bundle`).
    """

    def __init__(
        self,
        net: EnsembleNetwork,
        comp: CompressionConfig,
        checkpoint: Path,
        eta_end: float = 1.0,
        curve: RunningCurve | None = None,
        provenance: dict | None = None,
    ):
        self.net, self.comp, self.path, self.eta_end = net, comp, Path(checkpoint), eta_end
        self.curve, self.provenance = curve, provenance
        # the loop's counters: epoch and position in it (the next item), items seen in all, when to compress next,
        # chunks simulated (they seed the simulator's random numbers), seconds spent in earlier segments
        self.progress = {"epoch": 0, "pos": 0, "seen": 0, "next_compress": comp.start, "chunks": 0, "seconds": 0.0}
        self.residual: dict[str, np.ndarray | None] = {}  # error feedback: what rounding left out, per projection
        self.device: dict | None = None  # the device levels of the latest quantization
        self.column_gain: dict[str, np.ndarray] = {}  # per ensemble (per-neuron levels only)
        self._t0 = time.perf_counter()
        if self.path.exists():
            self._restore(bundles.read(self.path))
        self._seconds_before = self.progress["seconds"]

    # ------------------------------------------------------------------------------------------------ state
    def seconds(self) -> float:
        """Wall seconds of the training so far, all segments of the run (each up to its last checkpoint)."""
        return self._seconds_before + time.perf_counter() - self._t0

    def bundle(self, assignments: dict | None = None, extra: dict | None = None) -> bundles.Bundle:
        """The network as it is now (weights, masks, θ, device levels and gains), as a bundle."""
        net = self.net
        return brian_bundle.to_bundle(
            net.configs,
            net.state,
            net.cross_state,
            net.cross_cfg,
            assignments,
            device=self.device,
            column_gain=self.column_gain or None,
            provenance=self.provenance or {},
            extra=extra or {},
        )

    def save(self) -> None:
        self.progress.update(chunks=self.net.chunks_run, seconds=self.seconds())
        extra, curve = {"progress": dict(self.progress)}, {}
        if self.curve is not None:
            curve, extra["curve"] = self.curve.state()
        b = self.bundle(extra=extra)
        # training state, in the checkpoint only (not part of the deployed network); the error-feedback
        # remainders (target, source) like the projection's weights in the bundle (the engine holds (source, target))
        b.arrays.update({residual_key(k): np.ascontiguousarray(r.T) for k, r in self.residual.items() if r is not None})
        b.arrays.update(curve)
        bundles.write(self.path, b)

    def _restore(self, b: bundles.Bundle) -> None:
        net = self.net
        state, cross_state, _ = brian_bundle.state_from_bundle(b, net.configs)
        net.state.update(state)
        net.cross_state.update(cross_state)
        self.progress.update(b.extra["progress"])
        net.chunks_run = self.progress["chunks"]  # the simulator's random numbers go on where they stopped
        self.device = b.device
        gains = {n: brian_bundle.array_key(n, "input_exc.column_gain") for n in net.names}
        self.column_gain = {n: b.arrays[k] for n, k in gains.items() if k in b.arrays}
        self.residual = {
            k: np.ascontiguousarray(b.arrays[residual_key(k)].T)
            for k, _, _ in net.plastic_projections()
            if residual_key(k) in b.arrays
        }
        if self.curve is not None and "curve" in b.extra:
            self.curve.restore(b.arrays, b.extra["curve"])

    def compress(self) -> None:
        """One compression step of every plastic projection."""
        for key, st, w_sum in self.net.plastic_projections():
            st["w"], st["alive"], device, gain, self.residual[key] = compress_with_feedback(
                st["w"], st["alive"], self.comp, w_sum, self.residual.get(key)
            )
            self.device = device or self.device
            if gain is not None and "_to_" not in key:
                self.column_gain[key] = gain

    # -------------------------------------------------------------------------------------------------- loop
    def train(
        self,
        orders: list[dict[str, np.ndarray]],
        labels: list[np.ndarray] | None = None,
        progress: bool = False,
        desc: str = "epoch {epoch}",
        on_chunk: Callable[[EnsembleNetwork], None] | None = None,
    ) -> None:
        """Present ``orders[e]`` (item ids per ensemble) in epoch ``e``, plastic, from where the checkpoint left
        off; compress once more at the end (the deployed network: pruned and on device levels).

        ``labels[e]``: the items' classes, for the curve. ``on_chunk(net)`` runs after each chunk, before its
        compression step (e.g. to draw what the monitors recorded)."""
        net, comp, p = self.net, self.comp, self.progress
        total = sum(len(next(iter(o.values()))) for o in orders)
        net.eta_scale = eta_schedule(p["seen"], total, self.eta_end)
        last_line = [time.monotonic()]
        who = desc.replace("epoch {epoch}", "").strip() or "STDP training"
        for epoch in range(p["epoch"], len(orders)):
            order = orders[epoch]
            n = len(next(iter(order.values())))
            start, seen_at_start = (p["pos"] if epoch == p["epoch"] else 0), p["seen"]

            def chunk_done(done, _epoch=epoch, _start=start, _seen=seen_at_start, _n=n):
                last = net.last_chunk
                if self.curve is not None:
                    self.curve.add(
                        last.counts, labels[_epoch][_start + done - len(last.repeats) : _start + done], last.repeats
                    )
                if on_chunk is not None:
                    on_chunk(net)
                seen = _seen + done
                if comp.active and seen >= p["next_compress"]:
                    self.compress()
                    p["next_compress"] = seen + comp.interval
                ended = _start + done == _n  # a finished epoch is saved as the start of the next
                p.update(epoch=_epoch + ended, pos=0 if ended else _start + done, seen=seen)
                self.save()
                now = time.monotonic()
                if ended or now - last_line[0] >= 30.0:
                    last_line[0] = now
                    log.info(
                        "%s: epoch %d/%d, %d of %d images (%.0f s)",
                        who,
                        _epoch + 1,
                        len(orders),
                        _start + done,
                        _n,
                        self.seconds(),
                    )
                net.eta_scale = eta_schedule(seen, total, self.eta_end)

            ids = {k: v[start:] for k, v in order.items()}
            net.present(
                ids if len(ids) > 1 or "" not in ids else ids[""],
                plastic=True,
                on_chunk=chunk_done,
                progress=progress,
                desc=desc.format(epoch=epoch + 1),
            )
            p.update(epoch=epoch + 1, pos=0, seen=seen_at_start + n - start)
        if comp.active:
            self.compress()

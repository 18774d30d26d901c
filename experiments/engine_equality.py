"""Brian2 and the PyTorch engine on the same input spikes: do they fire the same excitatory spikes?

Takes a trained Diehl & Cook network (a compression run's ``variants/<variant>/network.npz``), draws the input
spikes of a labelling slice and a test slice once in the PyTorch engine (:class:`bioSNN.models.diehl_cook.
FrozenDiehlCook`, one stream per slice, recorded), replays the same spikes in Brian2 (``cpp_standalone``, one chunk
per slice, :class:`bioSNN.brian.network.DiehlCookNetwork` with ``replay=``), and compares every excitatory spike
(step and neuron), the spike counts and repeats of every image, the labels assigned from the labelling slice and
the test accuracy.

Usage: ``python -m bioSNN.experiments.engine_equality BUNDLE --out DIR [--n-label 1000 --n-test 1000]``
Writes ``DIR/metrics.json`` and ``DIR/settings.json`` (the arguments and the network's configuration; not a run
``config.json``: this study is no ``biosnn run`` experiment).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bioSNN import bundles, data
from bioSNN.atomic import write_json
from bioSNN.brian import bundle as brian_bundle
from bioSNN.brian import readout
from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.network import DiehlCookNetwork
from bioSNN.models.diehl_cook import FrozenDiehlCook
from bioSNN.monitors import MonitorSpec


def compare(torch_spikes, brian_spikes) -> dict:
    """Spike sets as ``{(step, neuron)}``: how many agree, and the first few that do not."""
    t, b = set(torch_spikes), set(brian_spikes)
    both = t & b
    return {
        "torch": len(t),
        "brian2": len(b),
        "equal": len(both),
        "fraction_equal": len(both) / max(len(t | b), 1),
        "only_torch": sorted(t - b)[:10],
        "only_brian2": sorted(b - t)[:10],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--n-label", type=int, default=1000, help="the last N training images label the neurons")
    ap.add_argument("--n-test", type=int, default=1000, help="the first N test images")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.bundle.is_file():
        raise SystemExit(f"error: {args.bundle}: no such bundle")
    b = bundles.read(args.bundle)
    net = FrozenDiehlCook.from_bundle(b)
    cfg = net.cfg
    state = brian_bundle.state_from_bundle(b, {"": cfg})[0][""]
    ds = data.load(args.dataset)
    x = np.concatenate([ds.x_train[-args.n_label :], ds.x_test[: args.n_test]]).reshape(-1, cfg.n_input)
    slices = {
        "label": (np.arange(args.n_label), ds.y_train[-args.n_label :]),
        "test": (np.arange(args.n_label, len(x)), ds.y_test[: args.n_test]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    command = " ".join(map(str, sys.argv[1:] if argv is None else argv))
    write_json(
        args.out / "settings.json",
        {
            "command": f"python -m bioSNN.experiments.engine_equality {command}",
            "bundle": str(args.bundle),
            "dataset": args.dataset,
            "n_label": args.n_label,
            "n_test": args.n_test,
            "seed": args.seed,
            "network": dataclasses.asdict(cfg),
        },
    )
    metrics, counts = {"n_exc": cfg.n_exc, "dt_ms": cfg.dt, "integration": cfg.integration}, {}
    for phase, (ids, _) in slices.items():
        t0 = time.perf_counter()
        r = net.present(
            x, ids, generator=torch.Generator().manual_seed(args.seed * 1_000_003 + len(counts)), record=True
        )
        t_torch = time.perf_counter() - t0
        steps, idx = r.input_spikes[0]
        # one Brian2 chunk holds the whole slice (replayed spikes cover one chunk), with room for a few more repeats
        bcfg = dataclasses.replace(cfg, chunk=r.slots + 20)
        with tempfile.TemporaryDirectory() as tmp:
            be = Backend("cpp_standalone", directory=tmp)
            with backend(be):
                bn = DiehlCookNetwork(
                    bcfg, x, be, monitors=(MonitorSpec("exc", spikes=True, keep_ms=1e12),), replay=(steps, idx)
                )
                bn.w, bn.alive, bn.theta = state["w"], state["alive"], state["theta"]
                t0 = time.perf_counter()
                p = bn.present(ids, plastic=False, progress=False)
                t_brian = time.perf_counter() - t0
                rec = next(iter(bn.recordings.values()))
        b_steps = np.rint(rec.spike_t / (cfg.dt * 1e-3)).astype(np.int64)
        last = int(r.slots * net.steps_per_slot)
        cmp = compare(
            zip(r.exc_spikes[0][0].tolist(), r.exc_spikes[0][1].tolist()),
            ((s, i) for s, i in zip(b_steps.tolist(), rec.spike_i.tolist()) if s < last),
        )
        metrics[phase] = {
            "images": len(ids),
            "input_spikes": int(len(steps)),
            "slots": int(r.slots),
            "excitatory_spikes": cmp,
            "counts_equal_images": int((p.counts == r.counts).all(1).sum()),
            "repeats_equal_images": int((p.repeats == r.repeats).sum()),
            "seconds": {"torch": t_torch, "brian2": t_brian},
        }
        counts[phase] = (r.counts, p.counts)
        print(
            f"{phase}: {cmp['equal']} of {max(cmp['torch'], cmp['brian2'])} excitatory spikes equal "
            f"({100 * cmp['fraction_equal']:.3f} %), counts equal on {metrics[phase]['counts_equal_images']} of "
            f"{len(ids)} images",
            flush=True,
        )
    y_lab, y_test = slices["label"][1], slices["test"][1]
    for k, engine in enumerate(("torch", "brian2")):
        assign = readout.assign_labels(counts["label"][k], y_lab, ds.n_classes)
        pred = readout.predict(counts["test"][k], assign, ds.n_classes)
        metrics[engine] = {"assignment": assign.tolist(), "accuracy": float((pred == y_test).mean())}
    metrics["assignments_equal"] = metrics["torch"]["assignment"] == metrics["brian2"]["assignment"]
    metrics["accuracy"] = metrics["torch"]["accuracy"]
    write_json(args.out / "metrics.json", metrics)
    print(
        f"accuracy: torch {metrics['torch']['accuracy']:.4f}, brian2 {metrics['brian2']['accuracy']:.4f}; "
        f"assignments equal: {metrics['assignments_equal']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Label and test a compression run's trained networks again, in either engine, with several input-spike seeds.

A run labels and tests each variant once, with one draw of Poisson input spikes. This study takes each
variant's saved network (``<run>/variants/<variant>/network.npz``) and repeats the labelling + test pass with
other seeds, in the PyTorch engine (:class:`bioSNN.models.diehl_cook.FrozenDiehlCook`), in the Brian2 engine, or
both: the spread over seeds is the yardstick for comparing the engines' accuracies (the two engines draw
different spikes from the same seed; fed the same spikes they give the same ones, see
``tests/models/test_diehl_cook.py`` and ``experiments/results/frozen_dc_n400``).

Usage: ``python -m bioSNN.experiments.compression_retest RUN_DIR --engines torch brian2 --seeds 0 1 2``
Writes ``retest.json`` into ``RUN_DIR`` (or ``--out``): per variant and engine, the accuracy of every seed, their
mean and standard deviation, and the seconds each pass took. Finished (variant, engine, seed) entries are kept
and skipped when the command is run again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

import numpy as np

from bioSNN import bundles
from bioSNN.atomic import write_json
from bioSNN.brian import bundle as brian_bundle
from bioSNN.brian import readout
from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.network import DiehlCookNetwork
from bioSNN.config import apply_overrides

from . import compression as experiment


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--engines", nargs="+", choices=("torch", "brian2"), default=["torch", "brian2"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=None, help="default: every variant of the run")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    cfg_path = args.run_dir / "config.json"
    if not cfg_path.is_file():
        raise SystemExit(f"error: {cfg_path}: no such file (RUN_DIR must be a compression run folder)")
    saved = json.loads(cfg_path.read_text())
    cfg = apply_overrides(experiment.Config(), saved["config"])
    variants = args.variants or list(cfg.variants)
    paths = {v: args.run_dir / "variants" / v.replace("+", "_") / "network.npz" for v in variants}
    for v, p in paths.items():
        if not p.is_file():
            raise SystemExit(f"error: {p}: no trained network of variant {v!r}")
    ds, x, y_tr, y_te, n_tr = experiment.load_images(cfg)
    label_ids, test_ids = np.arange(n_tr - cfg.n_label, n_tr), np.arange(n_tr, len(x))
    out = args.out or args.run_dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / "retest.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for v in variants:
        state = brian_bundle.state_from_bundle(bundles.read(paths[v]), {"": cfg.network})[0][""]
        for engine in args.engines:
            entry = results.setdefault(v, {}).setdefault(engine, {"accuracy": {}, "seconds": {}})
            for seed in args.seeds:
                if str(seed) in entry["accuracy"]:
                    continue
                run_cfg = dataclasses.replace(cfg, test_engine=engine, seed=seed, workers=1)
                net_cfg = dataclasses.replace(cfg.network, seed=seed)
                args_ = (run_cfg, net_cfg, state["w"], state["theta"], x, label_ids, test_ids)
                if engine == "torch":
                    lab, test = experiment.label_and_test(*args_)
                else:
                    be = Backend.for_run(cfg.backend, out / "retest")
                    with backend(be):
                        net = DiehlCookNetwork(net_cfg, x, be)
                        net.w, net.alive, net.state[""]["theta"] = state["w"], state["alive"], state["theta"]
                        lab, test = experiment.label_and_test(*args_, brian_net=net)
                assign = readout.assign_labels(lab.counts, y_tr[label_ids], ds.n_classes)
                acc = float((readout.predict(test.counts, assign, ds.n_classes) == y_te).mean())
                entry["accuracy"][str(seed)] = acc
                entry["seconds"][str(seed)] = {"label": lab.seconds, "test": test.seconds}
                accs = list(entry["accuracy"].values())
                entry["mean"] = statistics.fmean(accs)
                entry["std"] = statistics.stdev(accs) if len(accs) > 1 else None
                write_json(path, results)
                print(
                    f"{v:>12} {engine:>6} seed {seed}: accuracy {acc:.4f}  ({lab.seconds + test.seconds:.1f} s)",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where does compression cost accuracy? Prune and quantize a *trained* full network after training.

The compression experiment prunes and quantizes during training; this study takes the full network a
compression run trained (``<run>/variants/full/network.npz``), applies each compression scheme once to the
frozen weights, then labels and tests as the run did (same images, same seed), in the PyTorch engine
(``--engine torch``, default) or the Brian2 engine (one build serves every scheme).

Schemes use the compression experiment's grammar (:meth:`bioSNN.brian.compression.CompressionConfig.from_variant`)
with the run's own settings (pruning threshold, per-neuron levels, ``snap_to_absent``, zero state), so the
post-hoc and the during-training numbers differ only in *when* the scheme is applied: ``full``, ``pruned``,
``q<bits>``, ``pruned+q<bits>``, optionally ``:global`` (one level set for the whole array) and ``:raise``
(weak kept weights raised to the lowest state instead of pruned). Per-neuron levels are rescaled to the
normalisation sum ``w_sum``, as during training.

Usage: ``python -m bioSNN.experiments.compression_posthoc RUN_DIR --schemes full pruned q2 q2:global ...``
Writes ``posthoc_label<n>_test<n>.json`` (accuracy, synapses kept, fraction pruned per scheme) into ``RUN_DIR``
(or ``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from bioSNN import bundles
from bioSNN.atomic import write_json
from bioSNN.brian import bundle as brian_bundle
from bioSNN.brian import compression, readout
from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.network import DiehlCookNetwork
from bioSNN.config import apply_overrides

from . import compression as experiment


def apply_scheme(
    w: np.ndarray, alive: np.ndarray, comp: compression.CompressionConfig, w_sum: float
) -> tuple[np.ndarray, np.ndarray]:
    """The compressed ``(w, alive)`` of a trained ``(n_input, n_exc)`` weight array: one compression step
    (:func:`bioSNN.brian.compression.compress`) as the experiment takes it during training."""
    if not comp.active:
        return w.copy(), alive.copy()
    w, alive, _, _ = compression.compress(w.copy(), alive.copy(), comp, w_sum)
    return w, alive


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument(
        "--schemes",
        nargs="+",
        default=["full", "pruned", "q2", "q2:global", "pruned+q2", "pruned+q2:global", "pruned+q2:raise"],
    )
    ap.add_argument("--n-label", type=int, default=0, help="label on the last N of the run's labelling images")
    ap.add_argument("--n-test", type=int, default=0, help="test on the first N of the run's test images")
    ap.add_argument("--variant", default="full", help="the run's variant whose trained network is compressed")
    ap.add_argument(
        "--engine",
        choices=("torch", "brian2"),
        default="torch",
        help="the engine that labels and tests (default: torch, as the experiment does)",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    saved = json.loads((args.run_dir / "config.json").read_text())
    cfg = apply_overrides(experiment.Config(), saved["config"])
    schemes = {s: experiment.compression_for(s, cfg) for s in args.schemes}
    ds, x, y_tr, y_te, n_tr = experiment.load_images(cfg)
    net_cfg = dataclasses.replace(cfg.network, seed=cfg.seed)
    bundle = bundles.read(args.run_dir / "variants" / args.variant.replace("+", "_") / "network.npz")
    state = brian_bundle.state_from_bundle(bundle, {"": net_cfg})[0][""]
    n_label = min(args.n_label or cfg.n_label, cfg.n_label)
    n_test = min(args.n_test or len(y_te), len(y_te))
    out = args.out or args.run_dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"posthoc_label{n_label}_test{n_test}{'_brian2' if args.engine == 'brian2' else ''}.json"
    run_cfg = dataclasses.replace(cfg, test_engine=args.engine, workers=1)
    results = json.loads(path.read_text()) if path.exists() else {}
    be = Backend(
        cfg.backend if args.engine == "brian2" else "numpy",
        directory=str(out / "posthoc_project")
        if args.engine == "brian2" and cfg.backend.endswith("standalone")
        else None,
    )
    label_ids = np.arange(n_tr - n_label, n_tr)
    test_ids = np.arange(n_tr, n_tr + n_test)
    with backend(be):
        net = DiehlCookNetwork(net_cfg, x, be) if args.engine == "brian2" else None
        for name, scheme in schemes.items():
            if name in results:
                continue
            t0 = time.perf_counter()
            w, alive = apply_scheme(state["w"], state["alive"], scheme, net_cfg.w_sum)
            if net is not None:
                net.w, net.alive, net.state[""]["theta"] = w, alive, state["theta"]
            lab, test = experiment.label_and_test(run_cfg, net_cfg, w, state["theta"], x, label_ids, test_ids, net)
            assign = readout.assign_labels(lab.counts, y_tr[label_ids], ds.n_classes)
            acc = float((readout.predict(test.counts, assign, ds.n_classes) == y_te[:n_test]).mean())
            results[name] = {
                "accuracy": acc,
                "synapses_kept": int(alive.sum()),
                "fraction_pruned": float(1 - alive.mean()),
                "bits": scheme.bits,
                "test_spikes_per_image": float(test.counts.sum(1).mean()),
                "n_label": n_label,
                "n_test": n_test,
                "seconds": time.perf_counter() - t0,
            }
            write_json(path, results)
            print(f"{name:>24}: accuracy {acc:.4f}  pruned {100 * (1 - alive.mean()):.1f} %", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

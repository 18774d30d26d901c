"""Where does compression cost accuracy? Prune and quantize a *trained* full network after training.

The compression experiment prunes and quantizes during training; this study takes the full network a
compression run trained (``<run>/variants/full/network.npz``), applies each compression scheme once to the
frozen weights, then labels and tests exactly as the run did (same images, same seed). One build of the
Brian2 network serves every scheme, so a scheme costs one labelling + test pass.

Schemes are named ``prune<threshold>`` / ``q<bits>`` parts joined by ``+``, with options after ``:``:

- ``q2`` — the compression experiment's final step: alive weights on 2**bits device levels up to the largest
  alive weight of the whole array (one level set for the crossbar);
- ``q2:column`` — levels up to each excitatory neuron's own largest weight (a per-column read-out gain
  in hardware: one number per neuron);
- ``q2:renorm`` — after quantization each neuron's weights are rescaled to sum ``w_sum`` again, as the
  per-image normalisation of training does (also a per-column gain).

Usage: ``python -m bioSNN.experiments.compression_posthoc RUN_DIR --schemes full prune0.02 q2 q2:renorm ...``
Writes ``posthoc_label<n>_test<n>.json`` (accuracy, synapses kept, fraction pruned per scheme) into ``RUN_DIR``
(or ``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from pathlib import Path

import numpy as np

from bioSNN import bundles
from bioSNN.atomic import write_json
from bioSNN.brian import compression, readout
from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.network import DiehlCookNetwork
from bioSNN.config import apply_overrides
from bioSNN.brian import bundle as brian_bundle

from . import compression as experiment

_PART = re.compile(r"^(prune(?P<thr>[0-9.]+)|q(?P<bits>\d)(?::(?P<opt>column|renorm|column\+renorm))?)$")


def parse_scheme(name: str) -> dict:
    """``full``, or ``+``-joined parts ``prune<thr>`` and ``q<bits>[:column|:renorm|:column+renorm]``."""
    out = {"prune": None, "bits": 0, "column": False, "renorm": False}
    if name == "full":
        return out
    parts = re.split(r"\+(?=prune|q\d)", name)
    for part in parts:
        m = _PART.match(part)
        if not m:
            raise ValueError(f"bad scheme part {part!r} in {name!r}: use prune<threshold>, q<bits>[:column|:renorm]")
        if m.group("thr"):
            out["prune"] = float(m.group("thr"))
        else:
            out["bits"] = int(m.group("bits"))
            opt = m.group("opt") or ""
            out["column"], out["renorm"] = "column" in opt, "renorm" in opt
    return out


def apply_scheme(w: np.ndarray, alive: np.ndarray, scheme: dict, w_sum: float) -> tuple[np.ndarray, np.ndarray]:
    """The compressed ``(w, alive)`` of a trained ``(n_input, n_exc)`` weight array."""
    w, alive = w.copy(), alive.copy()
    if scheme["prune"] is not None:
        w, alive = compression.prune(w, alive, scheme["prune"])
    bits = scheme["bits"]
    if bits:
        zero = scheme["prune"] is None  # as the experiment's default: no zero state for kept synapses when pruning
        if scheme["column"]:
            w = compression.quantize_columns(w, alive, bits, zero, w_sum if scheme["renorm"] else None)[0]
        else:
            w = compression.quantize(w, alive, bits, zero)[0]
            if scheme["renorm"]:
                s = w.sum(0)
                w = w * np.where(s > 0, w_sum / np.maximum(s, 1e-12), 1.0)
    return w, alive


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--schemes", nargs="+", default=["full", "prune0.02", "q2", "q2:renorm", "q2:column",
                                                     "prune0.02+q2", "prune0.02+q2:renorm"])
    ap.add_argument("--n-label", type=int, default=0, help="label on the last N of the run's labelling images")
    ap.add_argument("--n-test", type=int, default=0, help="test on the first N of the run's test images")
    ap.add_argument("--variant", default="full", help="the run's variant whose trained network is compressed")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    saved = json.loads((args.run_dir / "config.json").read_text())
    cfg = apply_overrides(experiment.Config(), saved["config"])
    schemes = {s: parse_scheme(s) for s in args.schemes}
    ds, x, y_tr, y_te, n_tr = experiment._data(cfg)
    net_cfg = dataclasses.replace(cfg.network, seed=cfg.seed)
    bundle = bundles.read(args.run_dir / "variants" / args.variant.replace("+", "_") / "network.npz")
    state = brian_bundle.state_from_bundle(bundle, {"": net_cfg})[0][""]
    n_label = min(args.n_label or cfg.n_label, cfg.n_label)
    n_test = min(args.n_test or len(y_te), len(y_te))
    out = args.out or args.run_dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"posthoc_label{n_label}_test{n_test}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    be = Backend(cfg.backend, directory=str(out / "posthoc_project") if cfg.backend.endswith("standalone") else None)
    label_ids = np.arange(n_tr - n_label, n_tr)
    test_ids = np.arange(n_tr, n_tr + n_test)
    with backend(be):
        net = DiehlCookNetwork(net_cfg, x, be)
        for name, scheme in schemes.items():
            if name in results:
                continue
            t0 = time.perf_counter()
            w, alive = apply_scheme(state["w"], state["alive"], scheme, net_cfg.w_sum)
            net.w, net.alive, net.theta = w, alive, state["theta"]
            lab = net.present(label_ids, plastic=False, progress=False)
            assign = readout.assign_labels(lab.counts, y_tr[label_ids], ds.n_classes)
            test = net.present(test_ids, plastic=False, progress=False)
            acc = float((readout.predict(test.counts, assign, ds.n_classes) == y_te[:n_test]).mean())
            results[name] = {"accuracy": acc, "synapses_kept": int(alive.sum()),
                             "fraction_pruned": float(1 - alive.mean()), "bits": scheme["bits"],
                             "test_spikes_per_image": float(test.counts.sum(1).mean()),
                             "n_label": n_label, "n_test": n_test, "seconds": time.perf_counter() - t0}
            write_json(path, results)
            print(f"{name:>24}: accuracy {acc:.4f}  pruned {100 * (1 - alive.mean()):.1f} %", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Labelling + test of a trained Diehl & Cook network: the Brian2 engine against the PyTorch engine, side by side.

The network is a compression run's saved bundle (``--bundle RUN/variants/full/network.npz``; MNIST, e.g.
N = 400 from ``biosnn run compression --preset full``). Each case labels on the last ``--n-label`` MNIST
training images and tests on the first ``--n-test`` test images, as the experiment does:

- ``brian2-cpp_standalone``: :class:`bioSNN.brian.network.DiehlCookNetwork` on its standalone backend (1 thread,
  the experiment's setting; the project build is timed separately), images one after another in chunks;
- ``torch-fused``: :class:`bioSNN.models.diehl_cook.FrozenDiehlCook` with its compiled CPU kernel, ``--threads``
  threads, one stream per ``chunk`` images (the experiment's default);
- ``torch-tensor``: the same network stepped with tensor operations (float64; 200 streams), on the first
  ``--tensor-images`` test images only (it is the slow reference; its images/s are per image like the others).

Reports accuracy, seconds and images per second of each case and the speed-up over Brian2; writes
``frozen_dc_<name>.json`` into ``--out``.

Usage: ``python benchmarks/frozen_dc.py --bundle RUN/variants/full/network.npz [--cases ...]``
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", required=True, help="a compression run's variants/<variant>/network.npz (MNIST)")
    ap.add_argument("--name", default=None, help="result name (default: the bundle's network size)")
    ap.add_argument("--cases", nargs="+", default=["brian2-cpp_standalone", "torch-fused", "torch-tensor"])
    ap.add_argument("--n-label", type=int, default=10000)
    ap.add_argument("--n-test", type=int, default=10000)
    ap.add_argument("--tensor-images", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args(argv)

    from bioSNN import bundles, data
    from bioSNN.brian import bundle as brian_bundle
    from bioSNN.brian import readout
    from bioSNN.brian.backend import Backend, backend
    from bioSNN.brian.network import DiehlCookNetwork
    from bioSNN.models.diehl_cook import FrozenDiehlCook

    b = bundles.read(args.bundle)
    net = FrozenDiehlCook.from_bundle(b)
    cfg = net.cfg
    state = brian_bundle.state_from_bundle(b, {"": cfg})[0][""]
    ds = data.load("mnist")
    x = np.concatenate([ds.x_train[-args.n_label :], ds.x_test[: args.n_test]]).reshape(-1, cfg.n_input)
    y_lab, y_test = ds.y_train[-args.n_label :], ds.y_test[: args.n_test]
    label_ids, test_ids = np.arange(args.n_label), np.arange(args.n_label, len(x))
    torch.set_num_threads(args.threads)
    results = {}

    def score(name, lab_counts, test_counts, seconds, images, extra=None):
        if lab_counts is not None:
            assign = readout.assign_labels(lab_counts, y_lab, 10)
            acc = float((readout.predict(test_counts, assign, 10) == y_test).mean())
        else:
            acc = None
        results[name] = {
            "accuracy": acc,
            "seconds": seconds,
            "images": images,
            "images_per_second": images / seconds,
            **(extra or {}),
        }
        print(
            f"{name:>24}: {images / seconds:8.1f} images/s  ({seconds:.1f} s for {images} images)"
            + (f"  accuracy {acc:.4f}" if acc is not None else ""),
            flush=True,
        )

    for case in args.cases:
        if case == "brian2-cpp_standalone":
            with tempfile.TemporaryDirectory() as tmp:
                be = Backend("cpp_standalone", directory=tmp)
                with backend(be):
                    t0 = time.perf_counter()
                    bn = DiehlCookNetwork(cfg, x, be)
                    bn.w, bn.alive, bn.theta = state["w"], state["alive"], state["theta"]
                    build = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    lab = bn.present(label_ids, plastic=False, progress=False)
                    test = bn.present(test_ids, plastic=False, progress=False)
                    wall = time.perf_counter() - t0
            score(
                case,
                lab.counts,
                test.counts,
                wall,
                len(x),
                {"build_seconds": build + bn.build_seconds, "simulated_seconds": lab.seconds + test.seconds},
            )
        elif case == "torch-fused":
            t0 = time.perf_counter()
            counts = [
                net.present(
                    x,
                    ids,
                    streams=-(-len(ids) // cfg.chunk),
                    generator=torch.Generator().manual_seed(args.seed * 1_000_003 + phase),
                    kernel="fused",
                    threads=args.threads,
                ).counts
                for phase, ids in enumerate((label_ids, test_ids))
            ]
            score(case, *counts, time.perf_counter() - t0, len(x), {"threads": args.threads})
        elif case == "torch-tensor":
            ids = test_ids[: args.tensor_images]
            t0 = time.perf_counter()
            net.present(x, ids, streams=200, generator=torch.Generator().manual_seed(args.seed), kernel="tensor")
            score(case, None, None, time.perf_counter() - t0, len(ids), {"threads": args.threads, "streams": 200})
        else:
            raise SystemExit(f"unknown case {case!r}")
    base = results.get("brian2-cpp_standalone")
    if base:
        for r in results.values():
            r["speedup_vs_brian2"] = r["images_per_second"] / base["images_per_second"]
    name = args.name or f"n{cfg.n_exc}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "bundle": str(args.bundle),
        "n_exc": cfg.n_exc,
        "n_label": args.n_label,
        "n_test": args.n_test,
        "machine": {
            "cpus": __import__("os").cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
        },
        "cases": results,
    }
    (out / f"frozen_dc_{name}.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

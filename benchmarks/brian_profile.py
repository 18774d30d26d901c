"""Where the time of Diehl & Cook training goes: Brian2's standalone profiling, seconds per code object.

Trains the network of ``biosnn run compression`` (784 Poisson inputs → N excitatory/inhibitory, power-law STDP,
350 ms image + 150 ms rest, dt 0.5 ms) on the first MNIST training images, one chunk on ``cpp_standalone`` with
profiling on (one thread), and prints each code object's share of the simulation time, for the formulation
before the engine's speed-ups (``before``: per-synapse STDP traces, one uniform draw per input and step, Brian2's
own code) and today's (``after``: see ``benchmarks/brian_throughput.py``). Brian2's timers read the clock twice
per code object and step, which costs about 1 µs each: objects that do almost nothing show that floor.

Usage: ``BIOSNN_DATA=../shared/data python benchmarks/brian_profile.py --n-exc 100 400 1600 --images 100``
(writes ``benchmarks/results/brian_profile.json``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def profile(images: np.ndarray, n_exc: int, formulation: str, workdir: Path) -> dict:
    from bioSNN.brian.backend import Backend, backend
    from bioSNN.brian.network import DiehlCookConfig, DiehlCookNetwork

    before = formulation == "before"
    extra = {"traces": "synapse", "poisson": "per_step"} if before else {}
    cfg = DiehlCookConfig(n_exc=n_exc, chunk=len(images), **extra)
    be = Backend("cpp_standalone", directory=str(workdir), profile=True, vectorize=not before)
    with backend(be):
        net = DiehlCookNetwork(cfg, images, be)
        t0 = time.perf_counter()
        p = net.present(np.arange(len(images)), plastic=True, progress=False)
        wall = time.perf_counter() - t0 - net.build_seconds
        info = net.profiling_info()
    total = sum(info.values())
    return {
        "n_exc": n_exc,
        "formulation": formulation,
        "images": len(images),
        "slots": p.slots,
        "images_per_s": len(images) / p.seconds,
        "wall_s": wall,
        "profiled_s": total,
        "objects": {k: {"s": v, "share": v / total} for k, v in info.items()},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-exc", type=int, nargs="+", default=[100, 400, 1600])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--formulations", nargs="+", default=["before", "after"], choices=["before", "after"])
    ap.add_argument("--top", type=int, default=8, help="code objects printed per case")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    from bioSNN import data

    imgs = data.load("mnist").x_train[: args.images].reshape(args.images, -1)
    results = []
    for n in args.n_exc:
        for f in args.formulations:
            with tempfile.TemporaryDirectory() as d:
                r = profile(imgs, n, f, Path(d))
            results.append(r)
            print(f"\nN = {n}, {f}: {r['images_per_s']:.1f} images/s (profiled {r['profiled_s']:.1f} s)")
            for name, v in list(r["objects"].items())[: args.top]:
                print(f"  {name:<45} {v['s']:8.2f} s  {100 * v['share']:5.1f} %")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "brian_profile.json").write_text(json.dumps({"images": args.images, "results": results}, indent=1))


if __name__ == "__main__":
    main()

"""Test images per second of one trained network in the PyTorch engine and, exported to NIR, in Brian2.

The network is the DIET digits network of ``biosnn run diet --preset quick`` (VGG5 at width 0.25 on the 8×8
digits, T = 5, direct input, trained leaks and thresholds), the hybrid one (``--experiment hybrid``: IF neurons,
Poisson input, T = 5), or the bundle given with ``--bundle``. It is
written to NIR (:func:`bioSNN.models.from_bundle.export_bundle`) and built in Brian2 from the file
(:class:`bioSNN.interop.nir_brian.NIRBrianNetwork`). Cases, on the 450 test images:

- ``torch``: the PyTorch engine as it runs (float32, one batch of all images, ``--threads`` threads);
- ``torch-float64``: the same network in float64 (the reference for the spike comparison);
- ``brian2-numpy`` and ``brian2-cpp_standalone``: the NIR graph in Brian2 (float64; images one after another
  in one simulation; for ``cpp_standalone`` the build is timed separately and the binary is run ``--repeats``
  times with the images as a run argument).

Every case reports accuracy; the Brian2 cases also the number of spikes that differ from ``torch-float64``
in every layer. Prints a table and writes ``nir_brian_<bundle name>.json`` into ``--out``.

Usage: ``python benchmarks/nir_brian.py [--experiment diet|hybrid | --bundle RUN/diet_T5.npz]``
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def quick_bundle(work: Path, experiment: str = "diet") -> Path:
    """Train the quick preset of ``experiment`` (diet or hybrid) into ``work`` (a minute or two) and return its
    T = 5 bundle."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bioSNN.cli",
            "run",
            experiment,
            "--preset",
            "quick",
            "--out",
            str(work),
            "--no-progress",
        ],
        check=True,
    )
    (run,) = [p for p in work.iterdir() if p.is_dir()]
    return run / f"{experiment}_T5.npz"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", help="a PyTorch-engine bundle (default: train the quick preset of --experiment)")
    ap.add_argument(
        "--experiment",
        choices=["diet", "hybrid"],
        default="diet",
        help="whose quick preset to train when no --bundle is given (hybrid: Poisson input)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args(argv)

    import nir

    from bioSNN import bundles, data
    from bioSNN.brian.backend import Backend, backend
    from bioSNN.interop.nir_brian import NIRBrianNetwork
    from bioSNN.models.from_bundle import export_bundle, network_from_bundle
    from bioSNN.nn.train import to_tensor_images

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="nir_brian_"))
    bundle = Path(args.bundle) if args.bundle else quick_bundle(tmp / "runs", args.experiment)
    graph_path = tmp / "net.nir"
    export_bundle(bundle, graph_path)
    graph = nir.read(graph_path)
    T, encoder = int(graph.metadata["time_steps"]), str(graph.metadata["encoder"])
    ds = data.load(bundles.read(bundle).provenance.get("dataset") or "digits")
    x, y = to_tensor_images(ds.x_test), np.asarray(ds.y_test)
    net = network_from_bundle(bundles.read(bundle)).eval()
    names = {n.metadata["name"]: k for k, n in graph.nodes.items() if n.metadata and "name" in n.metadata}
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731  (the same Poisson draws for every case)

    rows: dict[str, dict] = {}
    with torch.no_grad():
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = net.snn(x, T, encoder, generator=gen())
            times.append(time.perf_counter() - t0)
        rows["torch"] = {
            "images_per_s": len(x) / statistics.median(times),
            "accuracy": float((out.logits.argmax(1).numpy() == y).mean()),
        }
        ref = copy.deepcopy(net).double().snn(x.double(), T, encoder, generator=gen(), record=True)
    ref_spikes = {names[k]: v.numpy() for k, v in ref.spikes.items()}
    rows["torch-float64"] = {"accuracy": float((ref.logits.argmax(1).numpy() == y).mean())}

    for name in ("numpy", "cpp_standalone"):
        be = Backend(name, directory=str(tmp / "brian_project") if name == "cpp_standalone" else None)
        with backend(be):
            bn = NIRBrianNetwork(graph, images=len(x))
            frames = bn.frames_for(x.double(), generator=gen())
            runs = [bn.run(frames) for _ in range(args.repeats if name == "cpp_standalone" else 1)]
        res = runs[-1]
        rows[f"brian2-{name}"] = {
            "images_per_s": len(x) / statistics.median(r.seconds for r in runs),
            "build_s": runs[0].build_seconds,
            "accuracy": float((res.predictions == y).mean()),
            "spikes_differing": {k: int((ref_spikes[k] != v).sum()) for k, v in res.spikes.items()},
            "spikes": {k: int(v.sum()) for k, v in res.spikes.items()},
            "max_abs_output_difference": float(np.abs(res.outputs - ref.logits.numpy()).max()),
        }

    results = {
        "bundle": str(bundle),
        "time_steps": T,
        "encoder": encoder,
        "images": len(x),
        "threads": args.threads,
        "repeats": args.repeats,
        "machine": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "brian2": __import__("brian2").__version__,
        "nir": nir.__version__,
        "cases": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"nir_brian_{Path(bundle).stem}.json").write_text(json.dumps(results, indent=2))
    print(f"{'case':24s} {'images/s':>10s} {'build s':>8s} {'accuracy':>9s}  spikes differing (of all)")
    for k, r in rows.items():
        ips = f"{r['images_per_s']:10.1f}" if "images_per_s" in r else f"{'':10s}"
        build = f"{r['build_s']:8.1f}" if "build_s" in r else f"{'':8s}"
        diff = ""
        if "spikes_differing" in r:
            diff = f"{sum(r['spikes_differing'].values())} of {sum(r['spikes'].values())}"
        print(f"{k:24s} {ips} {build} {r['accuracy']:9.4f}  {diff}")


if __name__ == "__main__":
    main()

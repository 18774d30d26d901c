"""Training throughput of the Diehl & Cook network (images per second) against the usual ways to run it.

Side by side in one run, on the same machine, same network (784 inputs → N excitatory/inhibitory, power-law
STDP), same presentation (350 ms image + 150 ms rest, dt 0.5 ms), MNIST training images:

- ``biosnn``          bioSNN on ``cpp_standalone``: one build, the epoch as chunks of compiled simulation with the
                      repeat rule, normalisation and resets scheduled inside (build time reported separately);
                      today's formulation: STDP traces per neuron, interval-drawn Poisson inputs, vectorised
                      neuron updates (:class:`~bioSNN.brian.ensemble.DiehlCookConfig`, ``Backend.vectorize``);
- ``biosnn-before``   the same network in the formulation before those three (per-synapse event-driven traces,
                      one uniform draw per input and step, Brian2's own code);
- ``biosnn-reset``    ``biosnn`` with the 150 ms rest replaced by an explicit state reset;
- ``multimodal``, ``multimodal-before`` the two-ensemble network of ``biosnn run multimodal`` (784 MNIST pixels and
                      800 spoken-digit features, N each, cross-modal STDP both ways), paired training items;
- ``plain-standalone`` a bare single ``cpp_standalone`` run of the same network with TimedArray input and no
                      per-image operations (the speed a user gets from Brian2 alone);
- ``runtime-loop``    the customary Brian2 way: runtime (cython) mode, one ``net.run`` per image and rest,
                      normalisation in Python between images;
- ``bindsnet``        BindsNET's ``DiehlAndCook2015`` model with the same times, if BindsNET is importable
                      (``pip install --no-deps bindsnet==0.3.4``; its package ``__init__`` imports torchvision,
                      so the benchmark imports the submodules it needs directly).

Every case runs in a fresh process (its peak memory is that of the process and its simulation binary alone).
Usage: ``python benchmarks/brian_throughput.py --n-exc 100 400 --images 300 --out benchmarks/results``
(needs BIOSNN_DATA or a cached MNIST). Prints a table and writes ``brian_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


BEFORE = {"traces": "synapse", "poisson": "per_step"}  # with Backend(vectorize=False)


def bench_biosnn(images, n_exc, t_rest, workdir, before=False):
    from bioSNN.brian.backend import Backend, backend
    from bioSNN.brian.network import DiehlCookConfig, DiehlCookNetwork

    cfg = DiehlCookConfig(n_exc=n_exc, t_rest=t_rest, chunk=len(images) + 20, **(BEFORE if before else {}))
    be = Backend("cpp_standalone", directory=str(workdir), vectorize=not before)
    with backend(be):
        net = DiehlCookNetwork(cfg, images, be)
        net.present(np.arange(min(20, len(images))), plastic=True, progress=False)  # build + warm-up
        p = net.present(np.arange(len(images)), plastic=True, progress=False)
        return {
            "images_per_s": len(images) / p.seconds,
            "build_s": net.build_seconds,
            "repeats": int(p.repeats.sum()),
            "peak_rss_mb": max(_rss_mb(), _rss_mb(resource.RUSAGE_CHILDREN)),
        }


def bench_multimodal(n_items, n_exc, workdir, before=False):
    import dataclasses

    from bioSNN.brian.backend import Backend, backend
    from bioSNN.brian.network import EnsembleNetwork
    from bioSNN.experiments import multimodal

    cfg = multimodal.Config()
    d = multimodal.prepare(cfg)
    extra = dict(BEFORE if before else {}, n_exc=n_exc, chunk=n_items + 20)
    configs = {n: dataclasses.replace(getattr(cfg, n), **extra) for n in ("image", "audio")}
    stimuli = {"image": d["images"], "audio": d["audio"]}
    ids = {"image": d["train"][0][:n_items], "audio": d["train"][1][:n_items]}
    be = Backend("cpp_standalone", directory=str(workdir), vectorize=not before)
    with backend(be):
        net = EnsembleNetwork({n: (configs[n], stimuli[n]) for n in configs}, be, cross=cfg.cross)
        net.present({n: v[:20] for n, v in ids.items()}, plastic=True, progress=False)  # build + warm-up
        p = net.present(ids, plastic=True, progress=False)
        return {
            "images_per_s": n_items / p.seconds,
            "build_s": net.build_seconds,
            "repeats": int(p.repeats.sum()),
            "peak_rss_mb": max(_rss_mb(), _rss_mb(resource.RUSAGE_CHILDREN)),
            "note": "items are image+audio pairs",
        }


def _plain_network(b2, rates, n_exc, namespace=None):
    """The same network written plainly; ``rates``: a rate expression (with ``namespace``) or a settable
    initial rate (the customary loop assigns new rates before each image)."""
    from bioSNN.brian.network import DiehlCookConfig
    from bioSNN.brian.neurons import ExcitatoryParams, InhibitoryParams, excitatory_model, inhibitory_model
    from bioSNN.brian.stdp import PowerLawSTDP

    c = DiehlCookConfig()  # the engine's defaults: integration, spike gap, STDP
    em = excitatory_model(ExcitatoryParams(), c.integration, c.dt)
    im = inhibitory_model(InhibitoryParams(), c.integration, c.dt)
    sm = PowerLawSTDP().synapse_model()
    inp = b2.PoissonGroup(784, rates=rates, namespace=namespace)
    exc = b2.NeuronGroup(
        n_exc,
        em.equations,
        threshold=em.threshold,
        reset=em.reset,
        refractory=em.refractory,
        method=em.method,
        namespace=em.namespace,
    )
    inh = b2.NeuronGroup(
        n_exc,
        im.equations,
        threshold=im.threshold,
        reset=im.reset,
        refractory=im.refractory,
        method=im.method,
        namespace=im.namespace,
    )
    exc.v, inh.v, exc.theta, exc.plastic = -65 * b2.mV, -60 * b2.mV, 20 * b2.mV, 1.0
    syn = b2.Synapses(inp, exc, sm.model, on_pre=sm.on_pre, on_post=sm.on_post, namespace=sm.namespace)
    syn.connect()
    syn.w, syn.alive, syn.learning, syn.eta_scale = "0.003 + 0.3 * rand()", 1.0, 1.0, 1.0
    ei = b2.Synapses(exc, inh, on_pre="ge_post += 10.4")
    ei.connect(j="i")
    ie = b2.Synapses(inh, exc, on_pre="gi_post += 17.0")
    ie.connect(condition="i != j")
    return b2.Network(inp, exc, inh, syn, ei, ie), syn


def bench_plain_standalone(images, n_exc, workdir):
    import brian2 as b2

    from bioSNN.brian.backend import Backend, backend

    with backend(Backend("cpp_standalone", directory=str(workdir), vectorize=False)):  # Brian2's own flags
        b2.defaultclock.dt = 0.5 * b2.ms
        # 50 ms bins: 7 of image, 3 of rest per presentation
        frames = np.repeat(images.astype(float) / 255 * 63.75, 10, axis=0)
        frames[np.tile(np.arange(10) >= 7, len(images))] = 0
        ta = b2.TimedArray(frames * b2.Hz, dt=50 * b2.ms)
        net, _ = _plain_network(b2, "stimulus(t, i)", n_exc, {"stimulus": ta})
        net.run(len(images) * 500 * b2.ms)
        t0 = time.perf_counter()
        b2.device.build(directory=str(workdir), compile=True, run=False, with_output=False)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        b2.device.run(with_output=False)
        run = time.perf_counter() - t0
    return {
        "images_per_s": len(images) / run,
        "build_s": build,
        "peak_rss_mb": max(_rss_mb(), _rss_mb(resource.RUSAGE_CHILDREN)),
    }


def bench_runtime_loop(images, n_exc):
    import brian2 as b2

    from bioSNN.brian.backend import Backend, backend

    with backend(Backend("cython")):
        b2.defaultclock.dt = 0.5 * b2.ms
        net, syn = _plain_network(b2, 0 * b2.Hz, n_exc)
        inp = [o for o in net.objects if isinstance(o, b2.PoissonGroup)][0]
        net.run(0.5 * b2.ms, namespace={})  # compile
        t0 = time.perf_counter()
        for img in images:
            w = syn.w[:].reshape(784, n_exc)
            syn.w[:] = (w * 78.0 / w.sum(0)).ravel()
            inp.rates = img.astype(float) / 255 * 63.75 * b2.Hz
            net.run(350 * b2.ms, namespace={})
            inp.rates = 0 * b2.Hz
            net.run(150 * b2.ms, namespace={})
        return {"images_per_s": len(images) / (time.perf_counter() - t0), "peak_rss_mb": _rss_mb()}


def _import_bindsnet():
    """BindsNET's model and Poisson encoder without ``bindsnet/__init__.py``, which imports its datasets and with
    them torchvision (not installable beside the pinned torch); ``bindsnet.network`` first avoids a circular
    import inside BindsNET."""
    import importlib
    import importlib.util
    import sys
    import types

    if "bindsnet" not in sys.modules:  # (a second call finds the stand-in package already there)
        spec = importlib.util.find_spec("bindsnet")
        if spec is None:
            raise ImportError("No module named 'bindsnet'")
        pkg = types.ModuleType("bindsnet")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["bindsnet"] = pkg
    importlib.import_module("bindsnet.network")
    from bindsnet.encoding import poisson
    from bindsnet.models import DiehlAndCook2015

    return DiehlAndCook2015, poisson


def bench_bindsnet(images, n_exc):
    try:
        import torch

        DiehlAndCook2015, poisson = _import_bindsnet()
    except Exception as e:
        return {"skipped": f"BindsNET not importable: {type(e).__name__}: {e}"}
    torch.set_num_threads(1)  # the other engines here run on one core too
    net = DiehlAndCook2015(
        n_inpt=784, n_neurons=n_exc, exc=22.5, inh=17.5, dt=0.5, norm=78.4, theta_plus=0.05, inpt_shape=(1, 28, 28)
    )
    rest = torch.zeros(int(150 / 0.5), 784, dtype=torch.bool)
    t0 = time.perf_counter()
    for img in images:
        x = poisson(datum=torch.tensor(img, dtype=torch.float32).flatten() / 255 * 63.75, time=350, dt=0.5)
        x = torch.cat([x.bool(), rest])  # 350 ms image + 150 ms of silence, as in the other cases
        net.run(inputs={"X": x.view(-1, 1, 1, 28, 28)}, time=500)
    return {
        "images_per_s": len(images) / (time.perf_counter() - t0),
        "note": "350 ms image + 150 ms silence, BindsNET's own PostPre STDP and current-based nodes",
        "peak_rss_mb": _rss_mb(),
    }


CASES = (
    "biosnn",
    "biosnn-before",
    "biosnn-reset",
    "plain-standalone",
    "runtime-loop",
    "bindsnet",
    "multimodal",
    "multimodal-before",
)


def run_case(case: str, n: int, images: int, loop_images: int) -> dict:
    from bioSNN import data

    mnist = data.load("mnist")
    imgs = mnist.x_train[:images].reshape(images, -1)
    with tempfile.TemporaryDirectory() as d:
        if case in ("biosnn", "biosnn-before"):
            r = bench_biosnn(imgs, n, 150.0, Path(d), before=case.endswith("before"))
        elif case == "biosnn-reset":
            r = bench_biosnn(imgs, n, 0.0, Path(d))
        elif case in ("multimodal", "multimodal-before"):
            r = bench_multimodal(images, n, Path(d), before=case.endswith("before"))
        elif case == "plain-standalone":
            r = bench_plain_standalone(imgs, n, Path(d))
        elif case == "runtime-loop":
            r = bench_runtime_loop(imgs[:loop_images], n)
        elif case == "bindsnet":
            r = bench_bindsnet(imgs[:loop_images], n)
        else:
            raise SystemExit(f"unknown case {case}; choose from {CASES}")
    r.update(case=case, n_exc=n)
    return r


def main(argv=None):
    import subprocess
    import sys

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-exc", type=int, nargs="+", default=[100, 400])
    ap.add_argument("--images", type=int, default=300, help="training images per measurement")
    ap.add_argument("--loop-images", type=int, default=30, help="images for the slow runtime loop and BindsNET")
    ap.add_argument(
        "--cases", nargs="+", default=["biosnn", "biosnn-before", "plain-standalone", "runtime-loop", "bindsnet"]
    )
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--name", default="brian_throughput", help="name of the JSON file written")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a single case, in this process
    args = ap.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_case(args.cases[0], args.n_exc[0], args.images, args.loop_images)))
        return
    results = []
    for n in args.n_exc:
        for case in args.cases:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                "--cases",
                case,
                "--n-exc",
                str(n),
                "--images",
                str(args.images),
                "--loop-images",
                str(args.loop_images),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
            if out.returncode != 0 or not lines:
                r = {"case": case, "n_exc": n, "failed": out.stderr.strip().splitlines()[-1:]}
            else:
                r = json.loads(lines[-1][7:])
            results.append(r)
            print(json.dumps(r), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"cpu_count": os.cpu_count(), "images": args.images, "loop_images": args.loop_images}
    (out / f"{args.name}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(f"\n{'N':>5} {'case':<18} {'img/s':>8} {'peak MB':>8}")
    for r in results:
        print(
            f"{r['n_exc']:>5} {r['case']:<18} {r.get('images_per_s', float('nan')):>8.1f} "
            f"{r.get('peak_rss_mb', float('nan')):>8.0f}"
        )


if __name__ == "__main__":
    main()

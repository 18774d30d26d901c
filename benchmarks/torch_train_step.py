"""Milliseconds per SNN training step (forward + backward + Adam) of one conv SNN, bioSNN against its peers.

Network (the issue's): conv(1→16, 5) – LIF – avgpool 2 – conv(16→32, 5) – LIF – avgpool 2 – fc(512→10), no
biases, MNIST-sized input (1×28×28) fed directly (the same analog frame every step), batch 64, LIF with leak
λ = 0.9, threshold 1, soft reset (subtract) and a fast-sigmoid surrogate; the output is the readout summed
over the T steps, cross-entropy loss, Adam. Cases, side by side in one process on identical weights:

- ``biosnn-layer``  :class:`bioSNN.nn.network.SpikingNet`, layer-by-layer with the fused LIF node (default);
- ``biosnn-step``   the same network run step by step (every layer at step t before step t+1);
- ``plain-torch``   a hand-written PyTorch loop over time steps with an autograd surrogate spike;
- ``snntorch``      snnTorch ``Leaky`` layers (``reset_mechanism="subtract"``, ``reset_delay=False``), loop;
- ``spikingjelly``  SpikingJelly ``LIFNode`` (``v_reset=None`` soft reset, ``decay_input=False``,
                    τ = 1/(1−λ)), multi-step mode, torch backend (CPU).

Before timing, every case's forward output is compared with ``biosnn-layer`` on the same input and weights
(max |Δ| reported; the spike trains must coincide for the comparison to be fair). Peers are optional: install
them with ``pip install snntorch`` and ``pip install --no-deps spikingjelly loguru`` (their own dependency specs
would pull another torch build).

Usage: ``python benchmarks/torch_train_step.py --steps 5 25 --threads 2 --out benchmarks/results``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

LEAK, THRESHOLD, BATCH = 0.9, 1.0, 64


def reference_weights(x: torch.Tensor, time_steps: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights, each conv layer scaled so that its largest input current on ``x`` is 0.95 θ.

    No neuron then ever needs two resets in one step, the one case where snnTorch's subtract reset differs
    from the others (it subtracts θ again at the next step), so all five cases must produce the same spikes.
    (Threshold balancing, in effect: the ``max_current`` of each layer is measured on the benchmark input.)
    """
    from bioSNN.nn import LIFParams, lif_step

    g = torch.Generator().manual_seed(seed)
    w = {
        "conv1": torch.randn(16, 1, 5, 5, generator=g),
        "conv2": torch.randn(32, 16, 5, 5, generator=g),
        "fc": torch.randn(10, 512, generator=g) * 0.1,
    }
    pool = nn.AvgPool2d(2)
    with torch.no_grad():
        i1 = nn.functional.conv2d(x, w["conv1"])
        w["conv1"] *= 0.95 * THRESHOLD / float(i1.max())
        i1 = nn.functional.conv2d(x, w["conv1"])
        state, biggest = None, 0.0
        for _ in range(time_steps):
            s1, state = lif_step(i1, state, LIFParams(LEAK, THRESHOLD))
            biggest = max(biggest, float(nn.functional.conv2d(pool(s1), w["conv2"]).max()))
        w["conv2"] *= 0.95 * THRESHOLD / biggest
    return w


def _layers(w):
    c1, c2, fc = nn.Conv2d(1, 16, 5, bias=False), nn.Conv2d(16, 32, 5, bias=False), nn.Linear(512, 10, bias=False)
    with torch.no_grad():
        c1.weight.copy_(w["conv1"]), c2.weight.copy_(w["conv2"]), fc.weight.copy_(w["fc"])
    return c1, c2, fc


# ---------------- bioSNN ----------------
def make_biosnn(w, mode):
    from bioSNN.nn import LIF
    from bioSNN.nn.network import SpikingNet

    c1, c2, fc = _layers(w)
    net = SpikingNet(
        [
            c1,
            LIF(LEAK, THRESHOLD, surrogate="fast_sigmoid"),
            nn.AvgPool2d(2),
            c2,
            LIF(LEAK, THRESHOLD, surrogate="fast_sigmoid"),
            nn.AvgPool2d(2),
            nn.Flatten(),
            fc,
        ],
        (1, 28, 28),
    )
    return net, lambda x, T: net.snn(x, T, "direct", mode=mode).logits


# ---------------- plain PyTorch ----------------
class _FastSigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g / (1 + 10 * u.abs()) ** 2


def make_plain(w):
    c1, c2, fc = _layers(w)
    mod = nn.ModuleList([c1, c2, fc])
    pool = nn.AvgPool2d(2)

    def run(x, T):
        u1 = u2 = None
        out = 0
        for _ in range(T):
            i1 = c1(x)
            u1 = i1 if u1 is None else LEAK * u1 + i1
            s1 = _FastSigmoidSpike.apply(u1 - THRESHOLD)
            u1 = u1 - THRESHOLD * s1
            i2 = c2(pool(s1))
            u2 = i2 if u2 is None else LEAK * u2 + i2
            s2 = _FastSigmoidSpike.apply(u2 - THRESHOLD)
            u2 = u2 - THRESHOLD * s2
            out = out + fc(pool(s2).flatten(1))
        return out

    return mod, run


# ---------------- snnTorch ----------------
def make_snntorch(w):
    import snntorch as snn
    from snntorch import surrogate

    c1, c2, fc = _layers(w)
    grad = surrogate.fast_sigmoid(slope=10)
    l1 = snn.Leaky(beta=LEAK, threshold=THRESHOLD, spike_grad=grad, reset_mechanism="subtract", reset_delay=False)
    l2 = snn.Leaky(beta=LEAK, threshold=THRESHOLD, spike_grad=grad, reset_mechanism="subtract", reset_delay=False)
    mod = nn.ModuleList([c1, c2, fc, l1, l2])
    pool = nn.AvgPool2d(2)

    def run(x, T):
        m1, m2 = l1.init_leaky(), l2.init_leaky()
        out = 0
        for _ in range(T):
            s1, m1 = l1(c1(x), m1)
            s2, m2 = l2(c2(pool(s1)), m2)
            out = out + fc(pool(s2).flatten(1))
        return out

    return mod, run


# ---------------- SpikingJelly ----------------
def make_spikingjelly(w):
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    c1, c2, fc = _layers(w)
    tau = 1.0 / (1.0 - LEAK)
    net = nn.Sequential(
        layer.SeqToANNContainer(c1),
        neuron.LIFNode(
            tau=tau,
            decay_input=False,
            v_threshold=THRESHOLD,
            v_reset=None,
            surrogate_function=surrogate.Sigmoid(),
            step_mode="m",
        ),
        layer.SeqToANNContainer(nn.AvgPool2d(2), c2),
        neuron.LIFNode(
            tau=tau,
            decay_input=False,
            v_threshold=THRESHOLD,
            v_reset=None,
            surrogate_function=surrogate.Sigmoid(),
            step_mode="m",
        ),
        layer.SeqToANNContainer(nn.AvgPool2d(2), nn.Flatten(), fc),
    )

    def run(x, T):
        functional.reset_net(net)
        return net(x.unsqueeze(0).repeat(T, 1, 1, 1, 1)).sum(0)

    return net, run


MAKERS = {
    "biosnn-layer": lambda w: make_biosnn(w, "layer"),
    "biosnn-step": lambda w: make_biosnn(w, "step"),
    "plain-torch": make_plain,
    "snntorch": make_snntorch,
    "spikingjelly": make_spikingjelly,
}


def time_case(make, w, x, y, T, repeats):
    module, run = make(w)
    opt = torch.optim.Adam(module.parameters(), 1e-3)
    times = []
    for i in range(repeats + 2):  # two warm-up steps
        t0 = time.perf_counter()
        loss = nn.functional.cross_entropy(run(x, T), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[5, 25])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--cases", nargs="+", default=list(MAKERS))
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(BATCH, 1, 28, 28, generator=g), torch.randint(0, 10, (BATCH,), generator=g)
    w = reference_weights(x, max(args.steps))
    results = {
        "threads": args.threads,
        "batch": BATCH,
        "torch": torch.__version__,
        "cpu": platform.processor(),
        "cases": {},
    }
    with torch.no_grad():
        net = make_biosnn(w, "layer")[0]
        ref, rates = {}, {}
        for T in args.steps:
            out = net.snn(x, T, "direct", count=True)
            ref[T], rates[f"T{T}"] = out.logits, out.stats.spike_rates()
        results["spike_rates"] = rates
        print("spike rates per layer:", rates)
    for name in args.cases:
        try:
            make = MAKERS[name]
            make(w)
        except ImportError as e:
            print(f"{name:>13}: skipped ({e})")
            results["cases"][name] = {"skipped": str(e)}
            continue
        row = {}
        for T in args.steps:
            with torch.no_grad():
                diff = float((make(w)[1](x, T) - ref[T]).abs().max())
            med, best = time_case(make, w, x, y, T, args.repeats)
            row[f"T{T}"] = {"ms_median": med, "ms_min": best, "max_abs_output_diff": diff}
            print(f"{name:>13}  T={T:>3}: {med:8.1f} ms/step (min {best:.1f})  |Δout| vs biosnn {diff:.2e}", flush=True)
        results["cases"][name] = row
    # the peers are the two SNN libraries; plain-torch (a hand-written step loop) is a reference only
    peers = [n for n in ("snntorch", "spikingjelly") if "skipped" not in results["cases"].get(n, {"skipped": 1})]
    for T in args.steps:
        if not peers:
            break
        best_peer = min(peers, key=lambda n: results["cases"][n][f"T{T}"]["ms_median"])
        peer_ms = results["cases"][best_peer][f"T{T}"]["ms_median"]
        for mine in ("biosnn-layer", "biosnn-step"):
            if mine in results["cases"]:
                ratio = peer_ms / results["cases"][mine][f"T{T}"]["ms_median"]
                results.setdefault(f"speedup_vs_fastest_peer_T{T}", {})[mine] = {"peer": best_peer, "ratio": ratio}
                print(f"T={T}: {mine} is {ratio:.2f}x as fast as the fastest peer ({best_peer})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "torch_train_step.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""What another NIR reader makes of a bioSNN graph: snnTorch's ``import_from_nir`` on the DIET digits network.

bioSNN's neurons reset by subtraction, which NIR has no field for (the graph says ``v_reset = 0`` and carries
``metadata["reset"] = "subtract"``). A reader that ignores the metadata resets to zero. This script measures
what that costs on the network of ``biosnn run diet --preset quick`` (or ``--bundle``), on the 450 test digits:

1. snnTorch reading the whole graph (it reads no ``I`` readout node and asserts ``r = 1`` on ``IF`` nodes);
2. snnTorch reading the graph cut after the second neuron layer (both layers LIF; written with ``dt = 1e-4``, the
   step snnTorch 1.0 assumes): its layer-2 spikes against bioSNN's (reset by subtraction) and against bioSNN with
   every neuron reset to zero;
3. accuracy of the whole network in the PyTorch engine with reset by subtraction and with reset to zero (what a
   reader following NIR's ``v_reset`` gets).

snnTorch is a peer, not a dependency: ``pip install --no-deps --target PEERS snntorch==1.0.0 nirtorch==2.6`` and
pass ``--peers PEERS`` (their dependency specs would replace the pinned torch). Writes ``nir_readers.json``.

Usage: ``BIOSNN_DATA=../shared/data python benchmarks/nir_readers.py --peers PEERS [--bundle RUN/diet_T5.npz]``
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", help="a DIET bundle (default: train the quick DIET preset)")
    ap.add_argument("--peers", help="a folder holding snntorch and nirtorch (pip install --target)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args(argv)
    if args.peers:
        sys.path.insert(0, args.peers)
    import nir
    import snntorch
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    from bioSNN import bundles, data
    from bioSNN.interop.nir import to_nir
    from bioSNN.models.from_bundle import network_from_bundle
    from bioSNN.nn.train import to_tensor_images

    sys.path.insert(0, str(Path(__file__).parent))
    from nir_brian import quick_bundle

    bundle = Path(args.bundle) if args.bundle else quick_bundle(Path(tempfile.mkdtemp(prefix="nir_readers_")))
    b = bundles.read(bundle)
    net = network_from_bundle(b).eval()
    T = int(b.extra["run"]["time_steps"])
    ds = data.load(b.provenance.get("dataset") or "digits")
    x, y = to_tensor_images(ds.x_test), np.asarray(ds.y_test)
    res: dict = {
        "bundle": str(bundle),
        "time_steps": T,
        "images": len(x),
        "snntorch": snntorch.__version__,
        "nir": nir.__version__,
        "neurons": {
            net.name_of(a): {"leak": float(a.leak), "threshold": float(a.threshold)} for a in net.activations()
        },
    }

    graph = to_nir(net, T, "direct", dt=1e-4)
    try:
        import_from_nir(graph)
        res["whole_graph"] = "read"
    except Exception as e:
        res["whole_graph"] = f"refused: {type(e).__name__}: {e}"

    names = list(graph.nodes)
    cut = names.index("lif2") + 1
    keep = [n for n in names[:cut] if n != "output"]
    if any(isinstance(graph.nodes[n], nir.IF) for n in keep):
        raise SystemExit("the first two neuron layers of this network are not both LIF; snnTorch reads no IF here")
    sub = nir.NIRGraph(
        nodes={
            **{k: graph.nodes[k] for k in keep},
            "output": nir.Output(output_type=np.array(graph.nodes["lif2"].v_threshold.shape)),
        },
        edges=[(s, t) for s, t in graph.edges if s in keep and t in keep] + [("lif2", "output")],
        metadata=graph.metadata,
    )
    peer = import_from_nir(sub)
    with torch.no_grad():
        snntorch.utils.reset(peer)
        steps = []
        for _ in range(T):
            o = peer(x)
            steps.append(o[0] if isinstance(o, tuple) else o)
        s_peer = torch.stack(steps)
        hard = copy.deepcopy(net)
        for a in hard.activations():
            a.reset = "hard"
        soft_out = net.snn(x, T, "direct", record=True)
        hard_out = hard.snn(x, T, "direct", record=True)
    act2 = net.name_of(net.activations()[1])
    s_soft, s_hard = soft_out.spikes[act2], hard_out.spikes[act2]
    res["layer2"] = {
        "spikes_bioSNN_subtract": int(s_soft.sum()),
        "spikes_bioSNN_reset_to_zero": int(s_hard.sum()),
        "spikes_snntorch": int(s_peer.sum()),
        "differing_from_subtract": int((s_peer != s_soft).sum()),
        "differing_from_reset_to_zero": int((s_peer != s_hard).sum()),
        "neuron_steps": s_soft.numel(),
    }
    res["accuracy"] = {
        "subtract": float((soft_out.logits.argmax(1).numpy() == y).mean()),
        "reset_to_zero": float((hard_out.logits.argmax(1).numpy() == y).mean()),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "nir_readers.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

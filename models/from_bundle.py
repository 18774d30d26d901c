"""A trained network rebuilt from its bioSNN bundle, and written as NIR.

A PyTorch-engine bundle records the model zoo's factory arguments (``extra["model"]``); the zoo builds the
architecture again and the bundle's state fills it. This lives with the zoo (it needs every factory), above the
interchange layer it uses: :func:`export_bundle` is what ``biosnn export RUN --to nir`` runs. What NIR cannot
express (text models' embeddings and attention, translators, Brian2 STDP networks) is refused with the reason
(:mod:`bioSNN.interop.nir`).
"""

from __future__ import annotations

from pathlib import Path

from bioSNN import bundles
from bioSNN.interop.nir import (
    NIR_ARRAY,
    SEQ2SEQ_NOT_EXPRESSED,
    SEQ2SEQ_REFUSAL,
    TEXT_NOT_EXPRESSED,
    TEXT_REFUSALS,
    NIRError,
    brian_refusal,
    from_nir,
    to_nir,
)
from bioSNN.interop.nir_graph import read as read_nir
from bioSNN.nn.bundle import load_state
from bioSNN.nn.network import SpikingNet
from bioSNN.nn.sequence import load_module_state

from . import build_spiking
from .events import event_convnet
from .sequence import build_text_model

__all__ = ["network_from_bundle", "export_bundle"]


def network_from_bundle(bundle) -> SpikingNet:
    """The :class:`SpikingNet` a PyTorch-engine bundle holds, rebuilt from its ``extra["model"]`` (the model
    zoo's factory arguments) and its stored state."""
    if NIR_ARRAY in bundle.arrays:  # made by bundle_from_nir: the architecture is the embedded NIR file
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "graph.nir"
            f.write_bytes(bundle.arrays[NIR_ARRAY].tobytes())
            try:
                graph = read_nir(f)
            except NIRError as e:
                raise NIRError(f"bundle {bundle.name!r}: its embedded NIR graph: {str(e).split(': ', 1)[-1]}") from None
            net, _ = from_nir(graph, dt=bundle.extra.get("run", {}).get("dt"))
        load_state(net, bundle)
        return net
    spec = bundle.extra.get("model")
    if isinstance(spec, dict) and "tgt_vocab" in spec:  # a translator of bioSNN.models.seq2seq
        raise NIRError(
            f"bundle {bundle.name!r} ({spec.get('name')}) is an encoder-decoder translator. "
            + SEQ2SEQ_REFUSAL.get(spec.get("name"), "")
            + SEQ2SEQ_NOT_EXPRESSED
        )
    if isinstance(spec, dict) and spec.get("name") in TEXT_REFUSALS:
        return _text_network(bundle, spec)
    if bundle.engine == "brian2":
        raise NIRError(f"bundle {bundle.name!r} is a Brian2 STDP network. " + brian_refusal())
    if bundle.engine != "torch" or not spec:
        raise NIRError(
            f"bundle {bundle.name!r} ({bundle.engine}) records no PyTorch model to rebuild; NIR export "
            "covers the PyTorch engine's networks"
        )
    pops = {p.name: p for p in bundle.populations}
    shape = tuple(pops["input"].params["shape"]["value"])
    if spec["model"] == "event_convnet":
        net = event_convnet(shape, pops["output"].size, tuple(spec["channels"]), spec["hidden"])
        load_state(net, bundle)
        return net
    net = build_spiking(
        spec["model"],
        shape,
        pops["output"].size,
        spec.get("width", 1.0),
        spec.get("hidden", 1024),
        spec.get("dropout", 0.0),
    )
    load_state(net, bundle)
    return net


def _text_network(bundle, spec: dict) -> SpikingNet:
    """The spiking part of a LITE text bundle (:meth:`SpikingTextClassifier.as_spiking_net`); others refused."""
    why = TEXT_REFUSALS[spec["name"]]
    if why is not None:
        raise NIRError(
            f"bundle {bundle.name!r} ({spec['name']}): {why}; only the LITE text model (LIF layers "
            "after the embedding) has a NIR form"
        )
    args = {k: spec[k] for k in ("embed", "hidden", "steps_per_token", "depth", "dropout", "leak", "readout")}
    model = build_text_model(spec["name"], spec["vocab_size"], spec["n_classes"], **args)
    load_module_state(model, bundle)
    return model.eval().as_spiking_net()


def export_bundle(path, out, time_steps: int | None = None, encoder: str | None = None, dt: float | None = None):
    """Write the network of the bundle at ``path`` as a NIR file ``out``; ``time_steps``, ``encoder`` and ``dt``
    default to what the bundle records (``extra["run"]``; dt 1 ms where it records none). Returns the graph."""
    import nir

    b = bundles.read(path)
    net = network_from_bundle(b)  # refuses what has no NIR form first
    run = b.extra.get("run", {})
    extra_meta = None
    spec = b.extra.get("model")
    if isinstance(spec, dict) and spec.get("name") in TEXT_REFUSALS:  # LITE: T steps per token, embedding input
        run = {"time_steps": spec["steps_per_token"], "encoder": "token_embedding"}
        extra_meta = {
            "not_expressed": TEXT_NOT_EXPRESSED,
            "steps_per_token": spec["steps_per_token"],
            "readout": spec["readout"],
            "vocab_size": spec["vocab_size"],
        }
    time_steps = time_steps or run.get("time_steps")
    encoder = encoder or run.get("encoder")
    dt = dt or run.get("dt", 1e-3)
    if not time_steps or not encoder:
        raise NIRError(f"{path} records no time steps or encoder; give --time-steps and --encoder")
    graph = to_nir(net, time_steps, encoder, dt, device=b.device, metadata=extra_meta)
    nir.write(out, graph)
    return graph

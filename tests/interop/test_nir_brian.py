"""NIR → Brian2: the trained networks of the quick presets, exported to NIR and simulated by Brian2, spike as the
PyTorch engine does in every layer; Brian2 networks of NIR parts are written back; what NIR cannot express
(the conductance-based Diehl&Cook network) is refused by name; other tools' neurons follow NIR's ODEs."""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest
import torch

from bioSNN import bundles, data
from bioSNN.brian.backend import Backend, backend
from bioSNN.interop.nir import NIRError, from_nir, to_nir
from bioSNN.interop.nir_brian import NIRBrianNetwork, brian_to_nir, simulate
from bioSNN.models.from_bundle import export_bundle, network_from_bundle
from bioSNN.nn.train import to_tensor_images

pytestmark = [pytest.mark.torch, pytest.mark.brian2]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The T = 5 networks of ``biosnn run diet|hybrid --preset quick``, as NIR graphs read back from files (the
    runs limited to what makes those networks: no T = 2 DIET, no device QAT, one conversion)."""
    from bioSNN.cli import main

    out = tmp_path_factory.mktemp("runs")
    nets = {}
    only_t5 = {
        "diet": ["--set", "diet_steps=5", "--set", "device_bits=", "--set", "hybrid_epochs=1"],
        "hybrid": ["--set", "convert_steps=10", "--set", "hybrid_steps=5"],
    }
    for exp in ("diet", "hybrid"):
        assert main(["run", exp, "--preset", "quick", *only_t5[exp], "--out", str(out / exp), "--no-progress"]) == 0
        (run,) = (out / exp).iterdir()
        bundle = run / f"{exp}_T5.npz"
        export_bundle(bundle, run / "net.nir")
        nets[exp] = (network_from_bundle(bundles.read(bundle)).eval(), nir.read(run / "net.nir"))
    ds = data.load("digits")
    return nets, to_tensor_images(ds.x_test), np.asarray(ds.y_test)


def _reference(net, graph, x):
    """The PyTorch engine's spikes by NIR node name (float64) and its float32 predictions, Poisson seed 0."""
    T, enc = int(graph.metadata["time_steps"]), str(graph.metadata["encoder"])
    names = {n.metadata["name"]: k for k, n in graph.nodes.items() if n.metadata and "name" in n.metadata}
    with torch.no_grad():
        pred32 = net.snn(x, T, enc, generator=torch.Generator().manual_seed(0)).logits.argmax(1).numpy()
        ref = (
            copy.deepcopy(net).double().snn(x.double(), T, enc, generator=torch.Generator().manual_seed(0), record=True)
        )
    return {names[k]: v.numpy() for k, v in ref.spikes.items()}, ref.logits.numpy(), pred32


@pytest.mark.parametrize("exp", ["diet", "hybrid"])
def test_quick_networks_spike_in_brian2_as_in_the_pytorch_engine_on_all_450_test_digits(quick, exp):
    (nets, x, y) = quick
    net, graph = nets[exp]
    spikes, logits, pred32 = _reference(net, graph, x)
    res = simulate(graph, x.double(), Backend("numpy"), generator=torch.Generator().manual_seed(0))
    assert set(res.spikes) == set(spikes) and len(spikes) == 4  # VGG5: three conv layers and one hidden fc
    for k, s in spikes.items():
        assert np.array_equal(res.spikes[k], s), (k, int((res.spikes[k] != s).sum()))
    assert sum(s.sum() for s in spikes.values()) > 10_000
    np.testing.assert_allclose(res.outputs, logits, rtol=0, atol=1e-9)  # the readout sums the same events
    acc = (res.predictions == y).mean()
    assert len(y) == 450 and acc == (pred32 == y).mean() and acc > 0.85, acc  # the float32 engine's accuracy


def test_cpp_standalone_gives_the_same_spikes_and_reruns_new_images_without_recompiling(quick, tmp_path):
    (nets, x, _) = quick
    net, graph = nets["diet"]
    a, b = x[:150], x[150:300]
    with backend(Backend("cpp_standalone", directory=str(tmp_path / "project"))):
        bn = NIRBrianNetwork(graph, images=150)
        r1 = bn.run(bn.frames_for(a.double()))
        binary_mtime = (tmp_path / "project" / "main").stat().st_mtime_ns
        r2 = bn.run(bn.frames_for(b.double()))
    assert (tmp_path / "project" / "main").stat().st_mtime_ns == binary_mtime and r1.build_seconds > 0
    for batch, res in ((a, r1), (b, r2)):
        spikes, logits, _ = _reference(net, graph, batch)
        assert all(np.array_equal(res.spikes[k], s) for k, s in spikes.items())
        np.testing.assert_allclose(res.outputs, logits, rtol=0, atol=1e-9)


def _converted(leaks=(0.97, 0.9, 1.0, 0.85)):
    from bioSNN.models.vgg import vgg
    from bioSNN.nn.convert import to_snn

    ds = data.load("digits")
    torch.manual_seed(0)
    net = vgg("vgg5", (1, 8, 8), n_classes=10, width=0.25, hidden=64, dropout=0.2)
    to_snn(net, [to_tensor_images(ds.x_train[:256])], time_steps=5, scale=0.5, encoder="direct")
    for act, lam in zip(net.activations(), leaks):
        with torch.no_grad():
            act.leak.fill_(lam)
    return net.eval(), to_tensor_images(ds.x_test[:60]).double()


def test_a_brian2_network_written_as_nir_runs_the_same_in_brian2_and_in_the_pytorch_engine(tmp_path):
    net, x = _converted()
    with backend(Backend("numpy")):
        bn = NIRBrianNetwork(to_nir(net, time_steps=5), images=len(x))
        first = bn.run(bn.frames_for(x))
        bn.groups["lif2"].v_threshold = 1e9  # read from the Brian2 objects, not from the graph they came from
        graph = brian_to_nir(bn)
    assert graph.metadata["engine"] == "brian2"
    nir.write(tmp_path / "b.nir", graph)
    back = nir.read(tmp_path / "b.nir")
    again = simulate(back, x, Backend("numpy"))
    assert np.array_equal(again.spikes["lif1"], first.spikes["lif1"].reshape(again.spikes["lif1"].shape))
    assert again.spikes["lif2"].sum() == 0 < first.spikes["lif2"].sum()  # the edited threshold went along
    torch_net, run = from_nir(back)
    out = torch_net.double().snn(x, run["time_steps"], "direct", record=True)
    for act, node in (("act1", "lif1"), ("act2", "lif2"), ("act4", "lif4")):
        assert np.array_equal(out.spikes[act].numpy(), again.spikes[node]), act
    np.testing.assert_allclose(out.logits.detach().numpy(), again.outputs, rtol=0, atol=1e-9)


def test_the_diehl_cook_network_is_refused_with_what_nir_cannot_express():
    from bioSNN.brian.network import DiehlCookConfig, DiehlCookNetwork

    x = data.load("digits").x_train.reshape(-1, 64)[:20]
    with backend(Backend("numpy")):
        dc = DiehlCookNetwork(DiehlCookConfig(n_input=64, n_exc=10, w_sum=12.8, max_rate=255.0), x, Backend("numpy"))
        with pytest.raises(NIRError) as e:
            brian_to_nir(dc)
    msg = str(e.value)
    assert "group 'exc': conductance-based input (dv/dt has ge·v, gi·v" in msg
    assert "group 'exc': threshold" in msg and "moves with theta (an adaptive threshold" in msg
    assert "synapses 'input_exc': plastic" in msg and "a refractory period" in msg
    with pytest.raises(NIRError, match="not a Brian2 network"):
        brian_to_nir(object())


def _graph(nodes: dict, edges: list, n_in: int = 2, dt: float = 1e-3, T: int = 20):
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([n_in])),
            **nodes,
            "output": nir.Output(output_type=np.array([1])),
        },
        edges=edges,
        metadata={"dt": dt, "time_steps": T},
    )


def test_neurons_another_tool_wrote_follow_nir_odes_by_forward_euler():
    dt, T, tau, tau_syn = 1e-3, 20, 5e-3, 2e-3
    w = np.array([[0.8, -0.3]])
    x = np.array([[0.9, 0.4], [0.2, 0.1]])
    # LI readout with r = 2, v_leak = 0.1: v <- v + dt/tau (v_leak - v + r w x)
    g = _graph(
        {"fc": nir.Linear(weight=w), "li": nir.LI(tau=np.array([tau]), r=np.array([2.0]), v_leak=np.array([0.1]))},
        [("input", "fc"), ("fc", "li"), ("li", "output")],
        dt=dt,
        T=T,
    )
    res = simulate(g, x, Backend("numpy"))
    v = np.zeros(2)
    for _ in range(T):
        v = v + dt / tau * (0.1 - v + 2.0 * (x @ w.T)[:, 0])
    np.testing.assert_allclose(res.outputs[:, 0], v, rtol=1e-12, atol=1e-15)
    # CubaLIF (no bioSNN metadata): fires at v > threshold, resets to v_reset; counted at the output
    cuba = nir.CubaLIF(
        tau_syn=np.array([tau_syn]),
        tau_mem=np.array([tau]),
        r=np.array([1.5]),
        v_leak=np.array([0.0]),
        v_threshold=np.array([0.3]),
        v_reset=np.array([-0.1]),
        w_in=np.array([1.0]),
    )
    g = _graph(
        {"fc": nir.Linear(weight=w), "cuba": cuba}, [("input", "fc"), ("fc", "cuba"), ("cuba", "output")], dt=dt, T=T
    )
    res = simulate(g, x, Backend("numpy"))
    i_syn, v, count = np.zeros(2), np.zeros(2), np.zeros(2)
    for _ in range(T):
        v, i_syn = v + dt / tau * (-v + 1.5 * i_syn), i_syn + dt / tau_syn * ((x @ w.T)[:, 0] - i_syn)
        fired = v > 0.3
        count += fired
        v = np.where(fired, -0.1, v)
    assert count.sum() > 0 and np.array_equal(res.outputs[:, 0], count)
    assert np.array_equal(res.spikes["cuba"].sum(0)[:, 0], count)


def test_graphs_brian2_cannot_build_are_refused_by_node_name():
    w = np.ones((1, 2))
    with pytest.raises(NIRError, match="th: NIR node Threshold has no Brian2 counterpart"):
        NIRBrianNetwork(
            _graph({"th": nir.Threshold(threshold=np.ones(1))}, [("input", "th"), ("th", "output")], 1), images=1
        )
    li = nir.LI(tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1))
    if_ = nir.IF(r=np.full(1, 1e3), v_threshold=np.ones(1))
    with pytest.raises(NIRError, match="li → if: LI neurons do not spike"):
        NIRBrianNetwork(
            _graph(
                {"fc": nir.Linear(weight=w), "li": li, "if": if_},
                [("input", "fc"), ("fc", "li"), ("li", "if"), ("if", "output")],
            ),
            images=1,
        )
    with pytest.raises(NIRError, match="cycle"):
        NIRBrianNetwork(
            _graph(
                {"fc": nir.Linear(weight=w), "a": if_, "rec": nir.Linear(weight=np.ones((1, 1)))},
                [("input", "fc"), ("fc", "a"), ("a", "rec"), ("rec", "a"), ("a", "output")],
            ),
            images=1,
        )
    with pytest.raises(NIRError, match="records no dt"):
        NIRBrianNetwork(
            nir.NIRGraph(
                nodes={"input": nir.Input(input_type=np.array([1])), "output": nir.Output(output_type=np.array([1]))},
                edges=[("input", "output")],
            ),
            images=1,
        )

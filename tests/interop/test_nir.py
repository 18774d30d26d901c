"""NIR export and import of the PyTorch engine: a written graph is valid NIR (read back with type checks), and
the network imported from it gives the same spikes in every layer and the same logits as the original."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from bioSNN import data
from bioSNN.interop.nir import NIRError, from_nir, to_nir
from bioSNN.models.mlp import mlp
from bioSNN.models.resnet import resnet20
from bioSNN.models.vgg import vgg
from bioSNN.nn.convert import to_snn
from bioSNN.nn.train import to_tensor_images

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def digits():
    ds = data.load("digits")
    return to_tensor_images(ds.x_train[:256]), to_tensor_images(ds.x_test[:200])


def _converted_vgg(x, leak):
    torch.manual_seed(0)
    net = vgg("vgg5", (1, 8, 8), n_classes=10, width=0.25, hidden=64, dropout=0.2)
    to_snn(net, [x], time_steps=5, scale=0.5, encoder="direct")
    leaks = iter(leak)
    for act in net.activations():  # trained-looking, different leaks per layer (DIET trains them)
        with torch.no_grad():
            act.leak.fill_(next(leaks))
    net.eval()
    return net


def _run(net, x, T, encoder):
    out = net.snn(x, T, encoder, generator=torch.Generator().manual_seed(3), record=True)
    return out.logits, out.spikes


@pytest.mark.parametrize(
    "encoder,leak", [("direct", (0.97, 0.9, 1.0, 0.85)), ("poisson", (1.0,) * 4)], ids=["diet_like", "converted"]
)
def test_round_trip_through_a_file_gives_the_same_spikes_in_every_layer(digits, tmp_path, encoder, leak):
    x_tr, x_te = digits
    net = _converted_vgg(x_tr, leak)
    path = tmp_path / "net.nir"
    nir.write(path, to_nir(net, time_steps=5, encoder=encoder, dt=1e-3))
    graph = nir.read(path)  # with NIR's own type checks
    back, run = from_nir(graph)
    assert run == {"dt": 1e-3, "time_steps": 5, "encoder": encoder}
    logits, spikes = _run(net, x_te, 5, encoder)
    logits2, spikes2 = _run(back, x_te, 5, encoder)
    assert set(spikes) == set(spikes2) == {"act1", "act2", "act3", "act4"}
    for k in spikes:
        assert torch.equal(spikes[k], spikes2[k]), k
    assert spikes["act1"].sum() > 0 and torch.equal(logits, logits2)


def test_neurons_map_to_nir_time_constants_as_forward_euler_says(digits):
    net = _converted_vgg(digits[0], (0.9, 1.0, 1.0, 1.0))
    g = to_nir(net, time_steps=5, dt=2e-3)
    lif, if_ = g.nodes["lif1"], g.nodes["lif2"]
    assert isinstance(lif, nir.LIF) and isinstance(if_, nir.IF)
    # forward Euler of tau dv/dt = -v + r I over dt: v <- (1 - dt/tau) v + (dt/tau) r I = 0.9 v + I
    assert np.allclose(1 - 2e-3 / lif.tau, 0.9) and np.allclose(2e-3 / lif.tau * lif.r, 1.0)
    assert np.allclose(if_.r * 2e-3, 1.0) and (if_.v_reset == 0).all()
    assert lif.metadata["reset"] == "subtract" and lif.tau.shape == (16, 8, 8)  # one value per neuron
    assert g.metadata["time_steps"] == 5 and g.metadata["encoder"] == "direct"
    assert isinstance(g.nodes["readout1"], nir.I) and "fc3" not in g.nodes  # vgg5: two fully connected layers


def test_the_demo_mlp_round_trips_and_resnet_residuals_become_edges(digits):
    torch.manual_seed(1)
    net = mlp((1, 8, 8), 10, (32,), leak=0.9, threshold=0.5)
    back, _ = from_nir(to_nir(net, time_steps=8, encoder="poisson"))
    a, b = _run(net, digits[1], 8, "poisson"), _run(back, digits[1], 8, "poisson")
    assert torch.equal(a[1]["act1"], b[1]["act1"]) and torch.equal(a[0], b[0])
    torch.manual_seed(2)
    res = resnet20((1, 8, 8), 10, width=0.25)
    to_snn(res, [digits[0][:64]], time_steps=4, scale=0.5, encoder="direct")
    res.eval()
    g = to_nir(res, time_steps=4)
    summed = [t for t in g.nodes if sum(1 for _, d in g.edges if d == t) == 2]
    assert len(summed) == 9  # the second neuron layer of each of the nine residual blocks
    back, _ = from_nir(g)
    a, b = _run(res, digits[1], 4, "direct"), _run(back, digits[1], 4, "direct")
    assert set(a[1]) == set(b[1]) and len(a[1]) == 19  # 1 + 2 per block
    assert all(torch.equal(a[1][k], b[1][k]) for k in a[1]) and torch.equal(a[0], b[0])
    assert sum(float(v.sum()) for v in a[1].values()) > 0


def test_what_bioSNN_cannot_express_is_refused_by_node_name():
    shape = np.array([3])

    def graph(node):
        return nir.NIRGraph(
            nodes={"input": nir.Input(input_type=shape), "n": node, "output": nir.Output(shape)},
            edges=[("input", "n"), ("n", "output")],
            metadata={"dt": 1e-3},
        )

    with pytest.raises(NIRError, match="n: v_threshold differs between neurons"):
        from_nir(graph(nir.IF(r=np.full(3, 1e3), v_threshold=np.array([1.0, 2.0, 1.0]))))
    with pytest.raises(NIRError, match="n: reset to v_reset != 0"):
        from_nir(graph(nir.IF(r=np.full(3, 1e3), v_threshold=np.ones(3), v_reset=np.full(3, -0.5))))
    with pytest.raises(NIRError, match="n: NIR node CubaLIF has no bioSNN counterpart"):
        from_nir(
            graph(
                nir.CubaLIF(
                    tau_syn=np.ones(3), tau_mem=np.ones(3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)
                )
            )
        )
    with pytest.raises(NIRError, match="records no dt"):
        from_nir(
            nir.NIRGraph(
                nodes={"input": nir.Input(input_type=shape), "output": nir.Output(shape)}, edges=[("input", "output")]
            )
        )
    # a neuron another tool wrote (no bioSNN metadata) resets to zero, as NIR says; bioSNN's own subtract
    g = graph(nir.IF(r=np.full(3, 1e3), v_threshold=np.ones(3)))
    assert from_nir(g)[0].activations()[0].reset == "hard"
    g.nodes["n"].metadata["reset"] = "subtract"
    assert from_nir(g)[0].activations()[0].reset == "soft"


def test_biosnn_export_writes_a_runs_bundle_as_nir_that_runs_the_same(tmp_path, capsys, isolated_cache):
    from bioSNN import bundles
    from bioSNN.cli import main
    from bioSNN.models.from_bundle import network_from_bundle

    assert (
        main(
            [
                "run",
                "diet",
                "--out",
                str(tmp_path / "runs"),
                "--no-progress",
                "--set",
                "ann_epochs=2",
                "--set",
                "diet_steps=3",
                "--set",
                "diet_epochs=1",
                "--set",
                "compare_steps=",
                "--set",
                "device_bits=",
                "--set",
                "train_limit=300",
                "--set",
                "test_limit=100",
            ]
        )
        == 0
    )
    (run,) = (tmp_path / "runs").iterdir()
    bundle = run / "diet_T3.npz"
    assert main(["export", str(bundle), "--to", "nir"]) == 0
    assert "T = 3, encoder direct" in capsys.readouterr().out
    graph = nir.read(bundle.with_suffix(".nir"))
    back, settings = from_nir(graph)
    assert settings["time_steps"] == 3 and settings["encoder"] == "direct"
    trained = network_from_bundle(bundles.read(bundle))  # the DIET network: trained leaks and thresholds
    assert any(float(a.leak) != 1.0 for a in trained.activations())
    x = to_tensor_images(data.load("digits").x_test[:100])
    a, b = _run(trained.eval(), x, 3, "direct"), _run(back, x, 3, "direct")
    assert all(torch.equal(a[1][k], b[1][k]) for k in a[1]) and torch.equal(a[0], b[0])
    assert main(["export", str(bundle)]) == 2  # the .nir file exists: refused, not overwritten
    assert main(["info", str(bundle.with_suffix(".nir"))]) == 0
    # a run folder stands for its main network; a NIR file becomes a bundle that rebuilds the same network
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(tmp_path / "main.nir")]) == 0
    assert nir.read(tmp_path / "main.nir").metadata["time_steps"] == 3
    assert main(["export", str(bundle.with_suffix(".nir")), "--to", "bundle", "--out", str(tmp_path / "b.npz")]) == 0
    rebuilt = network_from_bundle(bundles.read(tmp_path / "b.npz"))
    assert bundles.read(tmp_path / "b.npz").extra["run"]["time_steps"] == 3
    c = _run(rebuilt, x, 3, "direct")
    assert all(torch.equal(a[1][k], c[1][k]) for k in a[1]) and torch.equal(a[0], c[0])


def test_a_brian2_stdp_bundle_is_refused_with_what_nir_cannot_express(tmp_path, capsys):
    from bioSNN import bundles
    from bioSNN.brian import bundle as brian_bundle
    from bioSNN.brian.ensemble import DiehlCookConfig
    from bioSNN.cli import main

    cfg = DiehlCookConfig(n_input=6, n_exc=4)
    state = {"w": np.ones((6, 4)), "alive": np.ones((6, 4), bool), "theta": np.zeros(4)}
    path = bundles.write(tmp_path / "dc.npz", brian_bundle.to_bundle({"": cfg}, {"": state}))
    assert main(["export", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Brian2 STDP network" in err and "conductance-based input (dv/dt has ge·v, gi·v" in err
    assert "adaptive threshold" in err and not (tmp_path / "dc.nir").exists()


def _lite_bundle(path, name="lite"):
    from bioSNN import bundles
    from bioSNN.models.sequence import build_text_model
    from bioSNN.nn.sequence import text_bundle

    torch.manual_seed(5)
    spec = {
        "name": name,
        "embed": 12,
        "hidden": 16,
        "steps_per_token": 3,
        "depth": 2,
        "dropout": 0.0,
        "leak": 0.8,
        "readout": "mean",
        "vocab_size": 30,
        "n_classes": 3,
    }
    model = build_text_model(
        spec["name"],
        spec["vocab_size"],
        spec["n_classes"],
        **{k: spec[k] for k in ("embed", "hidden", "steps_per_token", "depth", "dropout", "leak", "readout")},
    ).eval()
    if name == "lite":
        with torch.no_grad():
            for lay in model.layers:
                lay.weight.mul_(5.0)  # spiking in both layers
    bundles.write(path, text_bundle(model, spec))
    return model


def test_lite_text_model_exports_its_spiking_layers_and_says_what_nir_cannot_hold(tmp_path):
    from bioSNN.models.from_bundle import export_bundle

    model = _lite_bundle(tmp_path / "lite.npz")
    export_bundle(tmp_path / "lite.npz", tmp_path / "lite.nir")
    g = nir.read(tmp_path / "lite.nir")
    assert "embedding lookup" in g.metadata["not_expressed"] and g.metadata["steps_per_token"] == 3
    assert g.metadata["encoder"] == "token_embedding"
    net, run = from_nir(g)
    tok = torch.randint(4, 30, (4, 7))
    lens = torch.full((4,), 7)
    frames = model.embedding(tok).repeat_interleave(3, dim=1).detach()  # token k at steps 3k .. 3k+2
    with torch.no_grad():
        want = model(tok, lens, count=True)
        got = net.snn(frames, 21, "frames", count=True)
    assert want.stats.summary()["mean_spike_rate"] > 0.02
    torch.testing.assert_close(got.logits / 21, want.logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "conv_attention"])
def test_text_models_without_a_nir_form_are_refused_with_the_reason(tmp_path, name):
    from bioSNN.models.from_bundle import export_bundle

    _lite_bundle(tmp_path / "m.npz", name)
    with pytest.raises(NIRError, match="LSTM cells" if name == "lstm" else "attention pooling"):
        export_bundle(tmp_path / "m.npz", tmp_path / "m.nir")
    assert not (tmp_path / "m.nir").exists()


@pytest.mark.parametrize("name", ["conv_lif", "conv_relu", "gru"])
def test_translators_are_refused_with_what_nir_cannot_express(tmp_path, name):
    from bioSNN import bundles
    from bioSNN.models.from_bundle import export_bundle
    from bioSNN.models.seq2seq import build_seq2seq
    from bioSNN.nn.sequence import text_bundle

    model = build_seq2seq(name, 30, 25, dim=8, layers=1, max_len=20)
    spec = {"name": name, "dim": 8, "layers": 1, "src_vocab": 30, "tgt_vocab": 25}
    bundles.write(tmp_path / "t.npz", text_bundle(model, spec))
    why = {"conv_lif": "LIF convolution blocks", "conv_relu": "does not spike", "gru": "GRU cells"}[name]
    with pytest.raises(NIRError, match=f"{why}.*embedding lookups.*attention.*fed back") as e:
        export_bundle(tmp_path / "t.npz", tmp_path / "t.nir")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "t.nir").exists()


def test_event_convnet_bundle_exports_and_runs_the_same_on_frames(tmp_path):
    from bioSNN import bundles
    from bioSNN.models.events import event_convnet
    from bioSNN.models.from_bundle import export_bundle
    from bioSNN.nn.bundle import run_settings, to_bundle

    torch.manual_seed(6)
    net = event_convnet((2, 12, 12), 10, channels=(4,), hidden=16).eval()
    with torch.no_grad():
        for _, layer in net.weighted_layers():
            layer.weight.mul_(4.0)
    spec = {"model": "event_convnet", "input_shape": [2, 12, 12], "channels": [4], "hidden": 16}
    bundles.write(tmp_path / "ev.npz", to_bundle(net, model=spec, run=run_settings(6, "frames", 0.05)))
    export_bundle(tmp_path / "ev.npz", tmp_path / "ev.nir")
    back, run = from_nir(nir.read(tmp_path / "ev.nir"))
    assert run["encoder"] == "frames" and run["time_steps"] == 6
    ev = (torch.rand(3, 6, 2, 12, 12) < 0.2).float()
    with torch.no_grad():
        torch.testing.assert_close(back.snn(ev, 6, "frames").logits, net.snn(ev, 6, "frames").logits)

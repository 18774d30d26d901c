"""DIET-SNN pieces: trained leak/threshold with clamping, direct input, a tiny real run, QAT on device levels."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bioSNN import bundles, data, device
from bioSNN.models.vgg import vgg
from bioSNN.nn import qat
from bioSNN.nn.bundle import load_state, to_bundle
from bioSNN.nn.convert import balance_thresholds
from bioSNN.nn.train import evaluate, to_tensor_images, train_epoch

pytestmark = pytest.mark.torch


def digits(n_train=400):
    ds = data.load("digits")
    return (
        to_tensor_images(ds.x_train[:n_train]),
        torch.from_numpy(ds.y_train[:n_train]).long(),
        to_tensor_images(ds.x_test),
        torch.from_numpy(ds.y_test).long(),
    )


def diet_net(x):
    torch.manual_seed(0)
    net = vgg("vgg5", (1, 8, 8), n_classes=10, width=0.25, hidden=64, dropout=0.0)
    balance_thresholds(net, [x], percentile=99.7, scale=0.3, source="ann")
    net.set_neurons(leak=1.0, surrogate="linear", train_leak=True, train_threshold=True)
    return net


def test_gradients_reach_every_leak_and_threshold_and_clamping_holds():
    x, y, _, _ = digits(64)
    net = diet_net(x)
    nn.functional.cross_entropy(net(x, 4, "direct"), y).backward()
    for act in net.activations():
        assert act.leak.grad is not None and act.leak.grad != 0, net.name_of(act)
        assert act.threshold.grad is not None and act.threshold.grad != 0, net.name_of(act)
    opt = torch.optim.SGD(net.parameters(), lr=50.0)  # absurd steps push λ out of [0, 1] ...
    for _ in range(3):
        train_epoch(net, [(x, y)], opt, 4, "direct", after_step=net.clamp_)
        # ... and clamp_ after each step brings every λ back, keeping θ positive
        assert all(0.0 <= float(a.leak.detach()) <= 1.0 and float(a.threshold.detach()) > 0 for a in net.activations())


def test_direct_input_reaches_the_first_layer_unchanged_at_every_step():
    x, _, _, _ = digits(8)
    net = diet_net(x)
    seen = []
    net.nodes[0].register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    net.snn(x, 5, "direct", mode="step")
    assert len(seen) == 5 and all(torch.equal(s, x) for s in seen)
    stats = net.snn(x, 5, "direct", count=True).stats
    assert stats.analog["conv1"] and not stats.analog["conv2"]


def test_tiny_diet_network_learns_real_digits_at_five_steps():
    x, y, x_te, y_te = digits(400)
    torch.manual_seed(0)
    net = vgg("vgg5", (1, 8, 8), n_classes=10, width=0.25, hidden=64, dropout=0.0)
    batches = [(x[i : i + 50], y[i : i + 50]) for i in range(0, len(x), 50)]
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(12):
        train_epoch(net, batches, opt)
    balance_thresholds(net, [x], percentile=99.7, scale=0.3, source="ann")
    net.set_neurons(leak=1.0, surrogate="linear", train_leak=True, train_threshold=True)
    start = evaluate(net, x_te, y_te, 5, "direct").accuracy
    opt = torch.optim.Adam(net.parameters(), 5e-4)
    for epoch in range(4):
        train_epoch(net, batches, opt, 5, "direct", after_step=net.clamp_)
    res = evaluate(net, x_te, y_te, 5, "direct")
    assert res.accuracy > 0.8 and res.accuracy > start + 0.03, (start, res.accuracy)  # 450 test digits, chance 0.1
    s = res.stats.summary()
    assert 0 < s["mean_spike_rate"] < 0.5 and s["energy_ratio_ann_over_snn"] > 1


def test_qat_weights_take_only_device_values_and_survive_a_bundle(tmp_path):
    x, y, _, _ = digits(64)
    net = diet_net(x).eval()
    devices = qat.attach(net, 2)
    for name, layer in net.weighted_layers():
        cfg = devices[name]
        w = layer.weight.detach().double().numpy()
        levels = device.level_conductances(cfg)
        attainable = {round(float(a - b), 6) for a in levels for b in levels}
        scale = cfg.w_max / (cfg.g_max - cfg.g_min)
        assert {round(v / scale, 6) for v in w.ravel().tolist()} <= attainable, name
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    train_epoch(net, [(x, y)], opt, 3, "direct")  # straight-through: the originals move
    net.eval()
    path = bundles.write(tmp_path / "q.npz", to_bundle(net))
    other = diet_net(x).eval()
    qat.attach(other, 2)
    load_state(other, bundles.read(path))
    torch.testing.assert_close(other.snn(x, 3).logits, net.snn(x, 3).logits)
    qat.freeze(net)
    assert len(torch.unique(net.nodes[0].weight)) <= 7  # 2-bit differential pair: at most 7 values


def test_step_schedule_drops_the_rate_at_the_milestones():
    from bioSNN.nn.train import step_schedule

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = step_schedule(opt, 10, (0.6, 0.8))
    rates = []
    for _ in range(10):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(rates, [1.0] * 6 + [0.1] * 2 + [0.01] * 2)
    assert step_schedule(opt, 10, ()) is None
    with pytest.raises(ValueError, match="fractions"):
        step_schedule(opt, 10, (6,))


@pytest.mark.parametrize("mode,encoder", [("layer", "direct"), ("step", "direct"), ("layer", "poisson")])
def test_energy_cost_equals_the_counted_energy_ratio_and_reaches_every_parameter(mode, encoder):
    x, y, _, _ = digits(32)
    net = diet_net(x)
    out = net.snn(x, 4, encoder, count=True, mode=mode, energy_cost=True, generator=torch.Generator().manual_seed(1))
    ratio = out.stats.summary()["energy_ratio_ann_over_snn"]
    # the differentiable cost is exactly the counter's E_SNN / E_ANN (events = spikes x fan-out, MACs at analog input)
    assert float(out.energy_cost.detach()) == pytest.approx(1.0 / ratio, rel=1e-5)
    out.energy_cost.backward()
    for act in net.activations()[:-1]:  # the last activation feeds the readout, whose events the cost also counts
        assert act.threshold.grad is not None and act.threshold.grad != 0, net.name_of(act)
    first_w = net.nodes[0].weight.grad
    assert first_w is not None and first_w.abs().sum() > 0
    with pytest.raises(ValueError, match="time_steps"):
        net(x, 0, energy_cost=True)


def test_energy_penalty_trains_a_sparser_network_at_little_cost():
    x, y, x_te, y_te = digits(400)
    batches = [(x[i : i + 50], y[i : i + 50]) for i in range(0, len(x), 50)]
    torch.manual_seed(0)
    ann = vgg("vgg5", (1, 8, 8), n_classes=10, width=0.25, hidden=64, dropout=0.0)
    opt = torch.optim.Adam(ann.parameters(), 3e-3)
    for _ in range(12):
        train_epoch(ann, batches, opt)
    results = {}
    for alpha in (0.0, 10.0):
        net = copy.deepcopy(ann)
        balance_thresholds(net, [x], percentile=99.7, scale=0.3, source="ann")
        net.set_neurons(leak=1.0, surrogate="linear", train_leak=True, train_threshold=True)
        opt = torch.optim.Adam(net.parameters(), 5e-4)
        for _ in range(4):
            stats = train_epoch(net, batches, opt, 5, "direct", after_step=net.clamp_, energy_penalty=alpha)
        assert ("energy_ratio_snn_over_ann" in stats) == (alpha > 0)
        res = evaluate(net, x_te, y_te, 5, "direct")
        results[alpha] = {"accuracy": res.accuracy, **res.stats.summary()}
    plain, penalised = results[0.0], results[10.0]
    # measured: spike rate 0.255 -> 0.193, energy ANN/SNN x2.26 -> x2.68, accuracy 0.862 -> 0.869 (450 test digits)
    assert penalised["mean_spike_rate"] < 0.85 * plain["mean_spike_rate"], (plain, penalised)
    assert penalised["energy_ratio_ann_over_snn"] > 1.1 * plain["energy_ratio_ann_over_snn"]
    assert penalised["accuracy"] > plain["accuracy"] - 0.03
    with pytest.raises(ValueError, match="energy_penalty"):
        train_epoch(net, batches[:1], opt, 0, energy_penalty=1.0)

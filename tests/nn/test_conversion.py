"""ANN → SNN conversion on a tiny network trained on the embedded digits; threshold balancing; op counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bioSNN import data, energy
from bioSNN.nn import LIF, LIFParams, lif_step
from bioSNN.nn.convert import balance_thresholds, to_snn
from bioSNN.nn.network import SpikingNet
from bioSNN.nn.train import evaluate, to_tensor_images

pytestmark = pytest.mark.torch


def mlp(sizes=(64, 48, 10)) -> SpikingNet:
    nodes = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        nodes += [nn.Linear(a, b, bias=False), LIF()]
    nodes.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
    return SpikingNet(nodes, (sizes[0],))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    ds = data.load("digits")
    x_tr = to_tensor_images(ds.x_train).flatten(1)
    x_te = to_tensor_images(ds.x_test).flatten(1)
    y_tr, y_te = torch.from_numpy(ds.y_train).long(), torch.from_numpy(ds.y_test).long()
    net = mlp()
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(60):
        loss = nn.functional.cross_entropy(net.ann(x_tr), y_tr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, x_tr, y_tr, x_te, y_te


def test_converted_snn_approaches_the_ann_as_t_grows(trained):
    net, x_tr, _, x_te, y_te = trained
    ann = evaluate(net, x_te, y_te)
    assert ann.accuracy > 0.9
    to_snn(net, [x_tr[:300]], time_steps=50, scale=1.0, encoder="poisson")
    agree = {}
    for t in (2, 16, 256):
        snn = evaluate(net, x_te, y_te, time_steps=t, encoder="poisson")
        agree[t] = float((snn.predictions == ann.predictions).mean())
    assert agree[2] < agree[16] < agree[256], agree
    assert agree[256] >= 0.97, agree
    ann_again = evaluate(net, x_te, y_te)
    assert ann_again.accuracy == ann.accuracy  # conversion leaves the weights (and the ANN) untouched


def test_threshold_balancing_picks_each_layers_maximum_input():
    torch.manual_seed(1)
    net = SpikingNet(
        [nn.Linear(5, 4, bias=False), LIF(), nn.Linear(4, 3, bias=False), LIF(), nn.Linear(3, 2, bias=False)], (5,)
    )
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    x = torch.rand(8, 5)
    found = balance_thresholds(net, [x], time_steps=6, scale=0.5, encoder="direct")
    fc1, act1, fc2 = net.nodes[0], net.nodes[1], net.nodes[2]
    # layer 1 sees W1 x at every step with direct input
    expected1 = 0.5 * float(fc1(x).detach().max())
    assert found["act1"] == pytest.approx(expected1, rel=1e-6)
    # layer 2: replay the balanced first layer by hand and take the max of W2 o1 over all steps
    state, biggest = None, float("-inf")
    p1 = LIFParams(1.0, act1.threshold.detach(), "soft")
    with torch.no_grad():
        for _ in range(6):
            o1, state = lif_step(fc1(x), state, p1)
            biggest = max(biggest, float(fc2(o1).max()))
    assert found["act2"] == pytest.approx(0.5 * biggest, rel=1e-6)
    assert net.nodes[3].threshold.item() == pytest.approx(0.5 * biggest, rel=1e-6)


def test_percentile_balancing_is_below_the_maximum_and_ann_source_works():
    torch.manual_seed(2)
    net = mlp((16, 32, 4))
    x = torch.rand(64, 16)
    hi = balance_thresholds(net, [x], 5, encoder="direct")["act1"]
    lo = balance_thresholds(net, [x], 5, percentile=90.0, encoder="direct")["act1"]
    pre = net.nodes[0](x).detach().flatten()  # the same current at each of the 5 steps
    assert lo < hi and lo == pytest.approx(float(torch.quantile(pre.repeat(5).double(), 0.9)), rel=1e-9)
    ann = balance_thresholds(net, [x], percentile=99.7, source="ann")["act1"]
    assert ann == pytest.approx(float(torch.quantile(pre.double(), 0.997)), rel=1e-4)
    with pytest.raises(ValueError, match="percentile"):
        balance_thresholds(net, [x], 5, percentile=0)


def test_operation_counts_match_a_hand_checked_network():
    net = SpikingNet([nn.Linear(3, 2, bias=False), LIF(threshold=1.0), nn.Linear(2, 4, bias=False)], (3,))
    with torch.no_grad():
        net.nodes[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.25]]))
    x = torch.tensor([[0.5, 0.0, 1.0]])  # neuron 1 gets 0.5/step -> spikes at t=2,4; neuron 2 gets 0.25 -> t=4
    out = net.snn(x, 4, "direct", count=True)
    st = out.stats
    assert st.spikes["act1"] == 3 and st.spike_rates()["act1"] == pytest.approx(3 / 8)
    assert st.analog["fc1"] and not st.analog["fc2"]
    assert st.macs == {"fc1": 6.0, "fc2": 8.0}
    assert st.events["fc2"] == 3 * 4  # 3 spikes, each reaching 4 readout neurons
    ops = st.layer_ops()
    assert energy.snn_energy_pj(ops) == pytest.approx(6 * 4 * energy.E_MAC_PJ + 12 * energy.E_AC_PJ)
    assert energy.ann_energy_pj(ops) == pytest.approx(14 * energy.E_MAC_PJ)
    # the first layer's constant input current computed once: 6 MACs, then 2 neurons x 4 steps accumulates
    assert st.outputs == {"fc1": 2.0, "fc2": 4.0}
    assert energy.snn_energy_pj(ops, reuse_constant_input=True) == pytest.approx(
        6 * energy.E_MAC_PJ + 8 * energy.E_AC_PJ + 12 * energy.E_AC_PJ
    )
    summary = st.summary()
    assert summary["energy_ratio_first_layer_once"] > summary["energy_ratio_ann_over_snn"]
    # step mode counts the same
    step = net.snn(x, 4, "direct", count=True, mode="step").stats
    assert step.outputs == st.outputs and step.layer_ops() == ops


def test_conv_events_count_each_active_pixels_reach():
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    net = SpikingNet([conv, LIF(), nn.Flatten(), nn.Linear(2 * 9, 2, bias=False)], (1, 3, 3))
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 0, 0] = 1.0  # a corner pixel reaches 2x2 output positions
    x[0, 0, 1, 1] = 1.0  # the centre reaches all 3x3
    st = net.snn(x, 1, "poisson", count=True, generator=torch.Generator().manual_seed(0)).stats
    assert st.events["conv1"] == (4 + 9) * 2 and not st.analog["conv1"]
    assert st.macs["conv1"] == 2 * 9 * 9


def test_bad_inputs_are_named():
    net = mlp((4, 3, 2))
    with pytest.raises(ValueError, match="input shape"):
        net.snn(torch.zeros(1, 5), 2)
    with pytest.raises(ValueError, match="encoder"):
        net.snn(torch.zeros(1, 4), 2, "rate")
    with pytest.raises(ValueError, match="fit input shape"):
        SpikingNet([nn.Linear(7, 3, bias=False), LIF(), nn.Linear(3, 2, bias=False)], (4,))


def test_reusing_a_constant_input_needs_the_layers_outputs():
    layer = energy.LayerOps("conv1", macs=100.0, analog_input=True, time_steps=5)
    with pytest.raises(ValueError, match="conv1.*outputs"):
        energy.snn_energy_pj([layer], reuse_constant_input=True)
    # without reuse: 5 x 100 MACs; with it: 100 MACs + 10 outputs x 5 steps ACs
    held = energy.LayerOps("conv1", macs=100.0, analog_input=True, time_steps=5, outputs=10.0)
    assert energy.snn_energy_pj([held]) == pytest.approx(500 * energy.E_MAC_PJ)
    assert energy.snn_energy_pj([held], reuse_constant_input=True) == pytest.approx(
        100 * energy.E_MAC_PJ + 50 * energy.E_AC_PJ
    )

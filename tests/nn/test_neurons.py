"""LIF step semantics and surrogate gradients against their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from bioSNN.nn import IF, LIF, LIFParams, lif_step, surrogate
from bioSNN.nn.neurons import lif_sequence

pytestmark = pytest.mark.torch


def test_lif_integrates_leaks_fires_and_soft_resets():
    p = LIFParams(leak=0.5, threshold=1.0, reset="soft")
    x = torch.tensor([0.8])
    o1, s = lif_step(x, None, p)  # u = 0.8
    o2, s2 = lif_step(x, s, p)  # u = 0.4 + 0.8 = 1.2 -> spike, u = 0.2
    assert o1.item() == 0 and o2.item() == 1 and s2.u.item() == pytest.approx(0.2)
    _, s3 = lif_step(x, s, LIFParams(leak=0.5, threshold=1.0, reset="hard"))
    assert s3.u.item() == 0.0


def test_module_holds_no_state():
    lif = LIF(leak=1.0, threshold=1.0)
    x = torch.full((3,), 0.6)
    _, s = lif(x)
    o, s = lif(x, s)
    assert o.tolist() == [1.0, 1.0, 1.0] and torch.allclose(s.u, torch.full((3,), 0.2))
    o_again, _ = lif(x)  # a fresh call starts from rest: nothing was kept on the module
    assert o_again.sum() == 0
    with pytest.raises(ValueError, match="leak"):
        LIF(leak=1.5)
    with pytest.raises(ValueError, match="surrogate"):
        LIF(surrogate="nope")


@pytest.mark.parametrize("name", ["linear", "fast_sigmoid"])
def test_surrogate_gradients_match_their_formulas(name):
    u = torch.linspace(-1, 3, 41, dtype=torch.float64, requires_grad=True)
    theta = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    o = surrogate.spike(u, theta, name)
    assert torch.equal(o, (u >= 1.0).double())
    o.sum().backward()
    ud = u.detach()
    expected = (
        0.3 * torch.clamp(1 - torch.abs(ud - 1), min=0) if name == "linear" else 1 / (1 + 10 * torch.abs(ud - 1)) ** 2
    )
    torch.testing.assert_close(u.grad, expected)
    torch.testing.assert_close(theta.grad, -expected.sum())


def test_trainable_threshold_and_leak_get_gradients():
    lif = LIF(leak=0.8, threshold=1.0, train_leak=True, train_threshold=True)
    x = torch.rand(20, 8) * 0.9
    state, total = None, 0
    for t in range(20):
        o, state = lif(x[t], state)
        total = total + o.sum() + state.u.sum()
    total.backward()
    assert lif.leak.grad is not None and lif.leak.grad != 0
    assert lif.threshold.grad is not None and lif.threshold.grad != 0


def test_stdb_gradient_follows_alpha_exp_minus_beta_elapsed():
    # one neuron driven so that it spikes at steps 2 and 5 (threshold 1, IF, soft reset)
    drive = [0.6, 0.6, 0.0, 0.5, 0.5, 0.2, 0.0]
    p = LIFParams(leak=1.0, threshold=1.0, surrogate="stdb")
    state, grads, spikes = None, [], []
    for x in drive:
        u_in = torch.tensor([x], requires_grad=True)
        o, state = lif_step(u_in, state, p)
        o.sum().backward()  # this step's ∂o/∂I only: the carried membrane is detached below
        state = state._replace(u=state.u.detach())
        grads.append(u_in.grad.item())
        spikes.append(int(o.item()))
    assert spikes == [0, 1, 0, 0, 1, 0, 0]
    # elapsed before each step's spike decision: far past + 1, +2, then 1, 2, 3 after the spike at step 2 ...
    elapsed = [1001, 1002, 1, 2, 3, 1, 2]
    expected = [0.3 * math.exp(-0.01 * e) for e in elapsed]
    assert grads == pytest.approx(expected, rel=1e-6)
    assert state.elapsed.item() == 2


def test_stdb_without_elapsed_is_a_clear_error():
    with pytest.raises(ValueError, match="elapsed"):
        surrogate.spike(torch.zeros(2), 1.0, "stdb")


def test_if_neuron_is_lif_without_leak_and_clamp_keeps_bounds():
    n = IF(threshold=0.5)
    assert n.leak.item() == 1.0 and not n.leak.requires_grad
    lif = LIF(leak=0.9, threshold=1.0, train_leak=True, train_threshold=True)
    with torch.no_grad():
        lif.leak.fill_(1.7)
        lif.threshold.fill_(-3.0)
    lif.clamp_()
    assert lif.leak.item() == 1.0 and lif.threshold.item() > 0


@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("name", ["linear", "fast_sigmoid", "stdb"])
def test_fused_sequence_equals_step_loop_in_values_and_gradients(reset, name):
    torch.manual_seed(0)
    x = (torch.randn(12, 5, 7, dtype=torch.float64) * 0.8 + 0.3).requires_grad_()
    lam = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    th = torch.tensor(1.1, dtype=torch.float64, requires_grad=True)
    p = LIFParams(lam, th, reset, name)
    w = torch.randn(12, 5, 7, dtype=torch.float64)
    state, outs = None, []
    for t in range(12):
        o, state = lif_step(x[t], state, p)
        outs.append(o)
    o_loop = torch.stack(outs)
    g_loop = torch.autograd.grad((o_loop * w).sum() + (state.u**2).sum(), [x, lam, th])
    o_seq, s_seq = lif_sequence(x, None, p)
    g_seq = torch.autograd.grad((o_seq * w).sum() + (s_seq.u**2).sum(), [x, lam, th])
    assert torch.equal(o_loop, o_seq) and o_seq.sum() > 0
    torch.testing.assert_close(s_seq.u, state.u)
    for a, b in zip(g_loop, g_seq):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        assert a.abs().sum() > 0
    if name == "stdb":
        torch.testing.assert_close(s_seq.elapsed, state.elapsed)

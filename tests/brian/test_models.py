"""Brian2 neuron and plasticity models: units, an analytic membrane trajectory, STDP updates of known spike
pairs, and the readout. Runtime (numpy) backend, no compilation."""

from __future__ import annotations

import numpy as np
import pytest

import brian2 as b2  # noqa: E402  (a hard dependency: a broken install must fail, not skip)
from brian2 import Equations, Network, NeuronGroup, StateMonitor, Synapses, mV, ms, volt  # noqa: E402

from bioSNN.brian import readout  # noqa: E402
from bioSNN.brian.backend import Backend, backend  # noqa: E402
from bioSNN.brian.neurons import ExcitatoryParams, excitatory_model, inhibitory_model  # noqa: E402
from bioSNN.brian.stdp import PowerLawSTDP, TraceSTDP  # noqa: E402

pytestmark = pytest.mark.brian2


def test_equations_carry_units():
    eqs = Equations(excitatory_model().equations)
    assert eqs["v"].dim == volt.dim and eqs["theta"].dim == volt.dim
    assert eqs["ge"].dim.is_dimensionless and eqs["plastic"].dim.is_dimensionless
    ns = excitatory_model().namespace
    assert ns["exc_tau"] == 100 * ms and ns["exc_v_threshold"] == -52 * mV and ns["exc_theta_plus"] == 0.05 * mV
    assert inhibitory_model().namespace["inh_e_inh"] == -85 * mV


def _exc_group(p: ExcitatoryParams, n=1):
    m = excitatory_model(p)
    return NeuronGroup(n, m.equations, threshold=m.threshold, reset=m.reset, refractory=m.refractory,
                       method=m.method, namespace=m.namespace)


@pytest.mark.parametrize("ge", [0.0, 0.1])
def test_membrane_follows_the_analytic_solution(ge):
    """Constant conductance ge (τ_ge made huge): v relaxes to (v_leak + ge·E_exc)/(1 + ge) with τ/(1 + ge)."""
    p = ExcitatoryParams(tau_ge=1e12)
    with backend(Backend("numpy")):
        b2.defaultclock.dt = 0.1 * ms
        g = _exc_group(p)
        g.v, g.ge, g.theta = -70 * mV, ge, 100 * mV  # θ high: no spike
        mon = StateMonitor(g, "v", record=0)
        Network(g, mon).run(200 * ms, namespace={})
        t = np.asarray(mon.t / ms)
        v = np.asarray(mon.v[0] / mV)
    v_inf = (p.v_leak + ge * p.e_exc) / (1 + ge)
    expected = v_inf + (-70 - v_inf) * np.exp(-t * (1 + ge) / p.tau)
    np.testing.assert_allclose(v, expected, atol=1e-6)  # exponential Euler is exact for a constant conductance


def test_membrane_stays_between_reversal_potentials_under_synchronous_inhibition():
    """400 inhibitory cells firing in one step add gi = 400 × 17 = 6800 (gi·dt/τ = 34 at dt = 0.5 ms): v must
    approach E_inh, never overshoot beyond the reversal potentials (forward Euler jumps to ±10⁴ mV here)."""
    p = ExcitatoryParams()
    with backend(Backend("numpy")):
        b2.defaultclock.dt = 0.5 * ms
        g = _exc_group(p)
        g.v, g.gi, g.ge, g.theta = -60 * mV, 400 * 17.0, 5.0, 20 * mV
        mon = StateMonitor(g, "v", record=0)
        Network(g, mon).run(20 * ms, namespace={})
        v = np.asarray(mon.v[0] / mV)
    assert v.min() >= p.e_inh - 1e-6 and v.max() <= p.e_exc + 1e-6
    assert v[4] < -90  # pulled towards E_inh = -100 mV within 2 ms


def _decaying_conductance_trajectory(integration, dt):
    """v of one neuron after conductance jumps ge = 2, gi = 1 at t = 0 (θ high: no spike), sampled every 0.5 ms."""
    p = ExcitatoryParams()
    with backend(Backend("numpy")):
        b2.defaultclock.dt = dt * ms
        m = excitatory_model(p, integration, dt)
        g = NeuronGroup(1, m.equations, threshold=m.threshold, reset=m.reset, refractory=m.refractory,
                        method=m.method, namespace=m.namespace)
        g.v, g.ge, g.gi, g.theta = -65 * mV, 2.0, 1.0, 200 * mV
        mon = StateMonitor(g, "v", record=0, dt=0.5 * ms)
        Network(g, mon).run(10 * ms, namespace={})
        return np.asarray(mon.v[0] / mV)


def test_step_mean_integration_matches_a_fine_step_reference():
    """At the network's dt = 0.5 ms, fast synaptic conductances (τ 1 and 2 ms) change a lot within a step.
    Using their exact step means keeps v within 0.01 mV of a dt = 0.005 ms reference; holding them at the
    step-start value (plain exponential Euler) or forward Euler errs by > 0.1 mV."""
    ref = _decaying_conductance_trajectory("exponential_euler", 0.005)
    err = {k: np.abs(_decaying_conductance_trajectory(k, 0.5) - ref).max()
           for k in ("step_mean", "exponential_euler", "euler")}
    assert err["step_mean"] < 0.01 and err["exponential_euler"] > 0.1 and err["euler"] > 0.1, err
    with pytest.raises(ValueError, match="integration"):
        excitatory_model(ExcitatoryParams(), "rk4", 0.5)
    with pytest.raises(ValueError, match="dt"):
        excitatory_model(ExcitatoryParams(), "step_mean")


@pytest.mark.parametrize("gap", [5.0, 50.0])
def test_spike_gap_spaces_the_spikes_of_a_driven_neuron(gap):
    """Under a constant drive that recharges the membrane in 4.5 ms after the 5 ms clamp, the neuron fires every
    9.5 ms with a 5 ms gap, but only every 50 ms (+ one step) with D&C's 50 ms threshold timer."""
    p = ExcitatoryParams(tau_ge=1e12, spike_gap=gap)
    with backend(Backend("numpy")):
        b2.defaultclock.dt = 0.5 * ms
        g = _exc_group(p)
        g.v, g.ge, g.theta = -65 * mV, 5.0, 20 * mV
        mon = b2.SpikeMonitor(g)
        Network(g, mon).run(400 * ms, namespace={})
        times = np.asarray(mon.t / ms)
    isi = np.diff(times)
    assert len(times) >= 5
    # after the first (from rest); t − lastspike > gap may pass one step early by floating-point rounding
    np.testing.assert_allclose(isi[1:], 9.5 if gap == 5.0 else gap + 0.5, atol=0.5 + 1e-9)


def test_spike_gap_below_refractory_is_rejected():
    with pytest.raises(ValueError, match="spike_gap"):
        ExcitatoryParams(spike_gap=2.0)


def _pair_network(rule, pre_times_ms, post_times_ms, w0):
    """One pre → one post synapse (plus a pruned twin) with spikes at exactly the given times."""
    sm = rule.synapse_model()
    pre = b2.SpikeGeneratorGroup(1, np.zeros(len(pre_times_ms), int), np.asarray(pre_times_ms) * ms)
    post = NeuronGroup(1, "ge : 1", threshold="(" + " or ".join(
        f"abs(t - {t}*ms) < 0.5*dt" for t in post_times_ms) + ")")
    syn = Synapses(pre, post, sm.model, on_pre=sm.on_pre, on_post=sm.on_post, namespace=sm.namespace)
    syn.connect(n=2)  # synapse 0 alive, synapse 1 pruned
    syn.w = [w0, 0.0]
    syn.alive = [1.0, 0.0]
    syn.learning = 1.0
    syn.eta_scale = 1.0
    return Network(pre, post, syn), syn


def test_power_law_stdp_update_of_a_spike_pair():
    rule = PowerLawSTDP(eta=0.01, x_offset=0.4, mu=0.2, w_max=1.0, tau_pre=20.0)
    with backend(Backend("numpy")):
        b2.defaultclock.dt = 0.1 * ms
        net, syn = _pair_network(rule, [10.0], [15.0, 60.0], w0=0.5)
        net.run(80 * ms, namespace={})
        w = np.asarray(syn.w[:])
    # post at 15 ms: x_pre = exp(-5/20) potentiates; post at 60 ms: x_pre = exp(-50/20) < x_offset depresses
    w1 = 0.5 + 0.01 * (np.exp(-5 / 20) - 0.4) * (1 - 0.5) ** 0.2
    w2 = w1 + 0.01 * (np.exp(-50 / 20) - 0.4) * (1 - w1) ** 0.2
    assert w[0] == pytest.approx(w2, rel=1e-9)
    assert w1 > 0.5 and w2 < w1
    assert rule.delta_w(np.exp(-5 / 20), 0.5) == pytest.approx(w1 - 0.5)
    assert w[1] == 0.0  # pruned synapse never changes


@pytest.mark.parametrize("rule", [PowerLawSTDP(eta=0.01), TraceSTDP()], ids=["power_law", "trace"])
def test_eta_scale_scales_every_update_of_a_spike_pair(rule):
    # the annealing knob: eta_scale = 0.25 gives a quarter of each update of the rule's own rate (both rules,
    # potentiation and depression), far from the clip bounds
    changes = {}
    for scale in (1.0, 0.25):
        with backend(Backend("numpy")):
            b2.defaultclock.dt = 0.1 * ms
            net, syn = _pair_network(rule, [10.0], [5.0, 15.0, 60.0], w0=0.5)
            syn.eta_scale = scale
            net.run(80 * ms, namespace={})
            changes[scale] = np.asarray(syn.w[:])[0] - 0.5
    assert abs(changes[1.0]) > 1e-4
    assert changes[0.25] == pytest.approx(0.25 * changes[1.0], rel=2e-3)


def test_diehl_cook_trace_rule_update():
    rule = TraceSTDP(nu_pre=0.0001, nu_post=0.01, tau_pre=20.0, tau_post1=20.0, tau_post2=40.0)
    with backend(Backend("numpy")):
        b2.defaultclock.dt = 0.1 * ms
        net, syn = _pair_network(rule, [10.0], [5.0, 15.0], w0=0.5)
        net.run(30 * ms, namespace={})
        w = np.asarray(syn.w[:])
    # pre at 10: w -= ν_pre·post1(5 ms after the post spike); post at 15: w += ν_post·pre(5 ms)·post2(10 ms)
    expected = 0.5 - 0.0001 * np.exp(-5 / 20) + 0.01 * np.exp(-5 / 20) * np.exp(-10 / 40)
    assert w[0] == pytest.approx(expected, rel=1e-9)
    assert w[1] == 0.0


@pytest.mark.parametrize("rule", [PowerLawSTDP(), TraceSTDP()], ids=["power_law", "trace"])
def test_frozen_synapses_keep_weights_above_w_max(rule):
    # normalisation can scale weights above w_max and device levels may lie above it; with learning off
    # (labelling, test) no spike may touch them, not even the clip to [0, w_max]
    with backend(Backend("numpy")):
        b2.defaultclock.dt = 0.1 * ms
        net, syn = _pair_network(rule, [10.0, 30.0], [15.0, 35.0], w0=1.07)
        syn.learning = 0.0
        net.run(50 * ms, namespace={})
        frozen = np.asarray(syn.w[:])
        net2, syn2 = _pair_network(rule, [10.0, 30.0], [15.0, 35.0], w0=1.07)
        net2.run(50 * ms, namespace={})
        learning = np.asarray(syn2.w[:])
    assert frozen[0] == 1.07 and frozen[1] == 0.0
    assert learning[0] <= rule.w_max  # while learning, the rule's bounds hold


def test_label_assignment_and_prediction_toy_case():
    # neuron 0 answers class 1, neuron 1 class 0, neuron 2 class 2 (weaker), neuron 3 never fires
    counts = np.array([[0, 5, 0, 0], [0, 4, 1, 0], [6, 0, 0, 0], [3, 1, 2, 0], [0, 0, 2, 0]])
    labels = np.array([0, 0, 1, 1, 2])
    assign = readout.assign_labels(counts, labels, 3)
    np.testing.assert_array_equal(assign, [1, 0, 2, -1])
    test = np.array([[0, 9, 0, 0], [7, 1, 0, 0], [0, 1, 3, 5]])
    np.testing.assert_array_equal(readout.predict(test, assign, 3), [0, 1, 2])
    assert readout.confusion([0, 1, 2], [0, 1, 1], 3).tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="labels"):
        readout.assign_labels(counts, labels[:3], 3)


def test_field_copies_counts_neurons_that_learned_the_same_field():
    rng = np.random.default_rng(0)
    a, b, c = (rng.random(64) for _ in range(3))
    # neurons 0, 1, 3 hold field a (1 scaled: cosine ignores scale, 3 slightly noisy), 2 holds b, 4 holds c
    w = np.stack([a, 2 * a, b, a + 0.01 * rng.random(64), c], axis=1)
    r = readout.field_copies(w)
    assert r["distinct_fields"] == 3 and r["neurons_with_copy"] == pytest.approx(3 / 5)
    assert readout.field_copies(np.eye(5))["distinct_fields"] == 5  # orthogonal fields: no copies
    with pytest.raises(ValueError, match="n_input, n_neurons"):
        readout.field_copies(np.ones(5))


def test_paired_comparison_counts_disagreements_and_gives_the_exact_p_value():
    labels = np.zeros(20, int)
    a, b = labels.copy(), labels.copy()
    a[:2] = 1  # both wrong on item 0; only b right on item 1 ...
    b[0] = 1
    b[2:10] = 1  # ... and only a right on items 2-9
    c = readout.paired_comparison(a, b, labels)
    assert (c["only_a"], c["only_b"], c["n"]) == (8, 1, 20)
    assert c["accuracy_a"] == pytest.approx(0.9) and c["accuracy_b"] == pytest.approx(0.55)
    assert c["p_value"] == pytest.approx(2 * (1 + 9) / 2 ** 9)  # two-sided binomial, 1 of 9 discordant
    same = readout.paired_comparison(a, a, labels)
    assert (same["only_a"], same["only_b"], same["p_value"]) == (0, 0, 1.0)
    with pytest.raises(ValueError, match="shape"):
        readout.paired_comparison(a, b[:5], labels)

"""STDP rules in Brian2: updates of known spike pairs, the learning-rate scale, frozen synapses. Runtime (numpy)
backend, no compilation."""

from __future__ import annotations

import brian2 as b2
import numpy as np
import pytest
from brian2 import Network, NeuronGroup, Synapses, ms

from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.stdp import PowerLawSTDP, TraceSTDP, eta_schedule, schedule_trace_update

pytestmark = pytest.mark.brian2


def _at(times_ms) -> str:
    return "(" + " or ".join(f"abs(t - {t}*ms) < 0.5*dt" for t in times_ms) + ")"


def _pair_network(rule, pre_times_ms, post_times_ms, w0, traces="synapse"):
    """One pre → one post synapse (plus a pruned twin) with spikes at exactly the given times; ``traces``: where
    the rule keeps its traces (the neuron-held form adds variables and resets to the two groups)."""
    sm = rule.synapse_model(traces=traces)
    if traces == "synapse":
        pre = b2.SpikeGeneratorGroup(1, np.zeros(len(pre_times_ms), int), np.asarray(pre_times_ms) * ms)
    else:
        pre = NeuronGroup(
            1, sm.pre_equations, threshold=_at(pre_times_ms), reset=sm.pre_reset, namespace=sm.pre_namespace
        )
        schedule_trace_update(pre)
    post = NeuronGroup(1, "ge : 1\n" + sm.post_equations, threshold=_at(post_times_ms), reset=sm.post_reset or None)
    syn = Synapses(pre, post, sm.model, on_pre=sm.on_pre, on_post=sm.on_post, namespace=sm.namespace)
    syn.connect(n=2)  # synapse 0 alive, synapse 1 pruned
    syn.w = [w0, 0.0]
    syn.alive = [1.0, 0.0]
    syn.learning = 1.0
    syn.eta_scale = 1.0
    return Network(pre, post, syn), syn


TRACES = pytest.mark.parametrize("traces", ["synapse", "neuron"])


@TRACES
def test_power_law_stdp_update_of_a_spike_pair(traces):
    rule = PowerLawSTDP(eta=0.01, x_offset=0.4, mu=0.2, w_max=1.0, tau_pre=20.0)
    with backend(Backend("numpy")):
        b2.defaultclock.dt = 0.1 * ms
        net, syn = _pair_network(rule, [10.0], [15.0, 60.0], w0=0.5, traces=traces)
        net.run(80 * ms, namespace={})
        w = np.asarray(syn.w[:])
    # post at 15 ms: x_pre = exp(-5/20) potentiates; post at 60 ms: x_pre = exp(-50/20) < x_offset depresses
    w1 = 0.5 + 0.01 * (np.exp(-5 / 20) - 0.4) * (1 - 0.5) ** 0.2
    w2 = w1 + 0.01 * (np.exp(-50 / 20) - 0.4) * (1 - w1) ** 0.2
    assert w[0] == pytest.approx(w2, rel=1e-9)
    assert w1 > 0.5 and w2 < w1
    assert rule.delta_w(np.exp(-5 / 20), 0.5) == pytest.approx(w1 - 0.5)
    assert w[1] == 0.0  # pruned synapse never changes


@TRACES
def test_a_pre_spike_counts_for_a_post_spike_of_the_same_step(traces):
    # the presynaptic pathway runs before the postsynaptic one in a step; the neuron-held trace is advanced
    # right after the thresholds, so both forms see the spike of this step: x_pre = 1 at the post spike
    rule = PowerLawSTDP(eta=0.01, x_offset=0.4, mu=0.2, w_max=1.0, tau_pre=20.0)
    with backend(Backend("numpy")):
        b2.defaultclock.dt = 0.1 * ms
        net, syn = _pair_network(rule, [10.0], [10.0], w0=0.5, traces=traces)
        net.run(20 * ms, namespace={})
        w = np.asarray(syn.w[:])
    assert w[0] == pytest.approx(0.5 + 0.01 * (1.0 - 0.4) * 0.5**0.2, rel=1e-12)


@pytest.mark.parametrize("rule", [PowerLawSTDP(eta=0.01), TraceSTDP()], ids=["power_law", "trace"])
@TRACES
def test_eta_scale_scales_every_update_of_a_spike_pair(rule, traces):
    # the annealing knob: eta_scale = 0.25 gives a quarter of each update of the rule's own rate (both rules,
    # potentiation and depression), far from the clip bounds
    changes = {}
    for scale in (1.0, 0.25):
        with backend(Backend("numpy")):
            b2.defaultclock.dt = 0.1 * ms
            net, syn = _pair_network(rule, [10.0], [5.0, 15.0, 60.0], w0=0.5, traces=traces)
            syn.eta_scale = scale
            net.run(80 * ms, namespace={})
            changes[scale] = np.asarray(syn.w[:])[0] - 0.5
    assert abs(changes[1.0]) > 1e-4
    assert changes[0.25] == pytest.approx(0.25 * changes[1.0], rel=2e-3)


@TRACES
def test_diehl_cook_trace_rule_update(traces):
    rule = TraceSTDP(nu_pre=0.0001, nu_post=0.01, tau_pre=20.0, tau_post1=20.0, tau_post2=40.0)
    with backend(Backend("numpy")):
        b2.defaultclock.dt = 0.1 * ms
        net, syn = _pair_network(rule, [10.0], [5.0, 15.0], w0=0.5, traces=traces)
        net.run(30 * ms, namespace={})
        w = np.asarray(syn.w[:])
    # pre at 10: w -= ν_pre·post1(5 ms after the post spike); post at 15: w += ν_post·pre(5 ms)·post2(10 ms)
    expected = 0.5 - 0.0001 * np.exp(-5 / 20) + 0.01 * np.exp(-5 / 20) * np.exp(-10 / 40)
    assert w[0] == pytest.approx(expected, rel=1e-9)
    assert w[1] == 0.0


@pytest.mark.parametrize("rule", [PowerLawSTDP(), TraceSTDP()], ids=["power_law", "trace"])
@TRACES
def test_frozen_synapses_keep_weights_above_w_max(rule, traces):
    # normalisation can scale weights above w_max and device levels may lie above it; with learning off
    # (labelling, test) no spike may touch them, not even the clip to [0, w_max]
    with backend(Backend("numpy")):
        b2.defaultclock.dt = 0.1 * ms
        net, syn = _pair_network(rule, [10.0, 30.0], [15.0, 35.0], w0=1.07, traces=traces)
        syn.learning = 0.0
        net.run(50 * ms, namespace={})
        frozen = np.asarray(syn.w[:])
        net2, syn2 = _pair_network(rule, [10.0, 30.0], [15.0, 35.0], w0=1.07, traces=traces)
        net2.run(50 * ms, namespace={})
        learning = np.asarray(syn2.w[:])
    assert frozen[0] == 1.07 and frozen[1] == 0.0
    assert learning[0] <= rule.w_max  # while learning, the rule's bounds hold


def test_eta_schedule_falls_geometrically_and_rejects_bad_targets():
    assert eta_schedule(0, 60000, 0.1) == 1.0
    assert eta_schedule(30000, 60000, 0.1) == pytest.approx(0.1**0.5)
    assert eta_schedule(60000, 60000, 0.1) == pytest.approx(0.1)
    assert eta_schedule(90000, 60000, 0.1) == pytest.approx(0.1)  # past the end: stays at the target
    assert eta_schedule(123, 60000, 1.0) == 1.0  # the default: constant rate
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="eta_end"):
            eta_schedule(0, 10, bad)

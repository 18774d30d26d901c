"""Brian2 neuron models: units, an analytic membrane trajectory, integration schemes, the spike gap. Runtime
(numpy) backend, no compilation."""

from __future__ import annotations

import brian2 as b2
import numpy as np
import pytest
from brian2 import Equations, Network, NeuronGroup, StateMonitor, ms, mV, volt

from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.neurons import ExcitatoryParams, excitatory_model, inhibitory_model

pytestmark = pytest.mark.brian2


def test_equations_carry_units():
    eqs = excitatory_model().equations  # a brian2 Equations, parameters renamed per population
    assert isinstance(eqs, Equations) and "exc_tau" in eqs.identifiers
    assert eqs["v"].dim == volt.dim and eqs["theta"].dim == volt.dim
    assert eqs["ge"].dim.is_dimensionless and eqs["plastic"].dim.is_dimensionless
    ns = excitatory_model().namespace
    assert ns["exc_tau"] == 100 * ms and ns["exc_v_threshold"] == -52 * mV and ns["exc_theta_plus"] == 0.05 * mV
    assert inhibitory_model().namespace["inh_e_inh"] == -85 * mV


def _exc_group(p: ExcitatoryParams, n=1):
    m = excitatory_model(p)
    return NeuronGroup(
        n,
        m.equations,
        threshold=m.threshold,
        reset=m.reset,
        refractory=m.refractory,
        method=m.method,
        namespace=m.namespace,
    )


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
        g = NeuronGroup(
            1,
            m.equations,
            threshold=m.threshold,
            reset=m.reset,
            refractory=m.refractory,
            method=m.method,
            namespace=m.namespace,
        )
        g.v, g.ge, g.gi, g.theta = -65 * mV, 2.0, 1.0, 200 * mV
        mon = StateMonitor(g, "v", record=0, dt=0.5 * ms)
        Network(g, mon).run(10 * ms, namespace={})
        return np.asarray(mon.v[0] / mV)


def test_step_mean_integration_matches_a_fine_step_reference():
    """At the network's dt = 0.5 ms, fast synaptic conductances (τ 1 and 2 ms) change a lot within a step.
    Using their exact step means keeps v within 0.01 mV of a dt = 0.005 ms reference; holding them at the
    step-start value (plain exponential Euler) or forward Euler errs by > 0.1 mV."""
    ref = _decaying_conductance_trajectory("exponential_euler", 0.005)
    err = {
        k: np.abs(_decaying_conductance_trajectory(k, 0.5) - ref).max()
        for k in ("step_mean", "exponential_euler", "euler")
    }
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

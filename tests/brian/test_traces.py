"""The fast formulation of the Brian2 engine learns what Brian2's customary one learns. With the same input draws
(``poisson="per_step"``), STDP traces held per neuron and vectorised neuron updates give the same spikes, the
same thresholds and weights equal up to float rounding as per-synapse traces and Brian2's own code, over 200 real
digits, for both rules, compiled. The interval-drawn Poisson inputs have the distribution of the
per-step draws."""

from __future__ import annotations

import brian2  # noqa: F401  (a hard dependency: a broken install must fail, not skip)
import numpy as np
import pytest

from bioSNN import data
from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.network import DiehlCookConfig, DiehlCookNetwork

pytestmark = pytest.mark.brian2

SMALL = dict(n_input=64, n_exc=20, w_sum=12.8, max_rate=255.0)


@pytest.mark.parametrize(
    "rule,t_rest",
    [("power_law", 150.0), pytest.param("diehl_cook", 0.0, marks=pytest.mark.slow)],
    ids=["power_law-rest", "diehl_cook-reset"],
)
def test_the_fast_formulation_learns_the_same_as_the_customary_one(rule, t_rest, tmp_path):
    d = data.load("digits")
    x = d.x_train.reshape(-1, 64)
    out = {}
    for traces, vectorize in (("synapse", False), ("neuron", True)):
        cfg = DiehlCookConfig(**SMALL, rule=rule, t_rest=t_rest, chunk=100, traces=traces, poisson="per_step")
        be = Backend("cpp_standalone", directory=str(tmp_path / traces), vectorize=vectorize)
        with backend(be):
            net = DiehlCookNetwork(cfg, x, be)
            w0 = net.w.copy()
            p = net.present(np.arange(200), plastic=True, progress=False)
            out[traces] = (p.counts, p.repeats, net.theta.copy(), net.w.copy())
    (c_s, r_s, th_s, w_s), (c_n, r_n, th_n, w_n) = out["synapse"], out["neuron"]
    assert c_s.sum() > 1000 and np.abs(w_s - w0).max() > 0.05  # the network spiked and learned
    # the same spikes in every presentation, the same repeats and adaptive thresholds
    np.testing.assert_array_equal(c_n, c_s)
    np.testing.assert_array_equal(r_n, r_s)
    np.testing.assert_array_equal(th_n, th_s)
    # weights: a per-synapse trace is decayed in pieces when the synapse's other neuron fires in between
    # (x·e^-a·e^-b instead of x·e^-(a+b)), and the vector exp rounds differently from the scalar one: the two
    # differ in the last bits only
    np.testing.assert_allclose(w_n, w_s, rtol=0, atol=1e-12)


def test_interval_drawn_inputs_fire_with_probability_rate_dt_per_step_of_the_presentation(tmp_path):
    """One digit shown 50 times (no repeats, nothing learned): each input's spike count over the 50 × 200 steps
    of presentation is Binomial(10,000, p_i) with p_i = pixel/255 · max_rate · dt, and no input fires in a rest."""
    from bioSNN.monitors import MonitorSpec

    d = data.load("digits")
    x = d.x_train.reshape(-1, 64)
    item = int(np.argmax((x > 0).sum(1)))  # the digit with the most lit pixels
    cfg = DiehlCookConfig(**SMALL, t_present=100.0, t_rest=50.0, max_repeats=0, chunk=50, poisson="intervals")
    spec = MonitorSpec("input", spikes=True, keep_ms=50 * cfg.t_slot)
    be = Backend("cpp_standalone", directory=str(tmp_path / "p"))
    with backend(be):
        net = DiehlCookNetwork(cfg, x, be, monitors=(spec,))
        net.present(np.full(50, item), plastic=False, progress=False)
        rec = net.recordings[spec]
    t_ms = rec.spike_t * 1e3
    assert (np.mod(t_ms + 1e-6, cfg.t_slot) < cfg.t_present).all()  # only while an item is shown
    counts = np.bincount(rec.spike_i, minlength=64)
    p = x[item] / 255.0 * cfg.max_rate * cfg.dt * 1e-3
    n = 50 * int(cfg.t_present / cfg.dt)
    assert counts[p == 0].sum() == 0
    lit = p > 0
    mean, var = n * p[lit], n * p[lit] * (1 - p[lit])
    z = (counts[lit].sum() - mean.sum()) / np.sqrt(var.sum())
    chi2 = (((counts[lit] - mean) ** 2) / var).sum()
    k = int(lit.sum())
    assert counts.sum() > 5000 and abs(z) < 4, (counts.sum(), mean.sum(), z)
    assert abs(chi2 - k) < 5 * np.sqrt(2 * k), (chi2, k)  # per input: χ² with k degrees of freedom

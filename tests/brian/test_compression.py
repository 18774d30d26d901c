"""Pruning and quantization of the input synapses, and the cost model."""

from __future__ import annotations

import numpy as np
import pytest

from bioSNN import device
from bioSNN.brian import compression


def test_pruning_never_revives_a_synapse():
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 0.2, (50, 10))
    w1, alive1 = compression.prune(w, np.ones_like(w, bool), 0.05)
    assert (w1[~alive1] == 0).all() and (alive1 == (w >= 0.05)).all()
    # STDP (or normalisation) later raises every weight above the threshold: the pruned stay pruned
    w2, alive2 = compression.prune(w1 + 0.5, alive1, 0.05)
    assert (alive2 == alive1).all() and (w2[~alive1] == 0).all()


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_quantized_weights_take_only_device_levels(bits):
    rng = np.random.default_rng(bits)
    w = rng.uniform(0, 0.8, (784, 20))
    alive = rng.random(w.shape) > 0.3
    q, cfg = compression.quantize(np.where(alive, w, 0), alive, bits)
    levels = device.from_conductance(device.level_conductances(cfg)[None], cfg)
    assert cfg.levels == 2 ** bits and cfg.w_max == pytest.approx(w[alive].max())
    assert np.isin(np.round(q, 12), np.round(levels, 12)).all()
    assert (q[~alive] == 0).all() and len(np.unique(q[alive])) <= 2 ** bits


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_quantization_without_a_zero_state_never_silences_a_kept_synapse(bits):
    rng = np.random.default_rng(bits)
    w = rng.uniform(0, 0.8, (784, 20))
    alive = w > 0.02  # as after pruning: many small kept weights
    q, cfg = compression.quantize(np.where(alive, w, 0), alive, bits, zero_level=False)
    m, n = w[alive].max(), 2 ** bits
    assert cfg.mapping == "proportional" and cfg.levels == n
    np.testing.assert_allclose(np.unique(q[alive]), m * np.arange(1, n + 1) / n)
    assert (q[alive] > 0).all() and (q[~alive] == 0).all()
    q0, _ = compression.quantize(np.where(alive, w, 0), alive, bits)  # with a zero state, small ones fall to 0
    assert (q0[alive] == 0).sum() > 0
    # the variant picks the state set: no zero state when pruning, unless asked for
    assert not compression.CompressionConfig.from_variant("pruned+q2").levels_include_zero
    assert compression.CompressionConfig.from_variant("q2").levels_include_zero
    assert compression.CompressionConfig.from_variant("pruned+q2", zero_level=True).levels_include_zero


def test_cost_report_counts_events_and_cells():
    images = np.array([[255, 0, 255, 0]], np.uint8)  # inputs 0 and 2 fire at 100 Hz for 0.5 s: 50 spikes
    alive = np.array([[1, 1], [1, 1], [1, 0], [0, 0]], bool)
    r = compression.cost_report(images, alive, bits=2, max_rate_hz=100.0, t_present_s=0.5, reference_bits=8)
    assert r["synaptic_events_per_image"] == pytest.approx(50 * 2 + 50 * 1)
    assert r["energy_vs_full"] == pytest.approx(150 / 200)
    assert r["synapses_kept"] == 5 and r["fraction_pruned"] == pytest.approx(3 / 8)
    assert r["area_vs_full"] == pytest.approx(5 * 2 / (8 * 8))


def test_posthoc_schemes_prune_quantize_and_renormalise_columns():
    from bioSNN.experiments.compression_posthoc import apply_scheme, parse_scheme

    assert parse_scheme("full") == {"prune": None, "bits": 0, "column": False, "renorm": False}
    assert parse_scheme("prune0.02+q2:column+renorm") == {"prune": 0.02, "bits": 2, "column": True, "renorm": True}
    with pytest.raises(ValueError, match="bad scheme part 'q2:rows'"):
        parse_scheme("prune0.1+q2:rows")
    rng = np.random.default_rng(1)
    w = rng.uniform(0, 0.4, (30, 4))
    w[:, 3] *= 0.25  # one neuron with small weights only
    alive = np.ones_like(w, bool)
    # global levels: the same 4 nonzero values everywhere (pruned crossbar, no zero state)
    wg, ag = apply_scheme(w, alive, parse_scheme("prune0.05+q2"), w_sum=6.0)
    m = w[w >= 0.05].max()
    assert (ag == (w >= 0.05)).all() and np.isin(np.round(wg[ag], 12), np.round(m * np.arange(1, 5) / 4, 12)).all()
    # per-column levels: each neuron's kept weights on k/4 of its own largest weight
    wc, ac = apply_scheme(w, alive, parse_scheme("prune0.05+q2:column"), w_sum=6.0)
    for j in range(4):
        mj = w[ac[:, j], j].max()
        assert np.isin(np.round(wc[ac[:, j], j] / mj * 4, 9), [1, 2, 3, 4]).all()
    # renormalised: each column sums to w_sum again, the ratios of its levels kept
    wr, _ = apply_scheme(w, alive, parse_scheme("prune0.05+q2:renorm"), w_sum=6.0)
    np.testing.assert_allclose(wr.sum(0), 6.0)
    np.testing.assert_allclose(wr / wr.sum(0), wg / wg.sum(0))
    assert (apply_scheme(w, alive, parse_scheme("full"), 6.0)[0] == w).all()

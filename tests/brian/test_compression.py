"""Pruning and quantization of the input synapses, and the cost model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bioSNN import device, energy
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
    assert cfg.levels == 2**bits and cfg.w_max == pytest.approx(w[alive].max())
    assert np.isin(np.round(q, 12), np.round(levels, 12)).all()
    assert (q[~alive] == 0).all() and len(np.unique(q[alive])) <= 2**bits


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_quantization_without_a_zero_state_never_silences_a_kept_synapse(bits):
    rng = np.random.default_rng(bits)
    w = rng.uniform(0, 0.8, (784, 20))
    alive = w > 0.02  # as after pruning: many small kept weights
    q, cfg = compression.quantize(np.where(alive, w, 0), alive, bits, zero_level=False)
    m, n = w[alive].max(), 2**bits
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
    assert r["energy_pj_per_image"] == pytest.approx(150 * energy.E_AC_PJ)  # the PyTorch engine's constants
    assert r["synapses_kept"] == 5 and r["fraction_pruned"] == pytest.approx(3 / 8)
    assert r["area_vs_full"] == pytest.approx(5 * 2 / (8 * 8))


def test_one_scheme_grammar_during_and_after_training():
    from bioSNN.experiments.compression_posthoc import apply_scheme

    c = compression.CompressionConfig.from_variant("pruned+q2:global:raise", prune_threshold=0.02)
    assert (c.prune, c.bits, c.column_levels, c.snap_to_absent) == (True, 2, False, False)
    d = compression.CompressionConfig.from_variant("pruned+q2", prune_threshold=0.02)
    assert (d.column_levels, d.snap_to_absent) == (True, True)
    with pytest.raises(ValueError, match="unknown option 'rows'"):
        compression.CompressionConfig.from_variant("q2:rows")
    rng = np.random.default_rng(1)
    w = rng.uniform(0, 0.4, (30, 4))
    w[:, 3] *= 0.25  # one neuron with small weights only
    alive = np.ones_like(w, bool)
    # global levels, weak weights raised: the same 4 nonzero values everywhere (pruned crossbar, no zero state)
    wg, ag = apply_scheme(w, alive, c, w_sum=6.0)
    m = w[w >= 0.02].max()
    assert (ag == (w >= 0.02)).all() and np.isin(np.round(wg[ag], 12), np.round(m * np.arange(1, 5) / 4, 12)).all()
    # the training default: per-neuron levels, weights nearer 0 than the lowest state pruned, columns renormalised
    wc, ac = apply_scheme(w, alive, d, w_sum=6.0)
    np.testing.assert_allclose(wc.sum(0), 6.0)
    for j in range(4):
        kept = w[ac[:, j], j]
        assert kept.min() >= w[:, j][w[:, j] >= 0.02].max() / 8  # snap_to_absent: nothing under half a level
        assert np.unique(np.round(wc[ac[:, j], j], 9)).size <= 4
    assert ac.sum() < ag.sum()  # snapping prunes more than raising
    # the post-hoc study and the training step are one function
    expect = compression.compress(w.copy(), alive.copy(), d, 6.0)
    np.testing.assert_array_equal(wc, expect[0])
    assert (apply_scheme(w, alive, compression.CompressionConfig.from_variant("full"), 6.0)[0] == w).all()


def test_column_levels_keep_each_fields_shape_and_the_normalisation_sum():
    rng = np.random.default_rng(2)
    w = rng.uniform(0.0, 1.0, (40, 3))
    w[:, 1] *= 0.2  # a neuron whose weights are all small: global levels flatten it, column levels do not
    alive = w > 0.05
    wg, _ = compression.quantize(w, alive, 2, zero_level=False)
    assert np.unique(wg[alive[:, 1], 1]).size <= 2  # one level set up to the array's max: 0.25 and maybe 0.5
    wc, dev, gain = compression.quantize_columns(w, alive, 2, zero_level=False, column_sum=10.0)
    assert dev.mapping == "proportional" and dev.w_max == 1.0
    levels = np.ravel(device.from_conductance(device.level_conductances(dev)[None], dev))
    np.testing.assert_allclose(levels, [0.25, 0.5, 0.75, 1.0])
    for j in range(3):
        assert np.unique(np.round(wc[alive[:, j], j], 12)).size == 4  # all four states used in every column
        assert np.isin(np.round(wc[alive[:, j], j] / gain[j], 12), np.round(levels, 12)).all()
        # nearest level of the column's own scale: the largest weight is the top state
        assert wc[w[:, j].argmax(), j] == wc[:, j].max() == pytest.approx(gain[j])
    np.testing.assert_allclose(wc.sum(0), 10.0)
    assert (wc[~alive] == 0).all()
    # without column_sum the gain is the column's largest weight
    wm, _, gm = compression.quantize_columns(w, alive, 2, zero_level=True)
    np.testing.assert_allclose(gm, np.where(alive, w, 0).max(0))
    np.testing.assert_allclose(wm.max(0), gm)


def test_compress_prunes_then_quantizes_as_configured():
    rng = np.random.default_rng(3)
    w = rng.uniform(0.0, 0.5, (30, 4))
    alive = np.ones_like(w, bool)
    comp = compression.CompressionConfig.from_variant("pruned+q2", prune_threshold=0.1, column_levels=True)
    w2, a2, dev, gain = compression.compress(w, alive, comp, column_sum=5.0)
    assert (a2 == (w >= 0.1)).all() and dev["levels"] == 4 and dev["mapping"] == "proportional"
    np.testing.assert_allclose(w2.sum(0), 5.0)
    assert gain.shape == (4,)
    full = compression.CompressionConfig.from_variant("pruned", prune_threshold=0.1)
    w3, a3, dev3, gain3 = compression.compress(w, alive, full)
    assert dev3 is None and gain3 is None and (w3[a3] == w[a3]).all()


@pytest.mark.parametrize("column_levels", [False, True])
def test_weights_nearer_zero_than_the_lowest_state_are_pruned_not_raised(column_levels):
    w = np.array([[0.03, 0.2], [0.1, 0.04], [0.15, 0.08], [0.8, 0.4], [0.5, 0.3]])
    alive = np.ones_like(w, bool)
    comp = compression.CompressionConfig.from_variant("pruned+q2", prune_threshold=0.02, column_levels=column_levels)
    w2, a2, dev, _ = compression.compress(w, alive, comp, column_sum=None)
    m = w.max(0) if column_levels else w.max()
    expected = w >= m / 8  # the lowest state is m/4: below m/8 a weight is nearer an absent cell
    assert (a2 == expected).all() and (w2[~a2] == 0).all() and (w2[a2] > 0).all()
    old = dataclasses.replace(comp, snap_to_absent=False)
    w3, a3, _, _ = compression.compress(w, alive, old)
    assert a3.all() and np.isclose(w3[0, 0], (w.max() if not column_levels else w[:, 0].max()) / 4)


def test_error_feedback_lets_sub_level_changes_add_up_instead_of_snapping_back():
    # one array-wide level set (0, 0.3, 0.6, 0.9); synapse 0 sits on 0.3 and STDP adds 0.1 per interval
    w = np.array([[0.3], [0.9], [0.6]])
    alive = np.ones_like(w, bool)
    plain = compression.CompressionConfig.from_variant("q2", column_levels=False)
    fed = dataclasses.replace(plain, error_feedback=True)
    w_plain, w_fed, residual, path = w.copy(), w.copy(), None, []
    for _ in range(6):
        w_plain[0, 0] += 0.1
        w_plain, _, _, _, r_plain = compression.compress_with_feedback(w_plain, alive, plain)
        w_fed[0, 0] += 0.1
        w_fed, _, dev, _, residual = compression.compress_with_feedback(w_fed, alive, fed, residual=residual)
        path.append(round(float(w_fed[0, 0]), 9))
        assert r_plain is None and np.isclose(w_plain[0, 0], 0.3)  # without feedback: snapped back every time
        assert np.abs(residual).max() <= 0.15 + 1e-12  # the carried remainder stays within half a level
    # with feedback the synapse climbs one level per 3 intervals on average: 0.3 -> 0.9 after 6 steps of +0.1
    assert path == [0.3, 0.6, 0.6, 0.6, 0.9, 0.9] and dev["levels"] == 4
    np.testing.assert_allclose(w_fed[0, 0] + residual[0, 0], 0.3 + 0.6)  # nothing of the drift is lost


def test_error_feedback_carries_nothing_at_pruned_synapses_and_checks_shapes():
    rng = np.random.default_rng(0)
    w = rng.uniform(0.0, 0.5, (20, 3))
    alive = np.ones_like(w, bool)
    comp = compression.CompressionConfig.from_variant("pruned+q2", prune_threshold=0.1, error_feedback=True)
    w2, a2, _, gain, r = compression.compress_with_feedback(w, alive, comp, column_sum=4.0)
    assert (r[~a2] == 0).all() and (w2[~a2] == 0).all() and gain.shape == (3,)
    np.testing.assert_allclose(w2.sum(0), 4.0)
    with pytest.raises(ValueError, match="residual shape"):
        compression.compress_with_feedback(w, alive, comp, residual=np.zeros((3, 20)))
    pruned_only = compression.CompressionConfig.from_variant("pruned", prune_threshold=0.1, error_feedback=True)
    assert compression.compress_with_feedback(w, alive, pruned_only)[4] is None  # nothing is rounded

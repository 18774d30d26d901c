"""The read-out of Diehl & Cook networks: label assignment, prediction, field copies, paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from bioSNN.brian import readout


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
    assert c["p_value"] == pytest.approx(2 * (1 + 9) / 2**9)  # two-sided binomial, 1 of 9 discordant
    same = readout.paired_comparison(a, a, labels)
    assert (same["only_a"], same["only_b"], same["p_value"]) == (0, 0, 1.0)
    with pytest.raises(ValueError, match="shape"):
        readout.paired_comparison(a, b[:5], labels)

"""The STDP training loop's pieces that need no simulation: the running training curve and its checkpoint."""

from __future__ import annotations

import json

import numpy as np

from bioSNN.brian.training import RunningCurve


def test_running_curve_labels_each_block_from_the_previous_one_and_survives_a_checkpoint():
    # 3 neurons, neuron k answers class k; the third block swaps neurons 0 and 1, so its labels from block 2 fail
    labels = np.array([0, 1, 2, 0] * 3)
    counts = np.eye(3, dtype=np.int32)[labels] * 5
    counts[8:10] = counts[8:10][:, [1, 0, 2]]
    repeats = np.arange(12) % 3
    whole = RunningCurve(block=4, n_classes=3)
    whole.add(counts, labels, repeats)
    assert whole.images == [8, 12]  # points sit at the images seen after their block
    assert whole.accuracy == [1.0, 0.5]  # block 3: the two swapped images (classes 0 and 1) are misread
    assert whole.mean_repeats == repeats.mean()
    # fed in uneven chunks, with a checkpoint (state -> restore into a fresh curve) in the middle of a block
    first = RunningCurve(block=4, n_classes=3)
    first.add(counts[:3], labels[:3], repeats[:3])
    first.add(counts[3:6], labels[3:6], repeats[3:6])
    arrays, js = first.state()
    resumed = RunningCurve(block=4, n_classes=3)
    resumed.restore(arrays, json.loads(json.dumps(js)))
    resumed.add(counts[6:], labels[6:], repeats[6:])
    assert (resumed.images, resumed.accuracy, resumed.mean_repeats) == (
        whole.images,
        whole.accuracy,
        whole.mean_repeats,
    )

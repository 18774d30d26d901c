"""The embedded default dataset: the UCI hand-written digits that scikit-learn ships.

1,797 real 8x8 digit images (Alpaydin & Kaynak, UCI "Optical Recognition of Handwritten Digits", test part),
installed with scikit-learn, so demos and the README's main command need no download. Pixels are 0–16 in the
source and are rescaled to uint8 0–255 like the other image datasets. The source has no train/test split;
bioSNN fixes one: a stratified 75/25 split drawn with seed 0 (1,347 train, 450 test), always the same.
"""

from __future__ import annotations

import numpy as np

SPLIT_SEED = 0
TEST_FRACTION = 0.25


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with each class split in the same proportion; both sorted."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        test.append(idx[: int(round(len(idx) * test_fraction))])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


def digits_raw() -> dict[str, np.ndarray]:
    """The embedded digits in the on-disk layout (``x_train, y_train, x_test, y_test, class_names``)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    labels = d.target.astype(np.uint8)
    train, test = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
    return {
        "x_train": images[train],
        "y_train": labels[train],
        "x_test": images[test],
        "y_test": labels[test],
        "class_names": np.array([str(i) for i in range(10)]),
    }

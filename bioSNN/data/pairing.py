"""Pairs of same-class samples from two datasets (multimodal training: a spoken digit with an image of it).

An *epoch* covers every sample of the anchor modality (the audio) at least once; each is paired with a seeded
random sample of the other modality that has the same label. More pairs than anchors repeat the anchors in new
shuffled orders, each time with fresh partners.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pair_by_label"]


def pair_by_label(
    anchor_labels: np.ndarray, other_labels: np.ndarray, n_pairs: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(anchor_ids, other_ids)`` of ``n_pairs`` pairs (default: one per anchor) with equal labels.

    Anchors come in shuffled passes, so every anchor is used once before any is used twice; partners are drawn
    uniformly (with replacement across passes) among the other modality's samples of the same class.
    """
    a, o = np.asarray(anchor_labels), np.asarray(other_labels)
    if a.ndim != 1 or o.ndim != 1 or len(a) == 0 or len(o) == 0:
        raise ValueError("labels must be non-empty 1-d arrays")
    missing = sorted(set(np.unique(a).tolist()) - set(np.unique(o).tolist()))
    if missing:
        raise ValueError(f"classes {missing} have anchors but no partner sample")
    n_pairs = len(a) if n_pairs is None else int(n_pairs)
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}")
    rng = np.random.default_rng(seed)
    passes = -(-n_pairs // len(a))
    anchors = np.concatenate([rng.permutation(len(a)) for _ in range(passes)])[:n_pairs]
    by_class = {c: np.flatnonzero(o == c) for c in np.unique(a)}
    partners = np.empty(n_pairs, np.int64)
    for c, pool in by_class.items():
        sel = a[anchors] == c
        partners[sel] = rng.choice(pool, size=int(sel.sum()), replace=True)
    return anchors.astype(np.int64), partners

"""Label assignment and classification from spike counts (Diehl & Cook 2015).

After training, with weights and thresholds frozen, each excitatory neuron is assigned the class for which its
average response over the labelling images is highest. A test image is classified as the class whose assigned
neurons have the highest mean spike count. Neurons that never fired stay unassigned (-1).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "assign_labels",
    "class_scores",
    "predict",
    "confusion",
    "combined_scores",
    "field_copies",
    "paired_comparison",
    "response_votes",
    "paired_responses",
]


def assign_labels(counts: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_neurons,)`` class of each neuron (−1 if silent on every image).

    Parameters
    ----------
    counts
        ``(n_images, n_neurons)`` spike counts.
    labels
        ``(n_images,)`` class of each image.
    """
    counts, labels = np.asarray(counts, float), np.asarray(labels)
    if counts.shape[0] != labels.shape[0]:
        raise ValueError(f"{counts.shape[0]} response rows but {labels.shape[0]} labels")
    mean = np.zeros((n_classes, counts.shape[1]))
    for c in range(n_classes):
        sel = labels == c
        if sel.any():
            mean[c] = counts[sel].mean(0)
    assignment = mean.argmax(0)
    assignment[mean.max(0) == 0] = -1
    return assignment


def class_scores(counts: np.ndarray, assignments: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_images, n_classes)``: mean count of the neurons assigned to each class (0 for classes with none)."""
    counts = np.asarray(counts, float)
    scores = np.zeros((counts.shape[0], n_classes))
    for c in range(n_classes):
        sel = assignments == c
        if sel.any():
            scores[:, c] = counts[:, sel].mean(1)
    return scores


def predict(counts: np.ndarray, assignments: np.ndarray, n_classes: int) -> np.ndarray:
    """Predicted class of each image (ties go to the lower class index)."""
    return class_scores(counts, assignments, n_classes).argmax(1)


def confusion(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts, rows = true class."""
    c = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(c, (np.asarray(labels), np.asarray(predictions)), 1)
    return c


def combined_scores(scores: list[np.ndarray]) -> np.ndarray:
    """Multimodal vote: each ensemble's class scores ``(n, n_classes)`` divided by their per-sample sum (so each
    ensemble casts one unit of vote, however strongly it fired), then added. Silent rows contribute nothing."""
    total = None
    for s in scores:
        s = np.asarray(s, float)
        norm = s.sum(1, keepdims=True)
        v = np.divide(s, norm, out=np.zeros_like(s), where=norm > 0)
        total = v if total is None else total + v
    return total


def field_copies(w: np.ndarray, similarity: float = 0.95) -> dict:
    """How many excitatory neurons learned the same receptive field.

    ``w``: input weights ``(n_input, n_neurons)``. Two fields are copies when the cosine similarity of their
    weight vectors exceeds ``similarity``. Returns ``neurons_with_copy`` (fraction of neurons with at least one
    copy) and ``distinct_fields`` (groups formed greedily: each neuron not yet grouped takes all its ungrouped
    copies), so N neurons that hold only k different fields behave like a network of k.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] < 1:
        raise ValueError(f"expected weights (n_input, n_neurons), got shape {w.shape}")
    norm = np.linalg.norm(w, axis=0)
    u = np.divide(w, norm, out=np.zeros_like(w), where=norm > 0)
    sim = u.T @ u
    np.fill_diagonal(sim, 0.0)
    copy = sim > similarity
    grouped = np.zeros(w.shape[1], bool)
    groups = 0
    for i in range(w.shape[1]):
        if not grouped[i]:
            grouped[i] = True
            grouped[copy[i] & ~grouped] = True
            groups += 1
    return {"neurons_with_copy": float(copy.any(1).mean()), "distinct_fields": groups, "similarity": similarity}


def paired_comparison(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray) -> dict:
    """Two classifiers on the *same* test items (exact McNemar test): how many items only ``a`` gets right, how
    many only ``b``, and the two-sided p-value of that split under "equally good" (a fair coin over the items
    where they disagree on correctness). Far more sensitive than comparing two accuracies with their own
    standard errors, since the items both get right or both get wrong carry no information."""
    from scipy.stats import binomtest

    pred_a, pred_b, labels = (np.asarray(v) for v in (pred_a, pred_b, labels))
    if not pred_a.shape == pred_b.shape == labels.shape:
        raise ValueError(f"predictions and labels differ in shape: {pred_a.shape}, {pred_b.shape}, {labels.shape}")
    ok_a, ok_b = pred_a == labels, pred_b == labels
    only_a, only_b = int((ok_a & ~ok_b).sum()), int((ok_b & ~ok_a).sum())
    n = only_a + only_b
    p = float(binomtest(min(only_a, only_b), n, 0.5).pvalue) if n else 1.0
    return {
        "n": int(labels.size),
        "accuracy_a": float(ok_a.mean()),
        "accuracy_b": float(ok_b.mean()),
        "only_a": only_a,
        "only_b": only_b,
        "p_value": p,
    }


def response_votes(path, n_classes: int) -> tuple[dict, np.ndarray]:
    """Summed-vote predictions per test condition, and the labels, from test responses saved as plain arrays
    (``<condition>/<ensemble>`` spike counts, ``assignment/<ensemble>``, ``labels``; no pickle): each ensemble's
    :func:`class_scores`, combined by :func:`combined_scores`."""
    with np.load(path, allow_pickle=False) as z:
        ensembles = [k.split("/", 1)[1] for k in z.files if k.startswith("assignment/")]  # as saved
        conds = sorted({k.split("/")[0] for k in z.files if "/" in k and not k.startswith("assignment/")})
        return (
            {
                c: combined_scores(
                    [class_scores(z[f"{c}/{n}"], z[f"assignment/{n}"], n_classes) for n in ensembles]
                ).argmax(1)
                for c in conds
            },
            z["labels"],
        )


def paired_responses(a, b, n_classes: int) -> dict:
    """Per test condition both hold, :func:`paired_comparison` of the summed votes of two networks' saved test
    responses (:func:`response_votes`) on the same test items."""
    (pa, labels), (pb, labels_b) = response_votes(a, n_classes), response_votes(b, n_classes)
    if not np.array_equal(labels, labels_b):
        raise ValueError(f"{a} and {b} hold different test items")
    return {c: paired_comparison(pa[c], pb[c], labels) for c in pa if c in pb}

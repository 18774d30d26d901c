"""Merging multimodal variants trained in separate runs (no simulation: the run folders are written here with
the layout a finished run leaves, test responses included)."""

from __future__ import annotations

import json

import brian2  # noqa: F401  (a hard dependency: a broken install must fail, not skip)
import numpy as np
import pytest

from bioSNN.experiments.multimodal_merge import main, merge

pytestmark = pytest.mark.brian2

CONDS = ("clean", "image_noise=0.8", "audio_snr=-5.0dB")
LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])


def _counts(pred):
    """Responses of a 3-neuron ensemble (neuron c assigned class c) that vote for ``pred``."""
    return np.eye(3, dtype=np.int16)[pred] * 5


def fake_run(path, variant, right: dict, test_gains=(), **config):
    """A finished run of one two-ensemble variant; ``right[cond]`` = how many of the 10 test pairs both
    ensembles get right (the rest voted for the next class). Also writes ``test_counts_gain{g}.npz``."""
    cfg = {
        "n_pairs": 30,
        "image_noise": [0.8],
        "audio_snr_db": [-5.0],
        "variants": [variant],
        "test_gains": list(test_gains),
        "image_dataset": "digits",
        **config,
    }
    out = path / "variants" / variant
    out.mkdir(parents=True)

    def responses(right):
        arrays = {"labels": LABELS, "assignment/image": np.arange(3), "assignment/audio": np.arange(3)}
        for c, k in right.items():
            pred = np.where(np.arange(10) < k, LABELS, (LABELS + 1) % 3)
            arrays.update({f"{c}/image": _counts(pred), f"{c}/audio": _counts(pred)})
        return arrays

    np.savez(out / "test_counts.npz", **responses(right))
    result = {
        "variant": variant,
        "accuracy": right["clean"] / 10,
        "by_condition": {c: k / 10 for c, k in right.items()},
        "by_ensemble": {c: {"image": k / 10, "audio": k / 10} for c, k in right.items()},
    }
    if test_gains:
        result["by_test_gain"] = {}
        for g in test_gains:
            off = {c: max(k - 3, 0) for c, k in right.items()}  # fewer right without the cross synapses
            np.savez(out / f"test_counts_gain{g:g}.npz", **responses(off))
            result["by_test_gain"][f"{g:g}"] = {"by_condition": {c: k / 10 for c, k in off.items()}, "by_ensemble": {}}
    (path / "config.json").write_text(json.dumps({"experiment": "multimodal", "config": cfg}))
    (path / "metrics.json").write_text(
        json.dumps({"variants": {variant: result}, "n_classes": 3, "n_train_pairs": 30, "n_test_pairs": 10})
    )
    return path


def test_independent_and_multimodal_runs_merge_into_one_table_with_paired_comparisons(tmp_path):
    ind = fake_run(tmp_path / "ind", "independent", dict(zip(CONDS, (7, 5, 6))))
    mm = fake_run(tmp_path / "mm", "multimodal", dict(zip(CONDS, (9, 6, 8))), test_gains=(0.0, 3.0))
    m = merge([ind, mm], tmp_path / "out")
    assert m["main_variant"] == "multimodal" and m["accuracy"] == 0.9
    acc = m["accuracy_by_network"]
    assert acc["independent"]["clean"] == 0.7 and acc["multimodal, tested at cross gain 0"]["clean"] == 0.6
    assert acc["image (ensemble of independent)"]["image_noise=0.8"] == 0.5
    # McNemar from the saved responses: pairs 7 and 8 only the multimodal network gets right
    vs = m["multimodal_vs_independent"]["clean"]
    assert (vs["only_a"], vs["only_b"], vs["accuracy_a"], vs["accuracy_b"]) == (2, 0, 0.9, 0.7)
    on_off = m["multimodal_cross_on_vs_off"]
    assert set(on_off) == set(CONDS) and (on_off["clean"]["only_a"], on_off["clean"]["only_b"]) == (3, 0)
    assert m["merged_from"] == {"independent": str(ind), "multimodal": str(mm)}
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["config"]["variants"] == ["independent", "multimodal"] and saved["config"]["test_gains"] == [0, 3]
    assert (tmp_path / "out" / "noise.png").stat().st_size > 10_000
    assert (
        json.loads((tmp_path / "out" / "metrics.json").read_text())["multimodal_vs_independent"]
        == m["multimodal_vs_independent"]
    )


def test_merge_refuses_runs_that_differ_overlap_or_test_other_pairs(tmp_path):
    ind = fake_run(tmp_path / "ind", "independent", dict(zip(CONDS, (7, 5, 6))))
    other = fake_run(tmp_path / "db80", "multimodal", dict(zip(CONDS, (9, 6, 8))), db_range=80.0)
    with pytest.raises(ValueError, match="'db_range' differs"):
        merge([ind, other], tmp_path / "out")
    assert "multimodal_vs_independent" in merge([ind, other], tmp_path / "out", ignore=("db_range",))
    with pytest.raises(ValueError, match="'independent' comes from both"):
        merge([ind, ind], tmp_path / "out2")
    moved = fake_run(tmp_path / "moved", "multimodal", dict(zip(CONDS, (9, 6, 8))))
    with np.load(moved / "variants" / "multimodal" / "test_counts.npz") as z:
        arrays = {**dict(z), "labels": np.roll(LABELS, 1)}
    np.savez(moved / "variants" / "multimodal" / "test_counts.npz", **arrays)
    with pytest.raises(ValueError, match="other test pairs"):
        merge([ind, moved], tmp_path / "out3")
    with pytest.raises(FileNotFoundError, match="not a finished multimodal run"):
        merge([tmp_path / "missing"], tmp_path / "out4")
    main([str(tmp_path / "cli"), str(ind)])
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["accuracy"] == 0.7

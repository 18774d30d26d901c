"""Merging compression variants trained in separate runs into one table and figure (no simulation: the run
folders are written here with the layout a finished run leaves)."""

from __future__ import annotations

import json

import brian2  # noqa: F401  (a hard dependency: a broken install must fail, not skip)
import pytest

from bioSNN.experiments import compression as exp
from bioSNN.experiments.compression_merge import main, merge

pytestmark = pytest.mark.brian2


def fake_run(path, variants: dict, **config):
    cfg = {"n_train": 600, "variants": list(variants), "workers": 1, "error_feedback": True, **config}
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"experiment": "compression", "config": cfg}))
    table = {
        v: {
            "accuracy": a,
            "synapses_kept": 100,
            "fraction_pruned": 0.5 if "pruned" in v else 0.0,
            "bits_per_synapse": int(v[-1]) if v[-1].isdigit() else 8,
            "energy_vs_full": 1.0,
            "area_vs_full": 1.0,
            "test_images_per_second": 1.0,
        }
        for v, a in variants.items()
    }
    details = {
        v: {"curve": {"images": [100, 200], "accuracy": [0.2, acc]}, "confusion": [[1, 0], [0, 1]]}
        for v, acc in variants.items()
    }
    (path / "metrics.json").write_text(json.dumps({"variants": table, "details": details}))
    return path


def test_variants_of_separate_runs_merge_into_one_table_and_figure(tmp_path):
    a = fake_run(tmp_path / "a", {"full": 0.81, "pruned+q2": 0.75})
    b = fake_run(tmp_path / "b", {"q1": 0.76}, workers=2)  # workers may differ
    c = fake_run(tmp_path / "c", {"q3": 0.80})
    m = merge([f"{a}:full", str(b), str(c)], tmp_path / "out")
    assert list(m["variants"]) == ["full", "q1", "q3"] and m["accuracy"] == 0.81
    assert m["variants"]["q1"]["accuracy"] == 0.76 and m["merged_from"]["q3"] == str(c)
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["config"]["variants"] == ["full", "q1", "q3"] and saved["merged"] is True
    assert (tmp_path / "out" / "compression.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["variants"] == m["variants"]


def test_merge_refuses_runs_that_differ_or_overlap(tmp_path):
    a = fake_run(tmp_path / "a", {"full": 0.81})
    old = fake_run(tmp_path / "old", {"q2": 0.7}, error_feedback=False)
    with pytest.raises(ValueError, match="'error_feedback' differs"):
        merge([str(a), str(old)], tmp_path / "out")
    assert merge([str(a), str(old)], tmp_path / "out", ignore=("error_feedback",))["config_keys_ignored"] == [
        "error_feedback"
    ]
    with pytest.raises(ValueError, match="'full' comes from both"):
        merge([str(a), str(a)], tmp_path / "out2")
    with pytest.raises(ValueError, match="no variant 'q4'"):
        merge([f"{a}:q4"], tmp_path / "out3")
    with pytest.raises(FileNotFoundError, match="not a finished compression run"):
        merge([str(tmp_path / "missing")], tmp_path / "out4")
    main([str(tmp_path / "cli"), str(a)])
    assert (tmp_path / "cli" / "metrics.json").exists()
    assert exp.Config().error_feedback is True

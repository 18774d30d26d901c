"""LITE-SNN experiments on real data slices: they learn above chance, write their results, and resume bit-identical."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bioSNN import bundles
from bioSNN.config import ConfigError, apply_overrides, validate
from bioSNN.experiments import lite, lite_nmnist

from .test_resume import kill_and_resume, lr_of

pytestmark = pytest.mark.torch


def test_sst2_slice_learns_above_chance_and_reports_every_figure(data_dir, tmp_path):
    cfg = apply_overrides(
        lite.Config(),
        {
            **lite.PRESETS["quick"],
            "train_limit": 3000,
            "epochs": 3,
            "embed": 32,
            "hidden": 32,
            "lr": 1e-2,
            "models": ("lite", "lstm"),
            "gradient_models": ("lite",),
            "gradient_sentences": 60,
        },
    )
    m = lite.run(cfg, tmp_path, progress=False)
    lt, lstm = m["models"]["lite"], m["models"]["lstm"]
    # 1,821 test sentences: chance is 0.50 ± 0.012 (1 s.d.)
    assert lt["test_accuracy"] > 0.62, lt["history"]
    assert lstm["test_accuracy"] > 0.55, lstm["history"]
    assert lt["parameters_without_embedding"] < lstm["parameters_without_embedding"] / 2
    assert lt["energy_nj_per_sample"] < lstm["energy_nj_per_sample"] / 3
    assert 0.0 < lt["mean_spike_rate"] < 0.5
    assert sum(b["n"] for b in lt["accuracy_by_length"].values()) == m["n_test"] == 1821
    bins = m["gradients"]["lite"]["bins"]
    assert sum(b["n"] for b in bins.values()) == 60
    assert all(b["first_token"] > 0 and b["last_token"] > 0 for b in bins.values()), bins
    assert set(m["claims"]) >= {"best_baseline", "energy_over_lstm", "parameters_without_embedding_over_lstm"}
    b = bundles.read(tmp_path / "lite.npz")
    assert [p.name for p in b.populations] == ["tokens", "acts.0", "acts.1", "output"]
    assert b.population("acts.0").params["steps_per_token"]["value"] == 5
    vocab = json.loads((tmp_path / "vocab.json").read_text())["tokens"]
    assert len(vocab) == m["vocab_size"] == b.population("tokens").size
    assert (tmp_path / "lite.png").stat().st_size > 10_000


def test_nmnist_slice_learns_above_chance(data_dir, tmp_path):
    cfg = apply_overrides(lite_nmnist.Config(), {"bins": (5,), "epochs": 3, "train_limit": 300, "baseline": False})
    m = lite_nmnist.run(cfg, tmp_path, progress=False)
    r = m["snn"]["5"]
    assert r["accuracy"] > 0.5, r["history"]  # 10 classes: chance 0.1
    lo, hi = r["ci95"]
    assert lo < r["accuracy"] < hi and hi - lo < 0.25
    assert 0.0 < r["mean_spike_rate"] < 0.5
    b = bundles.read(tmp_path / "snn_bins5.npz")
    assert b.extra["run"]["encoder"] == "frames" and b.extra["run"]["time_steps"] == 5


def test_frames_of_a_recording_hold_its_events(data_dir):
    from bioSNN import data

    ds = data.load("nmnist")
    f = lite_nmnist.frames(ds, np.array([0, 1]), 10, 300.0)
    assert f.shape == (2, 10, 2, 34, 34) and set(torch.unique(f).tolist()) <= {0.0, 1.0}
    ev = ds.events(0)
    inside = ev["t_us"] < 300_000
    pixels = {(int(p), int(y), int(x)) for p, y, x in zip(ev["p"][inside], ev["y"][inside], ev["x"][inside])}
    assert int(f[0].amax(0).sum()) == len(pixels)  # every (polarity, pixel) that fired, once


def test_bad_settings_are_refused_by_key():
    with pytest.raises(ConfigError, match="gradient_models"):
        validate(apply_overrides(lite.Config(), {"models": ("lstm",), "gradient_models": ("lite",)}))
    with pytest.raises(ConfigError, match="bins"):
        validate(apply_overrides(lite_nmnist.Config(), {"bins": (5, 5)}))


def test_lite_resumes_bit_identical_after_a_kill_in_its_second_model_after_a_learning_rate_drop(data_dir, tmp_path):
    # 600 phrases = 10 batches: 9 checkpoints inside epoch 1, its end the 10th; the rate drops x0.1 after it.
    # Killed inside epoch 1, then after the drop inside epoch 2 (the second resume's 4th write)
    run = kill_and_resume(
        "lite",
        [
            "train_limit=600",
            "epochs=2",
            "embed=16",
            "hidden=16",
            "models=lite,lstm",
            "gradient_models=lite",
            "gradient_sentences=20",
            "checkpoint_seconds=0",
            "lr_milestones=0.5",
        ],
        ["lstm.npz:3:after", "lstm.npz:9:after"],
        tmp_path,
    )
    assert json.loads((run / "metrics.json").read_text())["models"]["lite"]["history"]["epoch"] == [1, 2]
    assert lr_of(run / "checkpoints" / "lstm.npz") == [pytest.approx(5e-4)]  # quick: 5e-3


@pytest.mark.slow  # the same Checkpoint/fit as hybrid and diet (their resume tests run in the default set)
def test_lite_nmnist_resumes_bit_identical(data_dir, tmp_path):
    kill_and_resume(
        "lite_nmnist",
        ["bins=4", "epochs=2", "train_limit=96", "channels=4", "hidden=16", "checkpoint_seconds=0"],
        ["snn_bins4.npz:3:before", "cnn_bins4.npz:2:after"],
        tmp_path,
    )


def test_translation_runs_resumes_bit_identical_and_reports_bleu_with_its_signature(data_dir, tmp_path):
    run = kill_and_resume(
        "lite_translate",
        [
            "train_limit=300",
            "epochs=2",
            "dim=16",
            "layers=1",
            "models=conv_lif,gru",
            "select_limit=20",
            "test_limit=20",
            "beam=2",
            "max_len=12",
            "examples=2",
            "checkpoint_seconds=0",
            "lr_milestones=0.5",
            # one thread, so this check does not depend on MKL's threading (bioSNN.nn switches its dynamic thread
            # count off: on a busy machine it changed a two-thread run's epoch-1 loss in the 8th digit)
            "threads=1",
        ],
        # 300 pairs = 5 batches: inside the second model's epoch 1, then inside its epoch 2 after
        # the rate's drop (the resume's 5th write)
        ["gru.npz:2:after", "gru.npz:5:after"],
        tmp_path,
    )
    assert lr_of(run / "checkpoints" / "gru.npz") == [pytest.approx(3e-4)]  # quick: 3e-3
    m = json.loads((run / "metrics.json").read_text())
    for name in ("conv_lif", "gru"):
        r = m["models"][name]
        assert "BLEU" in r["bleu_signature"] or "nrefs:1" in r["bleu_signature"]
        assert r["history"]["train_loss"][1] < r["history"]["train_loss"][0]
        assert len(r["examples"]) == 2 and r["examples"][0]["reference"]
        assert r["energy_nj_per_sentence"] > r["energy_nj_without_output_layer"] > 0
    assert 0 < m["models"]["conv_lif"]["mean_spike_rate"] < 1
    assert m["direction"] == "de->en" and m["test_split"] == "test_2016_flickr"

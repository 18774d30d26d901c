"""The multimodal experiment driver end to end on real data (8x8 digits + FSDD): a tiny image/audio network
joined by cross-modal STDP, pruned and quantized to 2-bit levels during training (with error feedback), learns
well above chance; a unimodal variant's test under noise on the modality it
does not see is its clean test."""

from __future__ import annotations

import dataclasses
import json

import brian2  # noqa: F401  (a hard dependency: a broken install must fail, not skip)
import librosa  # noqa: F401
import numpy as np
import pytest

from bioSNN import bundles
from bioSNN.brian import readout
from bioSNN.brian.training import residual_key
from bioSNN.config import apply_overrides
from bioSNN.experiments import multimodal as exp

pytestmark = [pytest.mark.brian2, pytest.mark.data]

ENSEMBLE = {"n_exc": 30, "w_sum": 12.8, "max_rate": 255.0, "chunk": 500}


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
    """One tiny multimodal run, compressed to 2-bit levels during training, tested with cross synapses off too:
    ``(metrics, run folder, the multimodal variant's folder)``."""
    out = tmp_path_factory.mktemp("multimodal")
    cfg = apply_overrides(
        exp.Config(),
        {
            "image_dataset": "digits",
            "n_pairs": 1000,
            "n_label": 400,
            "n_mels": 8,
            "n_frames": 8,
            "variants": ("multimodal",),
            "image_noise": (0.8,),
            "audio_snr_db": (-5.0,),
            "image": {**ENSEMBLE, "n_input": 64},
            "audio": {**ENSEMBLE, "n_input": 128},
            "cross": {"w_sum": 1.0},
            "compress": "pruned+q2",
            "error_feedback": True,
            "interval": 250,
            "start": 500,
            "test_gains": (0.0,),
        },
    )
    metrics = exp.run(cfg, out, progress=False)
    # what `biosnn run` records beside the results (inspect reads the audio coding from it)
    (out / "config.json").write_text(
        json.dumps(
            {"schema": 1, "experiment": "multimodal", "preset": None, "command": [], "config": dataclasses.asdict(cfg)}
        )
    )
    return metrics, out, out / "variants" / "multimodal"


def test_tiny_compressed_multimodal_network_learns_above_chance(run):
    m, out, v = run
    mm = m["variants"]["multimodal"]
    assert m["n_train_pairs"] == 1000 and m["n_test_pairs"] == 300  # every FSDD test utterance once
    # chance is 0.1; measured 0.657 for seed 0 (0.62 uncompressed)
    assert mm["accuracy"] > 0.45, mm["accuracy"]
    assert mm["by_condition"]["image_noise=0.8"] < mm["accuracy"]
    assert mm["by_ensemble"]["image_noise=0.8"]["image"] < mm["by_ensemble"]["clean"]["image"]
    assert (out / "noise.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((v / "result.json").read_text())["accuracy"] == mm["accuracy"]


def test_compression_reaches_input_and_cross_modal_synapses(run):
    mm = run[0]["variants"]["multimodal"]
    assert set(mm["fraction_kept"]) == {"image", "audio", "image_to_audio", "audio_to_image"}
    assert all(0 < f < 0.9 for f in mm["fraction_kept"].values()), mm["fraction_kept"]
    net = bundles.read(run[2] / "network.npz").arrays
    for key in ("image.input_exc", "audio.input_exc", "image_to_audio", "audio_to_image"):
        w, alive = net[f"{key}.w"], net[f"{key}.alive"]
        assert (w[~alive] == 0).all()
        assert max(len(np.unique(w[j, alive[j]])) for j in range(w.shape[0])) <= 4, key  # 2 bits per neuron
    assert set(mm["cross_weight_mean"]) == {"image_to_audio", "audio_to_image"}
    assert all((net[f"{k}.w"] >= 0).all() for k in ("image_to_audio", "audio_to_image"))  # excitatory only


def test_error_feedback_remainder_is_checkpointed_training_state_only(run):
    ckpt = bundles.read(run[2] / "checkpoint.npz").arrays
    for key in ("image", "audio", "image_to_audio", "audio_to_image"):
        r = ckpt[residual_key(key)]
        w, alive = (ckpt[residual_key(key).replace("quantization_residual", a)] for a in ("w", "alive"))
        assert r.shape == w.shape and (r[~alive] == 0).all() and 0 < np.abs(r).max() <= 2 / 3 * w.max(), key
    assert not any("residual" in k for k in bundles.read(run[2] / "network.npz").arrays)


def test_saved_test_responses_reproduce_the_reported_votes(run):
    mm = run[0]["variants"]["multimodal"]
    with np.load(run[2] / "test_counts.npz", allow_pickle=False) as z:
        scores = [readout.class_scores(z[f"clean/{n}"], z[f"assignment/{n}"], 10) for n in ("image", "audio")]
        pred = readout.combined_scores(scores).argmax(1)
        assert z["image_noise=0.8/image"].shape == (300, 30)
        assert (pred == z["labels"]).mean() == pytest.approx(mm["accuracy"])
        # each ensemble's own vote inside the coupled network, reported per condition
        for n in ("image", "audio"):
            own = readout.predict(z[f"clean/{n}"], z[f"assignment/{n}"], 10)
            assert mm["by_ensemble"]["clean"][n] == pytest.approx((own == z["labels"]).mean())


def test_paired_comparison_reads_both_variants_saved_responses(run, tmp_path):
    mm, v = run[0]["variants"]["multimodal"], run[2]
    # a stand-in "independent" variant whose neurons all vote for class 0
    (tmp_path / "independent").mkdir()
    with np.load(v / "test_counts.npz", allow_pickle=False) as z:
        arrays = {k: (np.zeros_like(z[k]) if k.startswith("assignment/") else z[k]) for k in z.files}
    np.savez(tmp_path / "independent" / "test_counts.npz", **arrays)
    gain = exp.cross_gain(v, tmp_path / "independent", 10)
    assert set(gain) == {"clean", "image_noise=0.8", "audio_snr=-5.0dB"}
    c = gain["clean"]
    assert c["accuracy_a"] == pytest.approx(mm["accuracy"])
    assert c["accuracy_b"] == pytest.approx((arrays["labels"] == 0).mean())
    assert c["only_a"] - c["only_b"] == round((c["accuracy_a"] - c["accuracy_b"]) * 300) and c["p_value"] < 1e-6


def test_the_network_tested_with_its_cross_synapses_off(run):
    # labelled and tested in the PyTorch engine (the default) with the trained cross weights at gain 0; its
    # accuracies and the paired on/off comparison come from its own saved responses
    m, _, v = run
    mm = m["variants"]["multimodal"]
    off = mm["by_test_gain"]["0"]
    assert mm["test_engine"] == off["test_engine"] == "torch" and 0 < mm["label_and_test_seconds"] < 300
    assert set(off["by_condition"]) == set(mm["by_condition"]) and set(off["by_ensemble"]) == set(mm["by_ensemble"])
    with np.load(v / "test_counts_gain0.npz", allow_pickle=False) as z:
        scores = [readout.class_scores(z[f"clean/{n}"], z[f"assignment/{n}"], 10) for n in ("image", "audio")]
        assert (readout.combined_scores(scores).argmax(1) == z["labels"]).mean() == pytest.approx(
            off["by_condition"]["clean"]
        )
    on_off = m["multimodal_cross_on_vs_off"]["clean"]
    assert on_off["accuracy_a"] == pytest.approx(mm["accuracy"])
    assert on_off["accuracy_b"] == pytest.approx(off["by_condition"]["clean"])
    assert "multimodal, tested at cross gain 0" in m["accuracy_by_network"]


def test_a_unimodal_network_reuses_its_clean_test_for_noise_on_the_other_modality():
    clean_img, clean_aud, noisy_img, noisy_aud = np.arange(3), np.arange(3), np.arange(3, 6), np.arange(3, 6)
    conditions = {
        "clean": (clean_img, clean_aud),
        "image_noise=0.4": (noisy_img, clean_aud),
        "audio_snr=0dB": (clean_img, noisy_aud),
    }
    assert exp.same_test(conditions, ("image",)) == {
        "clean": "clean",
        "image_noise=0.4": "image_noise=0.4",
        "audio_snr=0dB": "clean",
    }
    assert exp.same_test(conditions, ("audio",))["image_noise=0.4"] == "clean"
    assert exp.same_test(conditions, ("image", "audio")) == {k: k for k in conditions}


def test_unimodal_accuracies_come_from_the_independent_ensembles_when_not_trained_apart(tmp_path):
    conds = ("clean", "image_noise=0.8", "audio_snr=-5.0dB")
    ind = {
        "by_condition": dict(zip(conds, (0.90, 0.70, 0.80))),
        "by_ensemble": {c: {"image": i, "audio": a} for c, i, a in zip(conds, (0.8, 0.1, 0.8), (0.7, 0.7, 0.2))},
    }
    mm = {"by_condition": dict(zip(conds, (0.93, 0.75, 0.85))), "by_ensemble": {}}
    acc = exp.accuracy_by_network({"independent": ind, "multimodal": mm})
    assert acc["image (ensemble of independent)"] == {"clean": 0.8, "image_noise=0.8": 0.1, "audio_snr=-5.0dB": 0.8}
    assert acc["audio (ensemble of independent)"]["audio_snr=-5.0dB"] == 0.2 and acc["multimodal"]["clean"] == 0.93
    # a unimodal variant trained on its own takes precedence over the ensemble of the independent network
    image = {"by_condition": dict(zip(conds, (0.79, 0.12, 0.79))), "by_ensemble": {}}
    acc = exp.accuracy_by_network({"image": image, "independent": ind})
    assert acc["image"]["clean"] == 0.79 and "image (ensemble of independent)" not in acc
    assert "audio (ensemble of independent)" in acc
    cfg = exp.Config(image_noise=(0.8,), audio_snr_db=(-5.0,))
    exp._figure(tmp_path / "noise.png", {"independent": ind, "multimodal": mm}, cfg.image_noise, cfg.audio_snr_db)
    assert (tmp_path / "noise.png").stat().st_size > 10_000


@pytest.mark.torch
@pytest.mark.parametrize("engine", ["torch", "brian2"])
def test_inspect_the_multimodal_run(run, engine):
    """`biosnn inspect RUN` on a multimodal run folder: its multimodal variant on the first clean test pair,
    monitors on both ensembles' populations, audio coded as the run coded it."""
    from bioSNN.inspect import inspect

    _, out, v = run
    where = inspect(out, engine, "audio_exc", ("v", "ge"), (0, 7), items=1)
    assert where == v / f"inspect-{engine}"
    summary = json.loads((where / "inspect.json").read_text())
    assert summary["ensembles"] == ["image", "audio"] and summary["cross_gain"] == 1.0
    z = np.load(where / "recording.npz", allow_pickle=False)
    assert z["audio_exc/v"].shape == (2, len(z["audio_exc/t"])) and z["audio_exc/v"].std() > 1e-3
    assert summary["rates_hz"]["image_input"] > 10 and summary["rates_hz"]["audio_input"] > 1
    assert len(z["image_exc/spike_t"]) + len(z["audio_exc/spike_t"]) > 0
    assert max(z["audio_input/spike_i"]) < 128 and max(z["image_input/spike_i"]) < 64

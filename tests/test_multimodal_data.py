"""Multimodal data plumbing: label pairing, corruptions, the combined vote, audio features of real FSDD clips."""

from __future__ import annotations

import numpy as np
import pytest

from bioSNN import noise
from bioSNN.brian.readout import combined_scores
from bioSNN.data.pairing import pair_by_label
from bioSNN.encoding import audio_features, features_to_intensity


def test_pairs_always_share_the_label_and_cover_every_anchor():
    rng = np.random.default_rng(0)
    audio, images = rng.integers(0, 10, 300), rng.integers(0, 10, 2000)
    a, o = pair_by_label(audio, images, seed=3)
    assert len(a) == 300 and np.array_equal(np.sort(a), np.arange(300))  # one epoch: each anchor once
    assert np.array_equal(audio[a], images[o])
    a2, o2 = pair_by_label(audio, images, n_pairs=750, seed=3)
    assert np.array_equal(audio[a2], images[o2]) and np.bincount(a2).min() == 2 and np.bincount(a2).max() == 3
    assert np.array_equal(pair_by_label(audio, images, seed=3)[1], o)  # seeded
    with pytest.raises(ValueError, match="no partner"):
        pair_by_label(np.array([0, 1]), np.array([0, 0]))


def test_white_noise_hits_the_requested_snr():
    t = np.arange(80000) / 8000.0
    clean = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for snr in (20.0, 0.0, -5.0):
        noisy = noise.white_noise(clean, snr, seed=1)
        n = noisy - clean
        measured = 10 * np.log10(np.mean(clean.astype(float) ** 2) / np.mean(n.astype(float) ** 2))
        assert measured == pytest.approx(snr, abs=0.1)


def test_pixel_noise_and_occlusion():
    x = np.full((500, 28, 28), 128, np.uint8)
    noisy = noise.gaussian_pixel_noise(x, 0.1, seed=0)
    assert noisy.dtype == np.uint8 and np.std(noisy.astype(float)) == pytest.approx(25.5, rel=0.02)
    occ = noise.occlude(x.reshape(500, -1), 0.25, seed=0)
    assert occ.shape == (500, 784) and np.all((occ == 0).sum(1) == 14 * 14)
    with pytest.raises(ValueError, match="fraction"):
        noise.occlude(x, 1.5)


def test_combined_vote_gives_each_ensemble_one_unit():
    strong = np.array([[100.0, 0, 0], [0, 0, 0]])  # fires a lot for class 0; silent on the second sample
    weak = np.array([[0, 1.0, 1.5], [0, 2.0, 0]])
    v = combined_scores([strong, weak])
    np.testing.assert_allclose(v, [[1.0, 0.4, 0.6], [0, 1.0, 0]])
    assert v.argmax(1).tolist() == [0, 1]


@pytest.mark.data
def test_audio_features_of_real_fsdd_clips_are_fixed_size_and_deterministic(data_dir):
    from bioSNN import data

    ds = data.load("fsdd")
    f1 = audio_features(ds.waveform(0), ds.sample_rate, "mel", n_features=20, n_frames=16)
    f2 = audio_features(ds.waveform(0), ds.sample_rate, "mel", n_features=20, n_frames=16)
    f3 = audio_features(ds.waveform(1), ds.sample_rate, "mel", n_features=20, n_frames=16)
    assert f1.shape == f3.shape == (20, 16) and np.array_equal(f1, f2) and not np.array_equal(f1, f3)
    img = features_to_intensity(f1)
    assert img.dtype == np.uint8 and img.min() == 0 and img.max() == 255


def test_onoff_audio_code_splits_standardised_features():
    from bioSNN.encoding import audio_inputs, code_audio

    rng = np.random.default_rng(0)
    feats = rng.normal(-40.0, 5.0, (50, 6)).astype(np.float32)
    stats = (feats.mean(0), feats.std(0))
    x = code_audio(feats, "onoff", stats, z_full=2.0)
    assert x.shape == (50, 12) == (50, audio_inputs(2, 3, "onoff")) and x.dtype == np.uint8
    on, off = x[:, :6], x[:, 6:]
    assert not ((on > 0) & (off > 0)).any()  # a feature is above or below its mean, never both
    z = (feats - stats[0]) / stats[1]
    np.testing.assert_array_equal(on > 0, np.rint(np.clip(z / 2, 0, 1) * 255) > 0)
    assert (on[z >= 2.0] == 255).all() and (off[z <= -2.0] == 255).all()  # full rate at |z| >= onoff_z
    mean_row = code_audio(stats[0][None], "onoff", stats)
    assert (mean_row == 0).all()  # the spectral shape every utterance shares drives nothing
    mm = code_audio(feats, "minmax")  # each row scaled to 0-255 like a grey image
    assert (mm.min(1) == 0).all() and (mm.max(1) == 255).all() and audio_inputs(2, 3, "minmax") == 6
    with pytest.raises(ValueError, match="audio code must be one of"):
        code_audio(feats, "mfcc", stats)
    with pytest.raises(ValueError, match="training rows"):
        code_audio(feats, "onoff")


def test_onoff_stats_keep_a_constant_feature_finite():
    from bioSNN.encoding import onoff_code, onoff_stats

    feats = np.array([[-80.0, 1.0], [-80.0, 3.0], [-80.0, 5.0]])  # feature 0: a silent band at the dB floor
    mean, std = onoff_stats(feats)
    np.testing.assert_allclose(mean, [-80.0, 3.0])
    assert std[0] == pytest.approx(1e-6) and std[1] == pytest.approx(np.sqrt(8 / 3) + 1e-6)
    x = onoff_code(feats, mean, std)
    assert (x[:, [0, 2]] == 0).all()  # the silent band drives neither its ON nor its OFF input
    with pytest.raises(ValueError, match="training rows"):
        onoff_stats(feats[:1])


@pytest.mark.data
def test_utterance_features_stack_clips_and_fix_each_clips_noise(data_dir):
    from bioSNN import data
    from bioSNN.encoding import onoff_code, utterance_features

    ds = data.load("fsdd")
    idx = np.array([3, 0, 7])
    f = utterance_features(ds, idx, "mel", 10, 12)
    assert f.shape == (3, 120) and f.dtype == np.float32
    np.testing.assert_array_equal(
        f[1], audio_features(ds.waveform(0, normalise=True), ds.sample_rate, "mel", 10, 12).ravel()
    )
    n1 = utterance_features(ds, idx, "mel", 10, 12, snr_db=0.0, seed=5)
    n2 = utterance_features(ds, idx[::-1], "mel", 10, 12, snr_db=0.0, seed=5)
    np.testing.assert_array_equal(n1, n2[::-1])  # a clip's noise depends on the clip, not on its position
    assert not np.allclose(n1, f)  # 0 dB noise changes the features
    with pytest.raises(ValueError, match="db_range"):
        utterance_features(ds, idx, "mel", 10, 12, db_range=0.0)
    with pytest.raises(ValueError, match="mean and std"):
        onoff_code(f, f.mean(0)[:5], f.std(0))
    with pytest.raises(ValueError, match="std must be > 0"):
        onoff_code(f, f.mean(0), np.zeros(120))

"""Encoders: Poisson statistics and seeding, direct coding, audio features on real FSDD clips, event frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bioSNN import data, encoding


def test_intensity_to_rates_matches_diehl_cook():
    r = encoding.intensity_to_rates(np.array([0, 128, 255], np.uint8), max_rate=63.75)
    np.testing.assert_allclose(r, [0.0, 128 / 4, 63.75])
    with pytest.raises(ValueError, match="intensities"):
        encoding.intensity_to_rates(np.array([-0.1, 0.5]))


def test_poisson_spike_counts_follow_rates():
    rates = np.array([0.0, 10.0, 50.0, 100.0])
    s = encoding.poisson_spikes(rates, n_steps=200_000, dt=1e-3, seed=1)
    assert s.dtype == bool and s.shape == (200_000, 4)
    measured = s.mean(0) / 1e-3
    expected_sd = np.sqrt(rates * 1e-3 * (1 - rates * 1e-3) / 200_000) / 1e-3
    assert measured[0] == 0
    assert np.all(np.abs(measured - rates) <= 4 * expected_sd + 1e-12)
    np.testing.assert_array_equal(s[:100], encoding.poisson_spikes(rates, 200_000, 1e-3, seed=1)[:100])
    assert not np.array_equal(s, encoding.poisson_spikes(rates, 200_000, 1e-3, seed=2))
    with pytest.raises(ValueError, match="rate\\*dt"):
        encoding.poisson_spikes(np.array([2000.0]), 10, dt=1e-3)


def test_signed_poisson_encode_torch_and_numpy():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.25, 1.0])
    s = encoding.poisson_encode(x, 40_000, torch.Generator().manual_seed(0))
    assert s.shape == (40_000, 5)
    np.testing.assert_allclose(s.mean(0).numpy(), x.numpy(), atol=0.01)  # E[spike] = x
    assert set(torch.unique(s).tolist()) <= {-1.0, 0.0, 1.0}
    n = encoding.poisson_encode(x.numpy(), 40_000, 0)
    np.testing.assert_allclose(n.mean(0), x.numpy(), atol=0.01)


def test_direct_encode_repeats_the_frame():
    x = torch.rand(2, 3)
    d = encoding.direct_encode(x, 5)
    assert d.shape == (5, 2, 3) and all(torch.equal(d[t], x) for t in range(5))
    dn = encoding.direct_encode(x.numpy(), 4)
    assert dn.shape == (4, 2, 3) and np.array_equal(dn[3], x.numpy())


@pytest.mark.data
def test_audio_features_on_real_fsdd(data_dir, monkeypatch):
    monkeypatch.setenv("BIOSNN_DATA", str(data_dir))
    fsdd = data.load("fsdd", download=False)
    for kind in ("mel", "mfcc"):
        feats = [
            encoding.audio_features(fsdd.waveform(i), fsdd.sample_rate, kind=kind, n_features=20, n_frames=30)
            for i in (0, 1, 2999)
        ]
        assert all(f.shape == (20, 30) and f.dtype == np.float32 and np.isfinite(f).all() for f in feats)
        again = encoding.audio_features(fsdd.waveform(0), fsdd.sample_rate, kind=kind, n_features=20, n_frames=30)
        np.testing.assert_array_equal(feats[0], again)  # deterministic
        assert not np.allclose(feats[0], feats[2])  # different utterances differ
    rates = encoding.features_to_rates(feats[0], max_rate=50.0)
    assert rates.min() == 0.0 and rates.max() == pytest.approx(50.0)
    with pytest.raises(ValueError, match="kind"):
        encoding.audio_features(fsdd.waveform(0), 8000, kind="cqt")
    # the mel floor: db_range dB below the peak; a narrower range leaves fewer bins above it
    spans = {
        db: np.ptp(encoding.audio_features(fsdd.waveform(0), fsdd.sample_rate, "mel", 20, 30, db_range=db))
        for db in (80.0, 30.0)
    }
    assert spans[30.0] <= 30.0 + 1e-3 < spans[80.0] <= 80.0 + 1e-3  # time-warping may shave the peak a little
    wide, narrow = (
        encoding.features_to_intensity(
            encoding.audio_features(fsdd.waveform(0), fsdd.sample_rate, "mel", 20, 30, db_range=db)
        )
        for db in (80.0, 30.0)
    )
    assert (narrow == 0).mean() > (wide == 0).mean()
    with pytest.raises(ValueError, match="db_range"):
        encoding.audio_features(fsdd.waveform(0), 8000, "mel", db_range=0.0)


def test_spectral_subtraction_keeps_noisy_speech_close_to_clean(data_dir, monkeypatch):
    """White noise at 10 dB SNR moves the log-mel features of ten real FSDD clips about half as far from their
    clean features with spectral subtraction as without it (measured: mean |Δ| 3.6 vs 6.8 dB)."""
    from bioSNN import noise

    monkeypatch.setenv("BIOSNN_DATA", str(data_dir))
    fsdd = data.load("fsdd", download=False)
    dist = {}
    for q in (None, 10.0):

        def feat(w):
            return encoding.audio_features(w, fsdd.sample_rate, "mel", 20, 20, db_range=40.0, denoise_percentile=q)

        dist[q] = np.mean(
            [
                np.abs(feat(w) - feat(noise.white_noise(w, 10.0, seed=i))).mean()
                for i in range(0, 3000, 300)
                for w in [fsdd.waveform(i, normalise=True)]
            ]
        )
        clean = feat(fsdd.waveform(0, normalise=True))
        assert clean.shape == (20, 20) and np.isfinite(clean).all() and np.ptp(clean) <= 40.0 + 1e-3
    assert dist[10.0] < 0.7 * dist[None], dist
    with pytest.raises(ValueError, match="denoise_percentile"):
        encoding.audio_features(fsdd.waveform(0), 8000, "mfcc", denoise_percentile=10.0)
    with pytest.raises(ValueError, match="denoise_percentile"):
        encoding.audio_features(fsdd.waveform(0), 8000, "mel", denoise_percentile=120.0)


def test_events_to_frames_counts_every_event():
    ev = {
        "x": np.array([0, 1, 1, 2]),
        "y": np.array([0, 0, 0, 1]),
        "p": np.array([0, 1, 1, 0]),
        "t_us": np.array([0, 10, 20, 99]),
    }
    f = encoding.events_to_frames(ev, (3, 2, 2), n_bins=2, duration_us=100)
    assert f.shape == (2, 2, 2, 3) and f.sum() == 4
    assert f[0, 1, 0, 1] == 2 and f[1, 0, 1, 2] == 1 and f[0, 0, 0, 0] == 1

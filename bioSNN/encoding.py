"""Input encoders: how data becomes spikes or currents.

- **Poisson rate coding** (Diehl & Cook 2015): each input fires as a Poisson process with rate
  ``r = x / x_max * max_rate`` (Hz); in discrete time a spike occurs in a step of length ``dt`` with
  probability ``r * dt``. The PyTorch form (Rathi & Roy 2020) draws ``rand <= |x|`` per step and keeps the sign.
- **Direct (analog) coding** (Rathi & Roy, DIET-SNN 2021): the same analog frame is fed at every time step.
- **Audio → features → rates**: librosa mel spectrogram or MFCC over a fixed number of frames (shorter and
  longer utterances are linearly time-warped to that number), normalised to [0, 1], then rates.
- **Event framing**: DVS events binned into ``(T, polarity, H, W)`` count frames.

Functions accept numpy arrays and, where noted, torch tensors; randomness always comes from an explicit
seed, ``numpy.random.Generator`` or ``torch.Generator``.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

__all__ = [
    "intensity_to_rates",
    "features_to_intensity",
    "poisson_spikes",
    "poisson_encode",
    "direct_encode",
    "audio_features",
    "utterance_features",
    "onoff_code",
    "onoff_stats",
    "audio_inputs",
    "code_audio",
    "features_to_rates",
    "events_to_frames",
]


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def intensity_to_rates(x, max_rate: float = 63.75, x_max: float | None = None) -> np.ndarray:
    """Firing rates in Hz, proportional to intensity: ``x / x_max * max_rate``.

    ``x_max`` defaults to 255 for integer input and 1 for floats. Diehl & Cook use ``max_rate = 63.75`` Hz
    (pixel / 4). Negative intensities or ones above ``x_max`` raise ``ValueError``.
    """
    x = np.asarray(x)
    if x_max is None:
        x_max = 255.0 if np.issubdtype(x.dtype, np.integer) else 1.0
    xf = x.astype(np.float64)
    if xf.size and (xf.min() < 0 or xf.max() > x_max):
        raise ValueError(f"intensities must lie in [0, {x_max}], got [{xf.min()}, {xf.max()}]")
    if max_rate < 0:
        raise ValueError(f"max_rate must be >= 0 Hz, got {max_rate}")
    return xf / x_max * max_rate


def poisson_spikes(rates_hz, n_steps: int, dt: float = 1e-3, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Bernoulli approximation of Poisson spike trains: bool array ``(n_steps, *rates.shape)``.

    Parameters
    ----------
    rates_hz
        Firing rate of each input in Hz (>= 0).
    n_steps
        Number of time steps.
    dt
        Step length in seconds; ``rates_hz * dt`` must not exceed 1.
    seed
        Seed or generator; the same seed gives the same spikes.
    """
    rates = np.asarray(rates_hz, dtype=np.float64)
    p = rates * dt
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"rate*dt must lie in [0, 1] (rates {rates.min()}..{rates.max()} Hz, dt {dt} s)")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return rng.random((n_steps, *p.shape)) < p


def poisson_encode(x, n_steps: int, generator=None):
    """Signed rate coding for analog input in [-1, 1]: ``spike_t = sign(x) * (u_t <= |x|)``, ``u_t ~ U(0, 1)``.

    Works on numpy arrays (``generator``: seed or ``numpy.random.Generator``) and torch tensors
    (``generator``: ``torch.Generator`` or ``None``; uniform numbers drawn in float32 for every dtype of ``x``).
    Returns ``(n_steps, *x.shape)`` in ``x``'s float dtype.
    """
    if _is_torch(x):
        import torch

        # float32 draws whatever x's dtype: a float64 run (e.g. a reference for another simulator) sees the spikes
        # of the float32 run with the same generator
        u = torch.rand((n_steps, *x.shape), generator=generator, device=x.device, dtype=torch.float32)
        return torch.sign(x) * (u.to(x.dtype) <= x.abs()).to(x.dtype)
    x = np.asarray(x, dtype=np.float32)
    rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
    return np.sign(x) * (rng.random((n_steps, *x.shape)) <= np.abs(x)).astype(x.dtype)


def direct_encode(x, n_steps: int):
    """Direct (analog) coding: the same frame at each of ``n_steps`` steps, ``(n_steps, *x.shape)``.

    Returns a broadcast view (no copy) for torch tensors and numpy arrays alike.
    """
    if _is_torch(x):
        return x.unsqueeze(0).expand(n_steps, *x.shape)
    x = np.asarray(x)
    return np.broadcast_to(x, (n_steps, *x.shape))


def _time_warp(feat: np.ndarray, n_frames: int) -> np.ndarray:
    """Linearly resample the frame axis (last) to ``n_frames``."""
    n = feat.shape[-1]
    if n == n_frames:
        return feat
    src = np.linspace(0, n - 1, n_frames)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = src - lo
    return feat[..., lo] * (1 - w) + feat[..., hi] * w


def audio_features(
    wave: np.ndarray,
    sample_rate: int,
    kind: Literal["mel", "mfcc"] = "mel",
    n_features: int = 40,
    n_frames: int = 40,
    n_fft: int = 256,
    hop_length: int = 64,
    trim_db: float | None = 30.0,
    db_range: float = 80.0,
    denoise_percentile: float | None = None,
    denoise_factor: float = 2.0,
) -> np.ndarray:
    """Fixed-size features of one utterance, ``(n_features, n_frames)`` float32.

    ``kind="mel"``: log-mel spectrogram (dB, ``n_features`` mel bands, floored ``db_range`` dB below the
    utterance's peak, so a smaller range leaves only the loudest time-frequency bins above the floor);
    ``kind="mfcc"``: ``n_features`` MFCCs.
    Leading and trailing silence quieter than ``trim_db`` below the peak is trimmed, then the frame axis is
    time-warped to ``n_frames`` so every utterance has the same length. Deterministic.

    ``denoise_percentile`` (mel only): spectral subtraction before trimming and the dB floor. Each mel band's
    stationary background is estimated as that percentile of its power over the utterance's frames (the
    pauses around a spoken digit), ``denoise_factor`` times it is subtracted (negative power clipped to 0),
    and silence is trimmed on the cleaned spectrogram. Without it, white noise fills the bins that are at the
    floor in clean speech and keeps the trimmer from finding the word's edges.
    """
    import librosa

    y = np.asarray(wave)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"expected a non-empty mono waveform, got shape {y.shape}")
    if kind == "mel" and db_range <= 0:
        raise ValueError(f"db_range must be > 0 dB, got {db_range}")
    if denoise_percentile is not None:
        if kind != "mel":
            raise ValueError("denoise_percentile applies to kind='mel' only")
        if not 0 <= denoise_percentile <= 100 or denoise_factor < 0:
            raise ValueError(
                f"denoise_percentile must be in [0, 100] and denoise_factor >= 0, got "
                f"{denoise_percentile} and {denoise_factor}"
            )
    if np.issubdtype(y.dtype, np.integer):
        y = y.astype(np.float32) / float(np.iinfo(y.dtype).max + 1)
    y = y.astype(np.float32)
    if trim_db is not None and denoise_percentile is None:  # with denoising, trimmed on the cleaned spectrogram
        trimmed, _ = librosa.effects.trim(y, top_db=trim_db, frame_length=n_fft, hop_length=hop_length)
        if trimmed.size >= n_fft:
            y = trimmed
    if y.size < n_fft:
        y = np.pad(y, (0, n_fft - y.size))
    if kind == "mel":
        s = librosa.feature.melspectrogram(
            y=y, sr=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_features, fmax=sample_rate / 2
        )
        if denoise_percentile is not None:
            s = np.maximum(s - denoise_factor * np.percentile(s, denoise_percentile, axis=1, keepdims=True), 0.0)
            if trim_db is not None:
                s = _trim_quiet_frames(s, trim_db)
        feat = librosa.power_to_db(s, ref=1.0, top_db=db_range)
    elif kind == "mfcc":
        feat = librosa.feature.mfcc(
            y=y, sr=sample_rate, n_mfcc=n_features, n_fft=n_fft, hop_length=hop_length, n_mels=max(40, n_features)
        )
    else:
        raise ValueError(f"kind must be 'mel' or 'mfcc', got {kind!r}")
    return _time_warp(feat, n_frames).astype(np.float32)


def _trim_quiet_frames(power: np.ndarray, trim_db: float) -> np.ndarray:
    """Leading and trailing frames of a power spectrogram whose total power is ``trim_db`` below the peak frame's."""
    energy = power.sum(0)
    if energy.max() > 0:
        keep = np.flatnonzero(energy > energy.max() * 10 ** (-trim_db / 10))
        if keep.size >= 2:
            return power[:, keep[0] : keep[-1] + 1]
    return power


def utterance_features(
    ds,
    idx=None,
    kind: Literal["mel", "mfcc"] = "mel",
    n_features: int = 40,
    n_frames: int = 40,
    db_range: float = 80.0,
    snr_db: float | None = None,
    seed: int = 0,
    denoise_percentile: float | None = None,
) -> np.ndarray:
    """:func:`audio_features` of many utterances of a waveform dataset (``ds.waveform(i, normalise=True)``,
    ``ds.sample_rate``, e.g. FSDD), flattened: ``(len(idx), n_features * n_frames)`` float32.

    ``idx``: utterance indices (all by default). ``snr_db``: add white noise at this SNR first
    (:func:`bioSNN.noise.white_noise`, seeded by ``seed`` + the utterance index, so each clip's noise is fixed).
    ``denoise_percentile``: spectral subtraction, see :func:`audio_features`.
    """
    from bioSNN import noise

    idx = np.arange(len(ds.labels)) if idx is None else np.asarray(idx)
    out = np.empty((len(idx), n_features * n_frames), np.float32)
    for row, i in enumerate(idx):
        wave = ds.waveform(int(i), normalise=True)
        if snr_db is not None:
            wave = noise.white_noise(wave, snr_db, seed=seed + int(i))
        out[row] = audio_features(
            wave, ds.sample_rate, kind, n_features, n_frames, db_range=db_range, denoise_percentile=denoise_percentile
        ).ravel()
    return out


def onoff_stats(train_features: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature ``(mean, std + eps)`` of the training rows, for :func:`onoff_code` (``eps`` keeps a feature
    that never varies, e.g. a silent mel band at the dB floor, from dividing by zero)."""
    f = np.asarray(train_features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need (n >= 2, n_features) training rows, got shape {f.shape}")
    return f.mean(0), f.std(0) + eps


def onoff_code(features: np.ndarray, mean: np.ndarray, std: np.ndarray, z_full: float = 2.0) -> np.ndarray:
    """ON/OFF input intensities (uint8) of feature rows, ``(n, 2 * n_features)``.

    Each feature is standardised with ``mean`` and ``std`` (of the training rows), then split like the ON and
    OFF channels of a retina or cochlear nucleus: ON = clip(z / z_full, 0, 1), OFF = clip(−z / z_full, 0, 1),
    so a feature ``z_full`` standard deviations above (below) its mean drives its ON (OFF) input at full rate
    and a typical value drives neither. Unlike min-max scaling per utterance, the code keeps what distinguishes
    an utterance from the average one instead of the spectral shape that all utterances share.
    """
    if z_full <= 0:
        raise ValueError(f"z_full must be > 0, got {z_full}")
    f = np.asarray(features, dtype=np.float64)
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    if mean.shape != f.shape[-1:] or std.shape != f.shape[-1:]:
        raise ValueError(f"mean and std need shape {f.shape[-1:]}, got {mean.shape} and {std.shape}")
    if np.any(std <= 0):
        raise ValueError("std must be > 0 for every feature")
    z = (f - mean) / std / z_full
    on, off = np.clip(z, 0, 1), np.clip(-z, 0, 1)
    return np.rint(np.concatenate([on, off], axis=-1) * 255).astype(np.uint8)


AudioCode = Literal["minmax", "onoff"]
AUDIO_CODES = get_args(AudioCode)


def audio_inputs(n_features: int, n_frames: int, code: Literal["minmax", "onoff"]) -> int:
    """Input neurons of an audio ensemble: one per feature and frame, twice that for the ON/OFF code."""
    return n_features * n_frames * (2 if code == "onoff" else 1)


def code_audio(
    features: np.ndarray,
    code: Literal["minmax", "onoff"],
    stats: tuple[np.ndarray, np.ndarray] | None = None,
    z_full: float = 2.0,
) -> np.ndarray:
    """uint8 input intensities (0-255, the format of pixels) of feature rows: ``"minmax"`` scales each row to
    0-255 like a grey image; ``"onoff"`` is :func:`onoff_code` with the training rows' ``stats``
    (:func:`onoff_stats`)."""
    if code == "minmax":
        return np.rint(features_to_rates(features, max_rate=255.0, axis=1)).astype(np.uint8)
    if code == "onoff":
        if stats is None:
            raise ValueError("the ON/OFF code needs the training rows' (mean, std): see onoff_stats")
        return onoff_code(features, *stats, z_full=z_full)
    raise ValueError(f"audio code must be one of {AUDIO_CODES}, got {code!r}")


def features_to_rates(features: np.ndarray, max_rate: float = 63.75, axis=None) -> np.ndarray:
    """Rates in Hz from feature magnitudes: min-max normalised to [0, 1] (over ``axis``; all by default),
    times ``max_rate``. A constant feature map gives zero rates."""
    f = np.asarray(features, dtype=np.float64)
    lo = f.min(axis=axis, keepdims=axis is not None)
    span = f.max(axis=axis, keepdims=axis is not None) - lo
    norm = np.divide(f - lo, span, out=np.zeros_like(f), where=span > 0)
    return norm * max_rate


def events_to_frames(
    events: dict, sensor_size: tuple[int, int, int], n_bins: int, duration_us: int | None = None
) -> np.ndarray:
    """Bin DVS events ``{x, y, p, t_us}`` into count frames ``(n_bins, polarities, height, width)`` float32.

    Time ``[0, duration_us)`` (default: last timestamp + 1) is split into ``n_bins`` equal bins.
    """
    width, height, pols = sensor_size
    t = np.asarray(events["t_us"], dtype=np.int64)
    duration = int(duration_us if duration_us is not None else (t.max() + 1 if t.size else 1))
    b = np.minimum(t * n_bins // duration, n_bins - 1)
    keep = t < duration
    frames = np.zeros((n_bins, pols, height, width), np.float32)
    np.add.at(
        frames,
        (b[keep], np.asarray(events["p"])[keep], np.asarray(events["y"])[keep], np.asarray(events["x"])[keep]),
        1.0,
    )
    return frames


def features_to_intensity(features: np.ndarray) -> np.ndarray:
    """uint8 intensities 0–255 of a feature map (min–max over the whole map, like a grey image), the input
    format of the Brian2 ensembles. A constant map gives zeros."""
    return np.rint(features_to_rates(features, max_rate=255.0)).astype(np.uint8)

"""Input corruptions for robustness experiments (multimodal STDP): image noise and occlusion, audio noise.

- :func:`gaussian_pixel_noise`: ``clip(x + N(0, σ·255))`` on uint8 images, σ a fraction of full scale;
- :func:`occlude`: a square patch covering ``fraction`` of each image's area set to 0, at a random position;
- :func:`white_noise`: white Gaussian noise added to a waveform at a given signal-to-noise ratio in dB
  (noise power = signal power / 10^(SNR/10)).
All take a seed or a ``numpy.random.Generator`` and are deterministic given it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_pixel_noise", "occlude", "white_noise"]


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def gaussian_pixel_noise(images: np.ndarray, sigma: float, seed=0) -> np.ndarray:
    """uint8 images with additive Gaussian noise of std ``sigma`` × 255, clipped to 0–255."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {x.dtype}")
    noisy = x.astype(np.float64) + _rng(seed).normal(0.0, sigma * 255.0, x.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def occlude(images: np.ndarray, fraction: float, seed=0) -> np.ndarray:
    """Images ``(n, h, w)`` (or flat ``(n, h*w)`` of square images) with one zeroed square patch each."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    x = np.array(images, copy=True)
    flat = x.ndim == 2
    if flat:
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise ValueError(f"flat images must be square, got {x.shape[1]} pixels")
        x = x.reshape(len(x), side, side)
    n, h, w = x.shape[:3]
    size = int(round(np.sqrt(fraction * h * w)))
    rng = _rng(seed)
    if size > 0:
        rows = rng.integers(0, h - size + 1, n)
        cols = rng.integers(0, w - size + 1, n)
        for i in range(n):
            x[i, rows[i] : rows[i] + size, cols[i] : cols[i] + size] = 0
    return x.reshape(images.shape) if flat else x


def white_noise(wave: np.ndarray, snr_db: float, seed=0) -> np.ndarray:
    """float32 waveform plus white Gaussian noise at ``snr_db`` (int16 input is scaled to [-1, 1) first)."""
    y = np.asarray(wave)
    if np.issubdtype(y.dtype, np.integer):
        y = y.astype(np.float32) / 32768.0
    y = y.astype(np.float32)
    power = float(np.mean(y.astype(np.float64) ** 2))
    if power == 0:
        return y.copy()
    noise_power = power / 10 ** (snr_db / 10)
    return (y + _rng(seed).normal(0.0, np.sqrt(noise_power), y.shape)).astype(np.float32)

"""Typed records returned by the dataset loaders.

Images are ``uint8`` (N, H, W) or (N, H, W, C); labels are ``int64``; variable-length data (audio, events)
stays as one flat array plus ``offsets`` (sample ``i`` is ``flat[offsets[i]:offsets[i + 1]]``), exactly as on
disk, so nothing is copied per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ImageData", "AudioData", "EventData", "TextSplit", "TextData", "ParallelSplit", "TranslationData"]


@dataclass(frozen=True)
class ImageData:
    """An image classification dataset with its official train/test split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _ragged_slice(offsets: np.ndarray, i: int) -> slice:
    n = len(offsets) - 1
    if not -n <= i < n:
        raise IndexError(f"sample {i} out of range for {n} samples")
    i %= n
    return slice(int(offsets[i]), int(offsets[i + 1]))


class _FlagSplit:
    """Train/test indices from a boolean ``is_test`` column."""

    is_test: np.ndarray

    @property
    def train_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.is_test)

    @property
    def test_indices(self) -> np.ndarray:
        return np.flatnonzero(self.is_test)


@dataclass(frozen=True)
class AudioData(_FlagSplit):
    """Spoken digits: concatenated waveforms plus per-recording metadata."""

    name: str
    audio: np.ndarray  # int16, all waveforms concatenated
    offsets: np.ndarray  # int64 (n + 1,)
    labels: np.ndarray  # int64 (n,)
    speaker_ids: np.ndarray  # int64 (n,), index into speaker_names
    speaker_names: tuple[str, ...]
    take_index: np.ndarray  # int64 (n,)
    is_test: np.ndarray  # bool (n,)
    sample_rate: int  # Hz
    filenames: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def waveform(self, i: int, *, normalise: bool = False) -> np.ndarray:
        """Recording ``i`` as int16, or as float32 in [-1, 1) when ``normalise``."""
        w = self.audio[_ragged_slice(self.offsets, i)]
        return w.astype(np.float32) / 32768.0 if normalise else w



@dataclass(frozen=True)
class EventData(_FlagSplit):
    """Event-camera recordings: flat event columns plus per-sample metadata."""

    name: str
    x: np.ndarray  # uint8 pixel column
    y: np.ndarray  # uint8 pixel row
    p: np.ndarray  # uint8 polarity 0/1
    t_us: np.ndarray  # uint32 microseconds since the start of the sample
    offsets: np.ndarray  # int64 (n + 1,)
    labels: np.ndarray  # int64 (n,)
    is_test: np.ndarray  # bool (n,)
    sensor_size: tuple[int, int, int]  # (width, height, polarities)
    extra: dict = field(default_factory=dict)  # dataset-specific per-sample columns

    def __len__(self) -> int:
        return len(self.labels)

    def events(self, i: int) -> dict[str, np.ndarray]:
        """The events of sample ``i`` as columns ``x, y, p, t_us``."""
        s = _ragged_slice(self.offsets, i)
        return {"x": self.x[s], "y": self.y[s], "p": self.p[s], "t_us": self.t_us[s]}



@dataclass(frozen=True)
class TextSplit:
    texts: list[str]
    labels: np.ndarray  # int64


@dataclass(frozen=True)
class TextData:
    """Sentence classification, one :class:`TextSplit` per split name."""

    name: str
    splits: dict[str, TextSplit]
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class ParallelSplit:
    ids: np.ndarray  # int64
    source: list[str]
    target: list[str]


@dataclass(frozen=True)
class TranslationData:
    """Sentence pairs for translation, one :class:`ParallelSplit` per split name."""

    name: str
    source_lang: str
    target_lang: str
    splits: dict[str, ParallelSplit]

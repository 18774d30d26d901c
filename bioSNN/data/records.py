"""Typed records returned by the dataset loaders.

Images are ``uint8`` (N, H, W) or (N, H, W, C); labels are ``int64``; variable-length data (audio, events)
stays as one flat array plus ``offsets`` (sample ``i`` is ``flat[offsets[i]:offsets[i + 1]]``), exactly as on
disk, so nothing is copied per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _check_labels(name: str, what: str, labels: np.ndarray, n: int, n_classes: int | None = None) -> None:
    """Labels must be a 1-D integer array of length ``n`` in ``[0, n_classes)`` (``n_classes`` None: >= 0)."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise ValueError(f"{name}: {what} must be a 1-D integer array, got {labels.dtype}{list(labels.shape)}")
    if len(labels) != n:
        raise ValueError(f"{name}: {len(labels)} {what} for {n} samples")
    if len(labels) and (labels.min() < 0 or (n_classes is not None and labels.max() >= n_classes)):
        hi = n_classes - 1 if n_classes is not None else "..."
        raise ValueError(f"{name}: {what} lie in [{labels.min()}, {labels.max()}], outside [0, {hi}]")


def _check_offsets(name: str, offsets: np.ndarray, n: int, flat_len: int) -> None:
    offsets = np.asarray(offsets)
    if offsets.dtype.kind not in "iu" or offsets.shape != (n + 1,):
        raise ValueError(f"{name}: offsets must be {n + 1} integers, got {offsets.dtype}{list(offsets.shape)}")
    if offsets[0] != 0 or offsets[-1] != flat_len or (np.diff(offsets) < 0).any():
        raise ValueError(f"{name}: offsets must rise from 0 to {flat_len} (the flat data's length)")


def _check_dtype(name: str, what: str, a: np.ndarray, dtype, ndim: int | None = 1) -> None:
    if a.dtype != np.dtype(dtype) or (ndim is not None and a.ndim != ndim):
        raise ValueError(
            f"{name}: {what} must be {np.dtype(dtype)}{'' if ndim is None else f' ({ndim}-D)'}, "
            f"got {a.dtype}{list(a.shape)}"
        )


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

    def __post_init__(self):
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.uint8 or x.ndim not in (3, 4):
                raise ValueError(
                    f"{self.name}: x_{split} must be uint8 images (n, h, w) or (n, h, w, c), got "
                    f"{x.dtype}{list(x.shape)}"
                )
            _check_labels(self.name, f"y_{split} labels", y, len(x), len(self.class_names))
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"{self.name}: train images are {list(self.x_train.shape[1:])}, test images "
                f"{list(self.x_test.shape[1:])}"
            )

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

    def __post_init__(self):
        n = len(self.labels)
        _check_dtype(self.name, "audio", self.audio, np.int16)
        _check_offsets(self.name, self.offsets, n, len(self.audio))
        _check_labels(self.name, "labels", self.labels, n, 10)  # spoken digits
        _check_labels(self.name, "speaker ids", self.speaker_ids, n, len(self.speaker_names))
        _check_dtype(self.name, "is_test", self.is_test, bool)
        if len(self.is_test) != n or len(self.take_index) != n or len(self.filenames) != n:
            raise ValueError(f"{self.name}: per-recording columns must all have {n} entries")
        if self.sample_rate <= 0:
            raise ValueError(f"{self.name}: sample_rate must be > 0, got {self.sample_rate}")

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

    def __post_init__(self):
        n = len(self.labels)
        for col in ("x", "y", "p"):
            _check_dtype(self.name, f"event column {col}", getattr(self, col), np.uint8)
        _check_dtype(self.name, "event column t_us", self.t_us, np.uint32)
        if not len(self.x) == len(self.y) == len(self.p) == len(self.t_us):
            raise ValueError(f"{self.name}: event columns x, y, p, t_us differ in length")
        _check_offsets(self.name, self.offsets, n, len(self.x))
        _check_labels(self.name, "labels", self.labels, n, 10)  # digits
        _check_dtype(self.name, "is_test", self.is_test, bool)
        if len(self.is_test) != n:
            raise ValueError(f"{self.name}: is_test has {len(self.is_test)} entries for {n} samples")
        w, h, pol = self.sensor_size
        for col, limit in (("x", w), ("y", h), ("p", pol)):
            a = getattr(self, col)
            if len(a) and int(a.max()) >= limit:
                raise ValueError(f"{self.name}: event column {col} reaches {int(a.max())}, the sensor has {limit}")

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

    def __post_init__(self):
        for split, s in self.splits.items():
            if not all(isinstance(t, str) for t in s.texts):
                raise ValueError(f"{self.name}: split {split!r} holds texts that are not strings")
            _check_labels(self.name, f"{split} labels", s.labels, len(s.texts), len(self.class_names))


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

    def __post_init__(self):
        for split, s in self.splits.items():
            if not len(s.ids) == len(s.source) == len(s.target):
                raise ValueError(
                    f"{self.name}: split {split!r} has {len(s.ids)} ids, {len(s.source)} source and "
                    f"{len(s.target)} target sentences"
                )
            if not all(isinstance(t, str) for t in (*s.source, *s.target)):
                raise ValueError(f"{self.name}: split {split!r} holds sentences that are not strings")

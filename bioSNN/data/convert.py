"""Converters from each dataset's canonical public files to the on-disk format of ``../shared/data``.

Each converter takes the folder holding the downloaded (and, for archives, unpacked) upstream files and
returns the arrays or records to store. The registry checks the result against the published content digest
before it is kept, so a converter that drifts from the reference conversion fails loudly.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from .files import DatasetCorruptError

MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_idx(data: bytes, name: str = "idx") -> np.ndarray:
    """Decode an IDX file (LeCun's MNIST format: big-endian header, then unsigned bytes)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetCorruptError(f"{name}: not an unsigned-byte IDX file")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetCorruptError(f"{name}: truncated IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    n = int(np.prod(dims))
    if len(data) - header != n:
        raise DatasetCorruptError(f"{name}: IDX header says {dims} ({n} bytes) but holds {len(data) - header}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()


def idx_images(folder: Path, class_names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """MNIST / Fashion-MNIST: the four gzip IDX files → ``x_train, y_train, x_test, y_test[, class_names]``."""
    out = {}
    for key, fname in MNIST_FILES.items():
        try:
            out[key] = read_idx(gzip.decompress((folder / fname).read_bytes()), fname)
        except (OSError, EOFError) as e:
            raise DatasetCorruptError(f"{folder / fname}: {e}") from e
    for split in ("train", "test"):
        if len(out[f"x_{split}"]) != len(out[f"y_{split}"]):
            raise DatasetCorruptError(f"{split}: {len(out[f'x_{split}'])} images but {len(out[f'y_{split}'])} labels")
    if class_names is not None:
        out["class_names"] = np.array(class_names)
    return out


def _cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, np.uint8)
    if raw.size % 3073:
        raise DatasetCorruptError(f"{path}: size {raw.size} is not a multiple of 3073-byte records")
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), rec[:, 0].copy()


def cifar10(folder: Path, n_train: int | None = None, n_test: int | None = None) -> dict[str, np.ndarray]:
    """CIFAR-10 binary version → HWC uint8. ``n_train``/``n_test`` keep the first images of
    ``data_batch_1``/``test_batch`` (the subset in ``../shared/data``); ``None`` keeps all 50,000/10,000."""
    base = next(folder.rglob("test_batch.bin"), None)
    if base is None:
        raise DatasetCorruptError(f"{folder}: no cifar-10-batches-bin/test_batch.bin")
    base = base.parent
    batches = [_cifar_bin(base / f"data_batch_{i}.bin") for i in range(1, 6)]
    x_train = np.concatenate([b[0] for b in batches])
    y_train = np.concatenate([b[1] for b in batches])
    x_test, y_test = _cifar_bin(base / "test_batch.bin")
    if n_train is not None:
        x_train, y_train = x_train[:n_train], y_train[:n_train]
    if n_test is not None:
        x_test, y_test = x_test[:n_test], y_test[:n_test]
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
        "class_names": np.array(CIFAR10_CLASSES),
    }


_FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def fsdd(folder: Path) -> dict[str, np.ndarray]:
    """Free Spoken Digit Dataset ``recordings/{digit}_{speaker}_{take}.wav`` → flat int16 audio + metadata,
    ordered by speaker, digit, take; takes 0–4 are the official test split."""
    import soundfile

    files = []
    for p in folder.rglob("*.wav"):
        m = _FSDD_NAME.match(p.name)
        if m and p.parent.name == "recordings":
            files.append((m.group(2), int(m.group(1)), int(m.group(3)), p))
    if not files:
        raise DatasetCorruptError(f"{folder}: no recordings/<digit>_<speaker>_<take>.wav files")
    files.sort(key=lambda f: f[:3])
    speakers = sorted({f[0] for f in files})
    waves, rate = [], None
    for _, _, _, p in files:
        w, sr = soundfile.read(p, dtype="int16", always_2d=False)
        if rate is None:
            rate = sr
        if sr != rate or w.ndim != 1:
            raise DatasetCorruptError(f"{p}: expected mono audio at {rate} Hz, got {w.shape} at {sr} Hz")
        waves.append(w)
    offsets = np.zeros(len(waves) + 1, np.int64)
    offsets[1:] = np.cumsum([len(w) for w in waves])
    take = np.array([f[2] for f in files], np.uint8)
    return {
        "audio": np.concatenate(waves).astype(np.int16),
        "offsets": offsets,
        "labels": np.array([f[1] for f in files], np.uint8),
        "speaker_ids": np.array([speakers.index(f[0]) for f in files], np.uint8),
        "speaker_names": np.array(speakers),
        "take_index": take,
        "is_test": take < 5,
        "sample_rate": np.int32(rate),
        "filenames": np.array([f[3].name for f in files]),
    }


def read_bs2(data: bytes) -> dict[str, np.ndarray]:
    """Decode N-MNIST's 40-bit events: x (8 bit), y (8 bit), polarity (1 bit), timestamp (23 bit, µs)."""
    if len(data) % 5:
        raise DatasetCorruptError(f"event stream of {len(data)} bytes is not a multiple of 5")
    raw = np.frombuffer(data, np.uint8).reshape(-1, 5).astype(np.uint32)
    return {
        "x": raw[:, 0].astype(np.uint8),
        "y": raw[:, 1].astype(np.uint8),
        "p": (raw[:, 2] >> 7).astype(np.uint8),
        "t_us": ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4],
    }


def _label_file(path: Path) -> list[tuple[int, int]]:
    rows = []
    for line in path.read_text().splitlines():
        parts = line.replace(",", " ").split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            rows.append((int(parts[0]), int(parts[1])))
    return rows


def nmnist_small(folder: Path) -> dict[str, np.ndarray]:
    """SLAYER's NMNISTsmall (``<id>.bs2`` + ``train1K.txt``/``test100.txt``) → flat event columns."""
    samples = [(sid, lab, False) for sid, lab in _label_file(folder / "train1K.txt")]
    samples += [(sid, lab, True) for sid, lab in _label_file(folder / "test100.txt")]
    cols = {"x": [], "y": [], "p": [], "t_us": []}
    counts = []
    for sid, _, _ in samples:
        ev = read_bs2((folder / f"{sid}.bs2").read_bytes())
        ev = {k: v[ev["x"] < 34] for k, v in ev.items()}  # drop the sensor's overflow markers
        order = np.argsort(ev["t_us"], kind="stable")
        for k in cols:
            cols[k].append(ev[k][order])
        counts.append(len(order))
    sample_id = np.array([s[0] for s in samples], np.int64)
    is_test = np.array([s[2] for s in samples])
    offsets = np.zeros(len(samples) + 1, np.int64)
    offsets[1:] = np.cumsum(counts)
    out = {k: np.concatenate(v) for k, v in cols.items()}
    out["t_us"] = out["t_us"].astype(np.uint32)
    out.update(
        offsets=offsets,
        labels=np.array([s[1] for s in samples], np.uint8),
        is_test=is_test,
        sample_id=sample_id,
        mnist_index=np.where(is_test, sample_id - 60001, sample_id - 1),
        sensor_size=np.array([34, 34, 2], np.int32),
    )
    return out


def sst2(folder: Path) -> list[dict]:
    """GLUE-style SST-2 tsv files (``label<TAB>sentence`` or ``sentence<TAB>label``) → records."""
    records = []
    for split in ("train", "dev", "test"):
        text = (folder / f"{split}.tsv").read_text(encoding="utf-8").replace("\r\n", "\n")
        for line in text.split("\n"):
            parts = line.split("\t")
            if len(parts) != 2:
                continue
            a, b = parts
            if a.strip() in ("0", "1"):
                label, sentence = int(a), b
            elif b.strip() in ("0", "1"):
                label, sentence = int(b), a
            else:  # a header line
                continue
            records.append({"split": split, "label": label, "text": sentence.strip()})
    return records


MULTI30K_SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr")


def multi30k(folder: Path) -> list[dict]:
    """Multi30k task 1 raw ``{split}.en.gz`` / ``{split}.de.gz`` → records paired by line position."""
    records = []
    for split in MULTI30K_SPLITS:
        en = gzip.decompress((folder / f"{split}.en.gz").read_bytes()).decode("utf-8").rstrip("\n").split("\n")
        de = gzip.decompress((folder / f"{split}.de.gz").read_bytes()).decode("utf-8").rstrip("\n").split("\n")
        if len(en) != len(de):
            raise DatasetCorruptError(f"multi30k {split}: {len(en)} English but {len(de)} German lines")
        records += [{"split": split, "id": i, "en": e.strip(), "de": d.strip()} for i, (e, d) in enumerate(zip(en, de))]
    return records

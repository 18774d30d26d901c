"""Dataset registry: one :class:`DatasetSpec` per dataset and :func:`load`, the one way to get data.

``load(name)`` looks for the dataset's file in ``$BIOSNN_DATA``, then in the user cache; if it is absent,
downloads the canonical public files into the cache, verifies their checksums, converts them once into the
on-disk format of ``../shared/data`` and checks the converted content against the published digest. Offline,
it fails with one message naming the file expected, where to put it and its checksum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from . import convert
from .embedded import digits_raw
from .files import (
    DataError,
    DatasetCorruptError,
    DatasetNotFoundError,
    cache_dir,
    download,
    remove_tree,
    safe_extract,
    search_dirs,
)
from .formats import array_digest, read_jsonl_gz, read_npz, records_digest, write_jsonl_gz, write_npz
from .records import (
    AudioData,
    EventData,
    ImageData,
    ParallelSplit,
    TextData,
    TextSplit,
    TranslationData,
)

__all__ = ["Source", "DatasetSpec", "DATASETS", "DatasetName", "get_spec", "available", "locate", "load"]


@dataclass(frozen=True)
class Source:
    """One upstream file: mirrors tried in order, its checksum (``"md5:..."``/``"sha256:..."`` or ``None``
    when only the converted content can be verified), and whether it is an archive to unpack."""

    filename: str
    urls: tuple[str, ...]
    checksum: str | None = None
    extract: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    """How a dataset is stored, verified, read and, when absent, rebuilt from its public sources."""

    name: str
    filename: str  # file name in BIOSNN_DATA / the cache
    summary: str
    license: str
    reader: Callable[[str, object], object]  # (name, raw arrays or records) -> record
    sha256: str | None = None  # of the file as published in ../shared/data
    content_sha256: str | None = None  # array_digest / records_digest of its content
    required: tuple[str, ...] = ()  # npz keys that must be present
    sources: tuple[Source, ...] = ()
    convert: Callable[[Path], object] | None = None  # upstream folder -> raw arrays or records
    builtin: Callable[[], object] | None = None  # for data shipped inside an installed package

    @property
    def is_records(self) -> bool:
        return self.filename.endswith(".jsonl.gz")


def _labels(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu":  # a cast would turn 3.7 into 3 without a word
        raise ValueError(f"labels must be integers, got {a.dtype}")
    return a.astype(np.int64)


def _images(name: str, raw: dict) -> ImageData:
    names = tuple(str(s) for s in raw["class_names"]) if "class_names" in raw else tuple(map(str, range(10)))
    return ImageData(name, raw["x_train"], _labels(raw["y_train"]), raw["x_test"], _labels(raw["y_test"]), names)


def _audio(name: str, raw: dict) -> AudioData:
    return AudioData(
        name=name,
        audio=raw["audio"],
        offsets=raw["offsets"],
        labels=_labels(raw["labels"]),
        speaker_ids=raw["speaker_ids"].astype(np.int64),
        speaker_names=tuple(map(str, raw["speaker_names"])),
        take_index=raw["take_index"].astype(np.int64),
        is_test=raw["is_test"],
        sample_rate=int(raw["sample_rate"]),
        filenames=tuple(map(str, raw["filenames"])),
    )


def _events(name: str, raw: dict) -> EventData:
    return EventData(
        name=name,
        x=raw["x"],
        y=raw["y"],
        p=raw["p"],
        t_us=raw["t_us"],
        offsets=raw["offsets"],
        labels=_labels(raw["labels"]),
        is_test=raw["is_test"],
        sensor_size=tuple(int(s) for s in raw["sensor_size"]),
        extra={"sample_id": raw["sample_id"], "mnist_index": raw["mnist_index"]},
    )


def _by_split(rows: list, required: tuple[str, ...]) -> dict[str, list]:
    """Records grouped by their ``split`` field, splits in file order; each of ``required`` must hold records."""
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(r["split"], []).append(r)
    missing = [s for s in required if s not in groups]
    if missing:
        raise ValueError(f"no records of the split(s) {missing} (found {sorted(map(str, groups))})")
    return groups


def _sst2(name: str, rows: list) -> TextData:
    splits = {
        split: TextSplit([r["text"] for r in sel], np.array([r["label"] for r in sel], np.int64))
        for split, sel in _by_split(rows, ("train", "dev", "test")).items()
    }
    return TextData(name, splits, ("negative", "positive"))


def _multi30k(name: str, rows: list) -> TranslationData:
    splits = {
        split: ParallelSplit(np.array([r["id"] for r in sel], np.int64), [r["en"] for r in sel], [r["de"] for r in sel])
        for split, sel in _by_split(rows, ("train", "val", "test_2016_flickr")).items()
    }
    return TranslationData(name, "en", "de", splits)


_IMAGE_KEYS = ("x_train", "y_train", "x_test", "y_test")
_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/")
_FASHION_MIRRORS = ("https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
_CIFAR_BIN = Source(
    "cifar-10-binary.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
    "md5:c32a1d4ab5d03f1284b67883e8d87530",
    extract=True,
)
_FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
_SLAYER = (
    "https://raw.githubusercontent.com/bamsumit/slayerPytorch/01beeeb6a181546d6c6830382ce6086bfc587836/"
    "test/test_files/NMNISTsmall/"
)
_SST2 = "https://raw.githubusercontent.com/awake020/pytorch_Bert_sst2/ce2ab1719d32182e6233b24b2de246bd32814fde/SST-2/"
_M30K = "https://raw.githubusercontent.com/multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw/"


def _idx_sources(mirrors, md5s):
    return tuple(Source(f, tuple(m + f for m in mirrors), f"md5:{md5s[f]}") for f in convert.MNIST_FILES.values())


DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec(
            "digits",
            "",
            "UCI hand-written digits 8x8 shipped with scikit-learn (embedded default, no download)",
            "CC BY 4.0 (UCI ML repository)",
            _images,
            content_sha256="17ca870926c5ad92aceb986863cecc31d8d112684e3d3c8ed1a832a6888b2b2d",
            builtin=digits_raw,
        ),
        DatasetSpec(
            "mnist",
            "mnist.npz",
            "MNIST hand-written digits, 60,000 train + 10,000 test, 28x28",
            "MNIST (LeCun et al. 1998), freely redistributed",
            _images,
            sha256="06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
            content_sha256="7bf19471c397a07c4488f600bdfd9f25edbf8c41c2ecc70e1f93beee515475e6",
            required=_IMAGE_KEYS,
            sources=_idx_sources(
                _MNIST_MIRRORS,
                {
                    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
                },
            ),
            convert=convert.idx_images,
        ),
        DatasetSpec(
            "fashion_mnist",
            "fashion_mnist.npz",
            "Fashion-MNIST clothing images, 60,000 train + 10,000 test, 28x28",
            "MIT, Zalando SE",
            _images,
            sha256="188c9226d11c4e8197a3b7023823024706d588e520b87c80c2247efcd134b714",
            content_sha256="ade15a9cf5cbddbd0bc9c028e3dc870ddf031c300a405c91d4005d256de37d12",
            required=_IMAGE_KEYS + ("class_names",),
            sources=_idx_sources(
                _FASHION_MIRRORS,
                {
                    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
                },
            ),
            convert=lambda folder: convert.idx_images(folder, convert.FASHION_CLASSES),
        ),
        DatasetSpec(
            "cifar10",
            "cifar10_subset.npz",
            "CIFAR-10 subset: first 4,000 images of data_batch_1 + first 1,000 of test_batch, 32x32x3",
            "CIFAR-10 (Krizhevsky 2009), free for research; ConvNetJS repackaging MIT",
            _images,
            sha256="e48015fd8460684d29ab3dbc926453b35d776cd6dfb7a97b78f8e209f63c9802",
            content_sha256="7520ee49834b735eba59d2cd2ea1e224471cc6a24cc27cb77e8af1870b9dffdb",
            required=_IMAGE_KEYS + ("class_names",),
            sources=(_CIFAR_BIN,),
            convert=lambda folder: convert.cifar10(folder, 4000, 1000),
        ),
        DatasetSpec(
            "cifar10_full",
            "cifar10.npz",
            "CIFAR-10, all 50,000 train + 10,000 test images (download only)",
            "CIFAR-10 (Krizhevsky 2009), free for research",
            _images,
            required=_IMAGE_KEYS + ("class_names",),
            sources=(_CIFAR_BIN,),
            convert=convert.cifar10,
        ),
        DatasetSpec(
            "fsdd",
            "fsdd.npz",
            "Free Spoken Digit Dataset: 3,000 recordings at 8 kHz, 6 speakers, takes 0-4 are test",
            "CC BY-SA 4.0",
            _audio,
            sha256="b63f9e313c954e5ba2ecb182fdb38712bfcb4b34ac73dfb6a45e28e998c989f2",
            content_sha256="81af8838252efda1f924b1fd5b58887af0ff1f961ee0c830b91da9d2a60ccbdc",
            required=(
                "audio",
                "offsets",
                "labels",
                "speaker_ids",
                "speaker_names",
                "take_index",
                "is_test",
                "sample_rate",
                "filenames",
            ),
            sources=(
                Source(
                    "fsdd.zip",
                    (f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{_FSDD_COMMIT}.zip",),
                    None,
                    extract=True,
                ),
            ),
            convert=convert.fsdd,
        ),
        DatasetSpec(
            "nmnist",
            "nmnist_small.npz",
            "N-MNIST subset (ATIS event camera, 34x34): 1,000 train + 100 test samples",
            "GPL-3.0 repackaging (slayerPytorch); N-MNIST CC BY 4.0",
            _events,
            sha256="6b6be405e3780105f26ad9d7d0f5ec8caefb400a1154a44c849a1def45f05bfa",
            content_sha256="c0a4de73d8980ec9e196f2b53c9625b1fd3e3ac475d7c71bc452e6c0f70724fa",
            required=("x", "y", "p", "t_us", "offsets", "labels", "is_test", "sample_id", "mnist_index", "sensor_size"),
            sources=tuple(
                Source(f, (_SLAYER + f,))
                for f in ["train1K.txt", "test100.txt"]
                + [f"{i}.bs2" for i in range(1, 1001)]
                + [f"{i}.bs2" for i in range(60001, 60101)]
            ),
            convert=convert.nmnist_small,
        ),
        DatasetSpec(
            "sst2",
            "sst2.jsonl.gz",
            "SST-2 binary sentiment: 67,349 train / 872 dev / 1,821 test sentences",
            "research use (Socher et al. 2013; GLUE split)",
            _sst2,
            sha256="993b1bf41f1efb99bf539abcc427d0694e1ed0c90e6be402c8ed6505482d5970",
            content_sha256="ca1cba3dbfec57f52c078cab6ce6634e97dc6506e59d0fcf83498e3fbe295bdd",
            sources=tuple(Source(f"{s}.tsv", (_SST2 + f"{s}.tsv",)) for s in ("train", "dev", "test")),
            convert=convert.sst2,
        ),
        DatasetSpec(
            "multi30k",
            "multi30k_en_de.jsonl.gz",
            "Multi30k task 1 English-German caption pairs (29,000 train)",
            "non-commercial research use (Flickr30K captions)",
            _multi30k,
            sha256="50e5b14c9ce4e674b380f4fbdf1b8dc1d6206159547730868b2f4c549f7a038a",
            content_sha256="8e22633f175d0fd6df3531c9e1424685eefe4fc424524e2f21218b5388a4e074",
            sources=tuple(
                Source(f"{s}.{lang}.gz", (_M30K + f"{s}.{lang}.gz",))
                for s in convert.MULTI30K_SPLITS
                for lang in ("en", "de")
            ),
            convert=convert.multi30k,
        ),
    ]
}
DatasetName = Literal[tuple(DATASETS)]  # the registered names, for config fields


def get_spec(name: str) -> DatasetSpec:
    """The spec of dataset ``name``; a clear error lists the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def available() -> dict[str, str]:
    """``{name: one-line summary}`` of every registered dataset."""
    return {name: spec.summary for name, spec in DATASETS.items()}


def locate(name: str) -> Path | None:
    """The first existing file of dataset ``name`` in :func:`~bioSNN.data.fetch.search_dirs`, else ``None``."""
    spec = get_spec(name)
    for d in search_dirs():
        if (d / spec.filename).is_file():
            return d / spec.filename
    return None


def _missing_message(spec: DatasetSpec, reason: str) -> str:
    dirs = " or ".join(str(d) for d in search_dirs())
    checksum = f" (sha256 {spec.sha256})" if spec.sha256 else ""
    return (
        f"dataset {spec.name!r}: file {spec.filename}{checksum} was not found in {dirs}, and it could not be "
        f"downloaded: {reason}. Put the file there, or point BIOSNN_DATA at a folder holding it."
    )


def _digest(spec: DatasetSpec, raw) -> str:
    return records_digest(raw) if spec.is_records else array_digest(raw)


def _verify(spec: DatasetSpec, raw, where: str) -> None:
    if spec.content_sha256 is None:
        return
    got = _digest(spec, raw)
    if got != spec.content_sha256:
        raise DatasetCorruptError(
            f"{where} holds other data than the published {spec.name!r} dataset (content sha256 {got}, expected "
            f"{spec.content_sha256}). Delete it and load again to re-download, or replace it with the reference "
            f"file{f' (sha256 {spec.sha256})' if spec.sha256 else ''}."
        )


def _read(spec: DatasetSpec, path: Path):
    if spec.is_records:
        return read_jsonl_gz(path)
    raw = read_npz(path, spec.required)
    return raw


def fetch(name: str, *, progress: bool = True) -> Path:
    """Download dataset ``name``'s public sources into the cache and convert them once.

    Returns the path of the converted file. The content is checked against the published digest before the
    file is written; scratch files are removed either way.
    """
    spec = get_spec(name)
    if not spec.sources or spec.convert is None:
        raise DatasetNotFoundError(_missing_message(spec, "it has no public download source"))
    root = cache_dir()
    work = root / f".work-{spec.name}"
    try:
        for src in spec.sources:
            target = work / src.filename
            if not target.is_file():
                errors = []
                for url in src.urls:
                    try:
                        download(url, target, src.checksum, progress=progress)
                        break
                    except DataError as e:
                        errors.append(str(e))
                else:
                    raise DataError("; ".join(errors))
            if src.extract:
                safe_extract(target, work / "extracted")
        raw = spec.convert(work)
        _verify(spec, raw, f"the conversion of {spec.name!r} from its public sources")
        dest = root / spec.filename
        (write_jsonl_gz if spec.is_records else write_npz)(dest, raw)
    finally:
        remove_tree(work)
    return dest


def load(name: str, *, download: bool = True, verify: bool = True, progress: bool = True):
    """Load dataset ``name`` as a typed record (:mod:`bioSNN.data.records`).

    Parameters
    ----------
    name
        A key of :data:`DATASETS` (``bioSNN.data.available()`` lists them).
    download
        Fetch and convert the public sources into the cache when no local file exists.
    verify
        Check the content against the published digest (about 0.1 s per 50 MB).
    progress
        Show progress bars while downloading.

    Raises
    ------
    DatasetNotFoundError
        No local file and no successful download; the message names the file, folders and checksum.
    DatasetCorruptError
        The file is truncated, unreadable or holds other data than published.
    """
    spec = get_spec(name)
    if spec.builtin is not None:
        raw = spec.builtin()
        if verify:
            _verify(spec, raw, f"the {name!r} data of the installed package")
        return _record(spec, raw, f"the {name!r} data of the installed package")
    path = locate(name)
    if path is None:
        if not download:
            raise DatasetNotFoundError(_missing_message(spec, "downloads were switched off"))
        try:
            path = fetch(name, progress=progress)
        except DatasetCorruptError:
            raise
        except DataError as e:
            raise DatasetNotFoundError(_missing_message(spec, str(e))) from e
    raw = _read(spec, path)
    if verify:
        _verify(spec, raw, str(path))
    return _record(spec, raw, str(path))


def _record(spec: DatasetSpec, raw, where: str):
    """The typed record of ``raw``; its own checks (dtypes, shapes, label ranges) hold even when the digest was
    not checked (``verify=False``) or the dataset has none."""
    try:
        return spec.reader(spec.name, raw)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise DatasetCorruptError(f"{where} does not hold a valid {spec.name!r} dataset: {e}") from e

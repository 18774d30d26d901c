"""Datasets: a registry of real datasets with checksummed downloads and an embedded default.

>>> from bioSNN import data
>>> digits = data.load("digits")          # embedded, no download
>>> mnist = data.load("mnist")            # $BIOSNN_DATA, ~/.cache/biosnn, or downloaded and verified
"""

from .files import ChecksumError, DataError, DatasetCorruptError, DatasetNotFoundError, cache_dir, search_dirs
from .records import AudioData, EventData, ImageData, ParallelSplit, TextData, TextSplit, TranslationData
from .registry import DATASETS, DatasetName, DatasetSpec, Source, available, fetch, get_spec, load, locate

__all__ = [
    "load",
    "fetch",
    "locate",
    "available",
    "get_spec",
    "DATASETS",
    "DatasetName",
    "DatasetSpec",
    "Source",
    "DataError",
    "DatasetNotFoundError",
    "DatasetCorruptError",
    "ChecksumError",
    "cache_dir",
    "search_dirs",
    "ImageData",
    "AudioData",
    "EventData",
    "TextData",
    "TextSplit",
    "TranslationData",
    "ParallelSplit",
]

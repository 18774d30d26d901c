"""Finding, downloading and verifying dataset files.

Files are looked for in ``$BIOSNN_DATA`` first, then in the user cache (``$XDG_CACHE_HOME/biosnn`` or
``~/.cache/biosnn``). Downloads go to the cache, stream to a ``.part`` file, are checked against their
checksum and only then renamed into place, so an interrupted or corrupted transfer never leaves a file
that looks valid. Archives are unpacked without letting any member land outside the target folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

__all__ = [
    "DataError",
    "DatasetNotFoundError",
    "DatasetCorruptError",
    "ChecksumError",
    "search_dirs",
    "cache_dir",
    "file_digest",
    "download",
    "safe_extract",
]

_CHUNK = 1 << 20


class DataError(RuntimeError):
    """Base class of every dataset error raised by :mod:`bioSNN.data`."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset file is absent and could not be downloaded."""


class DatasetCorruptError(DataError):
    """A dataset file exists but is truncated, unreadable or holds other data than expected."""


class ChecksumError(DataError):
    """A downloaded file does not match its published checksum."""


def cache_dir() -> Path:
    """The per-user download cache: ``$XDG_CACHE_HOME/biosnn`` or ``~/.cache/biosnn``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "biosnn"


def search_dirs() -> list[Path]:
    """Folders searched for dataset files, in order: ``$BIOSNN_DATA`` (if set), then :func:`cache_dir`."""
    dirs = []
    env = os.environ.get("BIOSNN_DATA")
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(cache_dir())
    return dirs


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``sha256`` or ``md5``)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _check_digest(path: Path, checksum: str | None, url: str) -> None:
    """``checksum`` is ``"sha256:<hex>"`` or ``"md5:<hex>"``; ``None`` skips the check."""
    if checksum is None:
        return
    algorithm, _, expected = checksum.partition(":")
    got = file_digest(path, algorithm)
    if got != expected.lower():
        raise ChecksumError(
            f"checksum mismatch for {url}: expected {algorithm} {expected}, got {got}. "
            "The download is corrupt or the mirror serves another file; it was deleted."
        )


def download(
    url: str,
    dest: str | os.PathLike,
    checksum: str | None = None,
    *,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` atomically and verify it.

    Parameters
    ----------
    url
        Source address (``http``, ``https`` or ``file``).
    dest
        Final path. The data is streamed to ``dest + ".part"`` and renamed only after the length and the
        checksum are right.
    checksum
        ``"sha256:<hex>"`` or ``"md5:<hex>"``, or ``None`` when the caller verifies the content later.
    timeout
        Seconds to wait for the server on connect and on each read.
    progress
        Show a tqdm progress bar.

    Raises
    ------
    ChecksumError
        The file does not match ``checksum``.
    DataError
        The transfer failed or stopped early (fewer bytes than the server announced).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "bioSNN-data"})
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(part, "wb") as out:
            total = resp.headers.get("Content-Length")
            total = int(total) if total is not None else None
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise DataError(f"download of {url} stopped after {received} of {total} bytes")
        _check_digest(part, checksum, url)
        os.replace(part, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        part.unlink(missing_ok=True)
        if isinstance(e, DataError):
            raise
        raise DataError(f"download of {url} failed: {e}") from e
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


def _inside(root: Path, name: str) -> bool:
    target = (root / name).resolve()
    return target == root or root in target.parents


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unpack a ``.zip`` or tar archive into ``dest``; no member may land outside it.

    Tar archives use ``filter="data"`` (no absolute paths, no ``..``, no links leaving ``dest``, no device
    files). Zip member names are resolved and checked against ``dest`` before anything is written.

    Raises
    ------
    DatasetCorruptError
        The archive is unreadable or a member would escape ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if os.path.isabs(info.filename) or not _inside(root, info.filename):
                        raise DatasetCorruptError(f"{archive}: member {info.filename!r} would escape {dest}")
                zf.extractall(root)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                tf.extractall(root, filter="data")
        else:
            raise DatasetCorruptError(f"{archive} is neither a zip nor a tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise DatasetCorruptError(f"{archive} is a damaged archive: {e}") from e
    return dest


def remove_tree(path: Path) -> None:
    """Remove a scratch folder made during conversion."""
    shutil.rmtree(path, ignore_errors=True)

"""The download path against a local HTTP server on 127.0.0.1: checksum match and mismatch, interrupted
transfer, offline message, safe archive extraction, and the whole fetch → convert → verify pipeline."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile

import numpy as np
import pytest

from bioSNN import data
from bioSNN.data import convert, files, registry
from bioSNN.data.formats import array_digest


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate: set[str] = set()

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # an interrupted transfer: announce the full length, send half, close the connection
        self.wfile.write(body[: len(body) // 2] if self.path in self.truncate else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("H", (_Handler,), {"files": {}, "truncate": set()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_checksum_match(server, tmp_path):
    h, base = server
    body = b"spikes" * 10_000
    h.files["/f.bin"] = body
    out = files.download(
        base + "/f.bin", tmp_path / "f.bin", "sha256:" + hashlib.sha256(body).hexdigest(), progress=False
    )
    assert out.read_bytes() == body
    assert not list(tmp_path.glob("*.part"))


def test_download_md5_checksum_mismatch_leaves_nothing(server, tmp_path):
    h, base = server
    h.files["/f.bin"] = b"not what was published"
    with pytest.raises(data.ChecksumError, match="md5"):
        files.download(base + "/f.bin", tmp_path / "f.bin", "md5:" + "0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_transfer_is_detected(server, tmp_path):
    h, base = server
    h.files["/f.bin"] = bytes(range(256)) * 1000
    h.truncate.add("/f.bin")
    with pytest.raises(data.DataError, match="stopped after|failed"):
        files.download(base + "/f.bin", tmp_path / "f.bin", None, progress=False, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_offline_names_file_folder_and_checksum(isolated_cache, monkeypatch):
    spec = registry.DATASETS["mnist"]
    unreachable = tuple(
        registry.Source(s.filename, ("http://127.0.0.1:9/" + s.filename,), s.checksum) for s in spec.sources
    )
    monkeypatch.setitem(registry.DATASETS, "mnist", dataclasses.replace(spec, sources=unreachable))
    with pytest.raises(data.DatasetNotFoundError) as e:
        data.load("mnist", progress=False)
    msg = str(e.value)
    assert "mnist.npz" in msg and spec.sha256 in msg and str(isolated_cache) in msg and "BIOSNN_DATA" in msg


def test_no_download_flag(isolated_cache):
    with pytest.raises(data.DatasetNotFoundError, match="switched off"):
        data.load("fsdd", download=False)


def _idx(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes())


def test_fetch_converts_verifies_and_caches(server, isolated_cache, monkeypatch):
    """Generated IDX files served locally go through the real mnist converter into the cache."""
    h, base = server
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 20, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 5, dtype=np.uint8),
    }
    sources = []
    for key, fname in convert.MNIST_FILES.items():
        body = _idx(arrays[key])
        h.files["/" + fname] = body
        sources.append(
            registry.Source(
                fname,
                (base + "/nope/" + fname, base + "/" + fname),  # first mirror 404s
                "md5:" + hashlib.md5(body).hexdigest(),
            )
        )
    spec = registry.DatasetSpec(
        "tiny",
        "tiny.npz",
        "test",
        "test",
        registry._images,
        content_sha256=array_digest(arrays),
        required=registry._IMAGE_KEYS,
        sources=tuple(sources),
        convert=convert.idx_images,
    )
    monkeypatch.setitem(registry.DATASETS, "tiny", spec)
    d = data.load("tiny", progress=False)
    assert (d.x_train == arrays["x_train"]).all() and d.y_test.tolist() == arrays["y_test"].tolist()
    assert (isolated_cache / "tiny.npz").is_file()
    assert [p.name for p in isolated_cache.iterdir()] == ["tiny.npz"]  # scratch files removed
    h.files.clear()  # second load reads the cache, no network
    assert (data.load("tiny").x_test == arrays["x_test"]).all()


def test_fetch_rejects_a_conversion_with_other_content(server, isolated_cache, monkeypatch):
    h, base = server
    arr = {
        "x_train": np.zeros((2, 28, 28), np.uint8),
        "y_train": np.zeros(2, np.uint8),
        "x_test": np.zeros((1, 28, 28), np.uint8),
        "y_test": np.zeros(1, np.uint8),
    }
    sources = []
    for key, fname in convert.MNIST_FILES.items():
        h.files["/" + fname] = _idx(arr[key])
        sources.append(registry.Source(fname, (base + "/" + fname,)))
    spec = registry.DatasetSpec(
        "tiny2",
        "tiny2.npz",
        "t",
        "t",
        registry._images,
        content_sha256="0" * 64,
        sources=tuple(sources),
        convert=convert.idx_images,
    )
    monkeypatch.setitem(registry.DATASETS, "tiny2", spec)
    with pytest.raises(data.DatasetCorruptError, match="other data than the published"):
        data.load("tiny2", progress=False)
    assert not (isolated_cache / "tiny2.npz").exists()


def test_safe_extract_rejects_zip_slip(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ok/a.txt", "fine")
        zf.writestr("../../escaped.txt", "bad")
    with pytest.raises(data.DatasetCorruptError, match="escape"):
        files.safe_extract(z, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out" / "ok").exists()


def test_safe_extract_rejects_tar_traversal_and_extracts_good_tar(tmp_path):
    def tar_with(name):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            info = tarfile.TarInfo(name)
            info.size = 4
            tf.addfile(info, io.BytesIO(b"data"))
        p = tmp_path / (name.replace("/", "_") + ".tar.gz")
        p.write_bytes(buf.getvalue())
        return p

    with pytest.raises(data.DatasetCorruptError):
        files.safe_extract(tar_with("../outside.txt"), tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()
    out = files.safe_extract(tar_with("dir/inside.txt"), tmp_path / "good")
    assert (out / "dir" / "inside.txt").read_bytes() == b"data"


def test_damaged_archive(tmp_path):
    p = tmp_path / "x.zip"
    p.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(data.DatasetCorruptError):
        files.safe_extract(p, tmp_path / "o")


def test_unknown_dataset_lists_known_names():
    with pytest.raises(KeyError, match="mnist"):
        data.load("imagenet")


def test_read_idx_rejects_wrong_sizes():
    good = gzip.decompress(_idx(np.zeros((3, 2, 2), np.uint8)))
    assert convert.read_idx(good).shape == (3, 2, 2)
    with pytest.raises(data.DatasetCorruptError, match="IDX header"):
        convert.read_idx(good[:-1])


def test_bs2_decoding():
    # x=3, y=7, polarity 1, t = 0x12345 (23 bits)
    ev = convert.read_bs2(bytes([3, 7, 0x80 | 0x01, 0x23, 0x45]))
    assert ev["x"].tolist() == [3] and ev["y"].tolist() == [7] and ev["p"].tolist() == [1]
    assert ev["t_us"].tolist() == [0x12345]

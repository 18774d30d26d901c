"""Every loader against the real files in $BIOSNN_DATA: shapes, dtypes, counts and label histograms as
documented in ../shared/data/README.md, and clear errors on damaged copies."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bioSNN import data

pytestmark = pytest.mark.data


@pytest.fixture
def shared(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("BIOSNN_DATA", str(data_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # never fall back to a real cache
    return data_dir


def _hist(y, k=10):
    return np.bincount(y, minlength=k).tolist()


def test_mnist(shared):
    d = data.load("mnist", download=False)
    assert d.x_train.shape == (60000, 28, 28) and d.x_test.shape == (10000, 28, 28)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int64 and d.y_test.dtype == np.int64
    assert _hist(d.y_train) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert _hist(d.y_test) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert d.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert d.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert d.x_train.mean() == pytest.approx(33.3184, abs=1e-4)


def test_fashion_mnist(shared):
    d = data.load("fashion_mnist", download=False)
    assert d.x_train.shape == (60000, 28, 28) and d.x_test.shape == (10000, 28, 28)
    assert _hist(d.y_train) == [6000] * 10 and _hist(d.y_test) == [1000] * 10
    assert d.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert d.class_names[0] == "T-shirt/top" and d.class_names[9] == "Ankle boot"
    assert d.x_train.mean() == pytest.approx(72.9404, abs=1e-4)


def test_cifar10_subset(shared):
    d = data.load("cifar10", download=False)
    assert d.x_train.shape == (4000, 32, 32, 3) and d.x_test.shape == (1000, 32, 32, 3)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int64
    assert _hist(d.y_train) == [396, 366, 420, 384, 422, 393, 414, 385, 407, 413]
    assert _hist(d.y_test) == [103, 89, 100, 103, 90, 86, 112, 102, 106, 109]
    assert d.y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert d.x_train[0, 0, :3, 0].tolist() == [59, 43, 50]  # official data_batch_1 image 0, red row
    assert d.x_test[0, 0, :3, 0].tolist() == [158, 159, 165]
    assert d.class_names == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def test_fsdd(shared):
    d = data.load("fsdd", download=False)
    assert len(d) == 3000 and d.sample_rate == 8000 and d.audio.dtype == np.int16
    assert len(d.offsets) == 3001 and d.offsets[-1] == len(d.audio) == 10_498_424
    assert _hist(d.labels) == [300] * 10
    assert np.bincount(d.speaker_ids).tolist() == [500] * 6
    assert d.speaker_names == ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
    assert len(d.test_indices) == 300 and len(d.train_indices) == 2700
    assert (d.take_index[d.is_test] < 5).all() and (d.take_index[~d.is_test] >= 5).all()
    durations = np.diff(d.offsets) / d.sample_rate
    assert durations.min() == pytest.approx(0.143, abs=1e-3) and durations.max() == pytest.approx(2.283, abs=1e-3)
    w = d.waveform(0, normalise=True)
    assert w.dtype == np.float32 and np.abs(w).max() <= 1.0 and len(w) == d.offsets[1]
    assert d.filenames[0] == "0_george_0.wav"


def test_nmnist(shared):
    d = data.load("nmnist", download=False)
    assert len(d) == 1100 and d.sensor_size == (34, 34, 2) and len(d.x) == 4_518_827
    assert d.is_test.sum() == 100 and not d.is_test[:1000].any()
    assert _hist(d.labels[~d.is_test]) == [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]
    assert _hist(d.labels[d.is_test]) == [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]
    counts = np.diff(d.offsets)
    assert counts.min() == 1069 and counts.max() == 7152
    ev = d.events(5)
    assert ev["x"].max() <= 33 and ev["y"].max() <= 33 and set(np.unique(ev["p"])) <= {0, 1}
    assert (np.diff(ev["t_us"].astype(np.int64)) >= 0).all()


def test_nmnist_labels_match_mnist(shared):
    ev, mn = data.load("nmnist", download=False), data.load("mnist", download=False)
    idx = ev.extra["mnist_index"]
    assert (mn.y_train[idx[~ev.is_test]] == ev.labels[~ev.is_test]).all()
    assert (mn.y_test[idx[ev.is_test]] == ev.labels[ev.is_test]).all()


def test_sst2(shared):
    d = data.load("sst2", download=False)
    assert {k: len(s.texts) for k, s in d.splits.items()} == {"train": 67349, "dev": 872, "test": 1821}
    assert np.bincount(d.splits["train"].labels).tolist() == [29780, 37569]
    assert np.bincount(d.splits["dev"].labels).tolist() == [428, 444]
    assert np.bincount(d.splits["test"].labels).tolist() == [912, 909]
    assert d.splits["train"].texts[0] == "hide new secretions from the parental units"
    assert d.splits["train"].labels.dtype == np.int64


def test_multi30k(shared):
    d = data.load("multi30k", download=False)
    counts = {k: len(s.source) for k, s in d.splits.items()}
    assert counts == {
        "train": 29000,
        "val": 1014,
        "test_2016_flickr": 1000,
        "test_2017_flickr": 1000,
        "test_2017_mscoco": 461,
        "test_2018_flickr": 1071,
    }
    assert all(len(s.source) == len(s.target) == len(s.ids) for s in d.splits.values())
    assert d.splits["train"].source[0] == "Two young, White males are outside near many bushes."
    assert d.splits["train"].target[0].startswith("Zwei junge weiße Männer")


def test_digits_embedded(isolated_cache):
    d = data.load("digits")
    assert d.x_train.shape == (1347, 8, 8) and d.x_test.shape == (450, 8, 8) and d.x_train.dtype == np.uint8
    assert d.x_train.max() == 255 and d.y_train.dtype == np.int64
    # stratified: each class keeps ~25 % of its samples in the test split
    ratio = np.bincount(d.y_test) / (np.bincount(d.y_test) + np.bincount(d.y_train))
    assert np.all(np.abs(ratio - 0.25) < 0.01)
    assert not isolated_cache.exists()  # no download, no cache write


def _copy(shared, tmp_path, monkeypatch, name):
    dst = tmp_path / "copy"
    dst.mkdir()
    shutil.copy(shared / name, dst / name)
    monkeypatch.setenv("BIOSNN_DATA", str(dst))
    return dst / name


def test_truncated_npz_is_a_clear_error(shared, tmp_path, monkeypatch):
    f = _copy(shared, tmp_path, monkeypatch, "mnist.npz")
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(data.DatasetCorruptError, match="mnist.npz"):
        data.load("mnist", download=False)


def test_changed_content_fails_the_checksum(shared, tmp_path, monkeypatch):
    f = _copy(shared, tmp_path, monkeypatch, "cifar10_subset.npz")
    arrays = dict(np.load(f))
    arrays["y_test"] = arrays["y_test"].copy()
    arrays["y_test"][0] = (arrays["y_test"][0] + 1) % 10  # one flipped label
    np.savez_compressed(f, **arrays)
    with pytest.raises(data.DatasetCorruptError, match="content sha256"):
        data.load("cifar10", download=False)
    assert data.load("cifar10", download=False, verify=False).y_test[0] == arrays["y_test"][0]


def test_truncated_jsonl_is_a_clear_error(shared, tmp_path, monkeypatch):
    f = _copy(shared, tmp_path, monkeypatch, "sst2.jsonl.gz")
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(data.DatasetCorruptError, match="sst2.jsonl.gz"):
        data.load("sst2", download=False)

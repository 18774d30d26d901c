"""Bad input of every kind is refused with one line that names the file or key, before any work is done or any
folder made, and nothing that was there is lost: data files, bundles, configs, the command line, the file system."""

from __future__ import annotations

import errno
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bioSNN import bundles, data
from bioSNN.cli import main
from bioSNN.runs import RunLock


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("biosnn: error: "), err
    return err[0]


# ---------------------------------------------------------------------------------------------------- data files
def _images(path: Path, **change) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 20),
        "x_test": rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 5),
        "class_names": np.array([str(i) for i in range(10)]),
    }
    arrays.update(change)
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"x_train": np.zeros((20, 32, 32, 3), np.float32)}, "x_train must be uint8 images"),
        ({"x_test": np.zeros((5, 28, 28, 3), np.uint8)}, "train images are [32, 32, 3], test images [28, 28, 3]"),
        ({"y_train": np.full(20, 10)}, "outside [0, 9]"),
        ({"y_test": np.full(5, -1)}, "outside [0, 9]"),
        ({"y_train": np.full(20, 2.5)}, "labels must be integers"),
        ({"y_test": np.zeros(4, np.int64)}, "4 y_test labels for 5 samples"),
    ],
)
def test_a_dataset_without_digest_is_checked_by_its_loader(tmp_path, monkeypatch, change, message):
    # cifar10_full has no published digest: its loader's own checks are all that stands between a bad file and
    # a run that trains to chance with exit code 0
    _images(tmp_path / "cifar10.npz", **change)
    monkeypatch.setenv("BIOSNN_DATA", str(tmp_path))
    with pytest.raises(data.DatasetCorruptError, match=re.escape(message)) as e:
        data.load("cifar10_full", download=False)
    assert str(tmp_path / "cifar10.npz") in str(e.value)


def test_a_good_file_of_the_same_layout_loads(tmp_path, monkeypatch):
    _images(tmp_path / "cifar10.npz")
    monkeypatch.setenv("BIOSNN_DATA", str(tmp_path))
    ds = data.load("cifar10_full", download=False)
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.n_classes == 10


def test_unverified_real_data_are_still_checked(data_dir, tmp_path, monkeypatch):
    raw = dict(np.load(data_dir / "mnist.npz", allow_pickle=False))
    raw["x_train"] = raw["x_train"][:100].astype(np.float64) / 255  # floats in [0, 1]: a common conversion slip
    raw["y_train"] = raw["y_train"][:100]
    np.savez(tmp_path / "mnist.npz", **raw)
    monkeypatch.setenv("BIOSNN_DATA", str(tmp_path))
    with pytest.raises(data.DatasetCorruptError, match="x_train must be uint8"):
        data.load("mnist", verify=False)
    with pytest.raises(data.DatasetCorruptError, match="other data than the published"):
        data.load("mnist")


def test_a_run_on_a_corrupt_dataset_stops_with_one_line_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    _images(tmp_path / "cifar10.npz", y_train=np.full(20, 12))
    monkeypatch.setenv("BIOSNN_DATA", str(tmp_path))
    out = tmp_path / "runs"
    assert main(["run", "demo", "--out", str(out), "--no-progress", "--set", "dataset=cifar10_full"]) == 2
    assert "cifar10.npz" in one_error_line(capsys)
    assert not out.exists() or list(out.iterdir()) == []


# ------------------------------------------------------------------------------------------------------- bundles
def _bundle(path: Path) -> Path:
    pops = (bundles.Population("inp", 3, "input"), bundles.Population("out", 2, "lif"))
    return bundles.write(
        path, bundles.Bundle(pops, (bundles.Projection("fc", "inp", "out", "w"),), {"w": np.ones((2, 3))})
    )


def _rewrite_meta(path: Path, fn) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["bundle.json"])
    fn(meta)
    members["bundle.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, d in members.items():
            zf.writestr(n, d)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m: m.update(arrays=[1, 2]), "'arrays' of the description must be a JSON object"),
        (lambda m: m.update(populations={"a": 1}), "'populations' of the description must be a JSON list"),
        (lambda m: m["populations"].append(7), "every entry of 'populations' must be a JSON object"),
        (lambda m: m["arrays"]["w"].update(shape="big"), "no valid shape"),
        (lambda m: m["arrays"]["w"].update(dtype="no-such-type"), "no valid dtype"),
        (lambda m: m["arrays"]["w"].update(dtype="|O"), "Python objects"),
        (lambda m: m.update(version=True), "version True is not supported"),
        (lambda m: m.update(device=[1]), "'device' must be a JSON object"),
        (lambda m: m["populations"][0].update(size="many"), "size must be a positive integer"),
    ],
)
def test_malformed_bundle_descriptions_raise_bundle_errors(tmp_path, mutate, message):
    p = _bundle(tmp_path / "b.npz")
    _rewrite_meta(p, mutate)
    with pytest.raises(bundles.BundleError, match=re.escape(message)) as e:
        bundles.read(p)
    assert str(p) in str(e.value)


def test_a_small_file_declaring_a_huge_array_is_refused_without_reading_it(tmp_path, capsys):
    p = _bundle(tmp_path / "b.npz")
    _rewrite_meta(p, lambda m: m["arrays"]["w"].update(shape=[3 << 30 >> 3, 1]))  # 3 GiB of float64
    assert p.stat().st_size < 4096
    with pytest.raises(bundles.BundleError, match="more than the .* allowed"):
        bundles.read(p)
    # raised limit: the npy header (3 x 2) disagrees with the description before any memory is taken
    with pytest.raises(bundles.BundleError, match="described as"):
        bundles.read(p, max_bytes=4 << 30)
    # `biosnn info` reads the description only
    assert main(["info", str(p)]) == 0
    assert json.loads(capsys.readouterr().out)["arrays"]["w"]["shape"] == [3 << 30 >> 3, 1]


def test_a_truncated_array_member_is_a_bundle_error(tmp_path):
    p = _bundle(tmp_path / "b.npz")
    with zipfile.ZipFile(p) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["w.npy"] = members["w.npy"][:-8]
    with zipfile.ZipFile(p, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    with pytest.raises(bundles.BundleError, match="truncated"):
        bundles.read(p)


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    p = _bundle(tmp_path / "ckpt.npz")
    before = p.read_bytes()

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", full)
    with pytest.raises(OSError):
        _bundle(p)
    assert p.read_bytes() == before and [q.name for q in tmp_path.iterdir()] == ["ckpt.npz"]


# ------------------------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    "experiment, setting, key",
    [
        ("demo", "lr=inf", "lr"),
        ("demo", "threshold=inf", "threshold"),
        ("demo", "epochs=-1", "epochs"),
        ("demo", "train_limit=-5", "train_limit"),
        ("demo", "batch_size=0", "batch_size"),
        ("demo", "time_steps=0", "time_steps"),
        ("demo", "threads=0", "threads"),
        ("demo", "leak=nan", "leak"),
        ("demo", "surrogate=magic", "surrogate"),
        ("demo", "dataset=imagenet", "dataset"),
        ("compression", "variants=", "variants"),
        ("compression", "variants=full,full", "variants"),
        ("compression", "variants=q9x", "variants"),
        ("compression", "n_label=0", "n_label"),
        ("compression", "network.chunk=5", "network.chunk"),
        ("compression", "network.max_rate=-1", "network.max_rate"),
        ("compression", "backend=gpu", "backend"),
        ("compression", "eta_end=0", "eta_end"),
        ("hybrid", "encoder=latency", "encoder"),
        ("hybrid", "dropout=1", "dropout"),
        ("hybrid", "model=vgg7", "model"),
        ("hybrid", "augment=rotate", "augment"),
        ("diet", "qat_steps=7", "qat_steps"),
        ("diet", "optimizer=lbfgs", "optimizer"),
        ("multimodal", "audio.n_input=5", "audio.n_input"),
        ("multimodal", "variants=image,image", "variants"),
        ("multimodal", "compress=q", "compress"),
    ],
)
def test_bad_config_values_are_refused_before_a_folder_is_made(tmp_path, capsys, experiment, setting, key):
    out = tmp_path / "runs"
    assert main(["run", experiment, "--out", str(out), "--set", setting]) == 2
    line = one_error_line(capsys)
    assert f"error: {key}" in line or f"{key!r}" in line or f"{key}:" in line, line
    assert not out.exists()


def test_an_existing_file_as_out_is_named(tmp_path, capsys):
    f = tmp_path / "taken"
    f.write_text("x")
    assert main(["run", "demo", "--out", str(f)]) == 2
    assert f"--out {f} is a file" in one_error_line(capsys)


@pytest.mark.parametrize(
    "err, shown",
    [
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "read-only file system"),
        (errno.ENOSPC, "disk full (no space left on device)"),
    ],
)
def test_file_system_errors_are_one_line_naming_the_file(tmp_path, capsys, monkeypatch, err, shown):
    import bioSNN.cli as cli

    def refuse(root, name):
        raise OSError(err, "os message", str(Path(root) / name))

    monkeypatch.setattr(cli, "new_run_dir", refuse)
    assert main(["run", "demo", "--out", str(tmp_path / "ro")]) == 2
    assert one_error_line(capsys) == f"biosnn: error: {shown}: {tmp_path / 'ro' / 'demo'}"


# --------------------------------------------------------------------------------------------- resume and locks
TINY = ["--set", "epochs=1", "--set", "hidden=16", "--set", "train_limit=200", "--set", "test_limit=100"]


@pytest.fixture
def demo_run(tmp_path, isolated_cache):
    root = tmp_path / "runs"
    assert main(["run", "demo", "--out", str(root), "--no-progress", *TINY]) == 0
    (run,) = root.iterdir()
    return run


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "hidden=64"], "--resume cannot change 'hidden' (16 -> 64)"),
        (["--set", "lr=0.1"], "--resume cannot change 'lr'"),
        (["--set", "epochs=-2"], "epochs: must be >=0"),
        (["--config", "nowhere.toml"], "drop --config/--preset"),
        (["--preset", "full"], "drop --config/--preset"),
    ],
)
def test_a_refused_resume_writes_nothing(demo_run, capsys, extra, message):
    before = {p: p.read_bytes() for p in demo_run.rglob("*") if p.is_file()}
    assert main(["run", "demo", "--resume", str(demo_run), "--no-progress", *extra]) == 2
    assert message in one_error_line(capsys)
    assert {p: p.read_bytes() for p in demo_run.rglob("*") if p.is_file()} == before


def test_resuming_with_more_epochs_is_allowed_and_recorded(demo_run, capsys):
    assert main(["run", "demo", "--resume", str(demo_run), "--no-progress", "--set", "epochs=2"]) == 0
    saved = json.loads((demo_run / "config.json").read_text())
    assert saved["config"]["epochs"] == 2 and saved["schema"] == 1
    assert saved["command"][:3] == ["biosnn", "run", "demo"] and saved["resumes"][0][3:5] == ["--resume", str(demo_run)]


def test_a_resume_without_checkpoints_says_it_starts_over(demo_run, capsys):
    import shutil

    shutil.rmtree(demo_run / "checkpoints")
    assert main(["run", "demo", "--resume", str(demo_run), "--no-progress"]) == 0
    assert "holds no checkpoint (deleted?): the run starts over" in capsys.readouterr().err


def test_a_run_folder_in_use_is_refused_naming_its_holder(demo_run, capsys):
    with RunLock(demo_run):
        assert main(["run", "demo", "--resume", str(demo_run), "--no-progress"]) == 2
        line = one_error_line(capsys)
    assert f"{demo_run} is in use by process" in line and "biosnn" in line
    assert main(["run", "demo", "--resume", str(demo_run), "--no-progress"]) == 0  # released: goes on


def test_resume_of_another_experiments_folder_is_named(demo_run, capsys):
    assert main(["run", "hybrid", "--resume", str(demo_run)]) == 2
    assert "is a 'demo' run; resume it with `biosnn run demo --resume" in one_error_line(capsys)


def test_ctrl_c_says_how_to_resume(demo_run, capsys, monkeypatch):
    from bioSNN.experiments import demo

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run", interrupted)
    assert main(["run", "demo", "--resume", str(demo_run), "--no-progress", "--set", "epochs=3"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"biosnn: interrupted; resume with `biosnn run demo --resume {demo_run}`"
    assert json.loads((demo_run / "run.json").read_text())["segments"][-1]["status"] == "interrupted"
    with pytest.raises(KeyboardInterrupt):  # --debug: the traceback
        main(["--debug", "run", "demo", "--resume", str(demo_run), "--no-progress"])


def test_a_run_config_repeats_that_run(demo_run, tmp_path, capsys):
    out = tmp_path / "again"
    assert main(["run", "demo", "--config", str(demo_run / "config.json"), "--out", str(out), "--no-progress"]) == 0
    (again,) = out.iterdir()
    a, b = (json.loads((d / "config.json").read_text()) for d in (demo_run, again))
    assert a["config"] == b["config"] and a["preset"] == b["preset"]
    assert (
        json.loads((again / "metrics.json").read_text())["accuracy"]
        == json.loads((demo_run / "metrics.json").read_text())["accuracy"]
    )
    assert main(["run", "hybrid", "--config", str(demo_run / "config.json"), "--out", str(out)]) == 2
    assert "is the config of a 'demo' run, not 'hybrid'" in one_error_line(capsys)


# --------------------------------------------------------------------------------- arguments of every subcommand
def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's refusals
        return e.code


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "{model}", "--time-steps", "0"], "export: argument --time-steps: an integer >= 1, got '0'"),
        (["export", "{model}", "--dt", "nan"], "export: argument --dt: a positive, finite number of seconds"),
        (["export", "{model}", "--dt=-1e-3"], "export: argument --dt: a positive, finite number of seconds"),
        (["inspect", "{run}", "--neurons", "-1"], "inspect: argument --neurons: neuron indices are >= 0"),
        (["inspect", "{run}", "--neurons", "0,x"], "inspect: argument --neurons: comma-separated neuron indices"),
        (["inspect", "{run}", "--items", "0"], "inspect: argument --items: an integer >= 1, got '0'"),
        (["inspect", "{run}", "--neurons", "0,999"], "--neurons: act1 has 16 neurons, so indices must lie in [0, 16)"),
        (["inspect", "{run}", "--items", "1000000"], "--items: digits has 450 test items, got 1000000"),
        (["run", "nope"], "unknown experiment 'nope'"),
        (["frobnicate"], "argument cmd: invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_are_one_line_with_exit_code_2_before_any_work(demo_run, tmp_path, capsys, argv, message):
    argv = [a.format(model=demo_run / "model.npz", run=demo_run) for a in argv]
    before = sorted(p for p in demo_run.rglob("*"))
    assert _exit_code(argv) == 2
    assert message in one_error_line(capsys)
    assert sorted(p for p in demo_run.rglob("*")) == before  # no inspect-* folder, no .nir file


def test_bad_bundles_given_to_info_exit_2(tmp_path, capsys):
    (tmp_path / "x.npz").write_bytes(b"no zip")
    assert main(["info", str(tmp_path / "x.npz")]) == 2
    assert "x.npz is damaged or not a bioSNN bundle" in one_error_line(capsys)

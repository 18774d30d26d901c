"""Kill a run (SIGKILL, in a subprocess) at chosen points — in the middle of a checkpoint write, between chunks or
epochs, in a worker, the main process from under its workers — resume it, and compare every output of the run
folder with an uninterrupted run of the same command, bit for bit (timings and creation times aside).

The kills come from the fault hook of ``bioSNN.atomic`` (``BIOSNN_FAULT_KILL``), so they land at exact, named
points instead of at random times. Quick scale here; the same check at preset scale is marked ``slow``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from bioSNN import bundles

TIMING = re.compile(r"seconds|per_second|^created$|^git_commit$")


def cli(*args: str, fault: str | None = None, tag: str = "", timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "BIOSNN_TEST_TAG": tag}
    env.pop("BIOSNN_FAULT_KILL", None)
    if fault:
        env["BIOSNN_FAULT_KILL"] = fault
    return subprocess.run(
        [sys.executable, "-m", "bioSNN.cli", "run", *args, "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not TIMING.search(k)}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def outputs(run_dir: Path) -> dict:
    """Everything a run leaves, in comparable form: JSON without timings, bundles as description (without
    timings and creation time) plus raw array bytes, other files as bytes. Build folders and bookkeeping
    (lock, run log) are left out; ``config.json`` loses the command lines, which name the folders."""
    out = {}
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir).as_posix()
        if p.is_dir() or "brian_project" in rel or p.name in (".lock", "run.json"):
            continue
        if p.suffix == ".json":
            obj = _strip(json.loads(p.read_text()))
            if p.name == "config.json":
                obj = {k: v for k, v in obj.items() if k not in ("command", "resumes")}
            out[rel] = obj
        elif p.suffix == ".npz":
            try:
                b = bundles.read(p)
                out[rel] = (_strip(b.describe()), {k: (a.dtype.str, a.shape, a.tobytes()) for k, a in b.arrays.items()})
            except bundles.BundleError:  # a plain array file (saved test responses)
                with np.load(p, allow_pickle=False) as z:
                    out[rel] = {k: (z[k].dtype.str, z[k].shape, z[k].tobytes()) for k in z.files}
        elif p.suffix == ".npy":
            a = np.load(p, allow_pickle=False)
            out[rel] = (a.dtype.str, a.shape, a.tobytes())
        else:
            out[rel] = p.read_bytes()
    return out


def _first_difference(x, y, where: str = "") -> str:
    """Where two nested outputs first differ (a short path, not a diff of megabytes of bytes)."""
    if isinstance(x, dict) and isinstance(y, dict):
        if set(x) != set(y):
            return f"{where}: keys {sorted(set(x) ^ set(y))}"
        return next((_first_difference(x[k], y[k], f"{where}/{k}") for k in x if x[k] != y[k]), where)
    if isinstance(x, (tuple, list)) and isinstance(y, (tuple, list)) and len(x) == len(y):
        return next((_first_difference(u, v, f"{where}[{i}]") for i, (u, v) in enumerate(zip(x, y)) if u != v), where)
    return f"{where}: {str(x)[:120]} != {str(y)[:120]}"


def assert_same_outputs(ref: Path, other: Path) -> None:
    a, b = outputs(ref), outputs(other)
    assert sorted(a) == sorted(b), f"files differ: {sorted(set(a) ^ set(b))}"
    for rel in a:
        if a[rel] != b[rel]:
            pytest.fail(
                f"{rel} differs between the uninterrupted and the resumed run at {_first_difference(a[rel], b[rel])}"
            )


def only_run(root: Path) -> Path:
    (run,) = [p for p in root.iterdir() if p.is_dir()]
    return run


def tagged_processes(tag: str) -> list[int]:
    """Live processes whose environment carries ``BIOSNN_TEST_TAG=tag`` (workers, simulator binaries)."""
    found = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"BIOSNN_TEST_TAG={tag}".encode() in env.read_bytes().split(b"\0"):
                found.append(int(env.parent.name))
        except OSError:
            continue
    return found


def kill_and_resume(name: str, settings: list[str], faults: list[str], tmp_path: Path, tag: str = ""):
    """Run ``name`` once uninterrupted and once killed at each of ``faults`` in turn (the first on the fresh run,
    the others on the resumes), then resumed to the end; compare the two run folders."""
    sets = [x for s in settings for x in ("--set", s)]
    done = cli(name, "--out", str(tmp_path / "ref"), *sets)
    assert done.returncode == 0, done.stderr[-3000:]
    first, *more = faults
    killed = cli(name, "--out", str(tmp_path / "killed"), *sets, fault=first, tag=tag)
    assert killed.returncode == -9, (first, killed.returncode, killed.stderr[-3000:])
    run = only_run(tmp_path / "killed")
    ends = ["killed"]
    for fault in more:
        r = cli(name, "--resume", str(run), fault=fault, tag=tag)
        if r.returncode == 2:  # a worker died: the main process stops with one line that says how to go on
            line = r.stderr.splitlines()[0]
            assert "worker process died" in line and f"--resume {run}" in line and "Traceback" not in r.stderr
        else:
            assert r.returncode == -9, (fault, r.returncode, r.stderr[-3000:])
        ends.append("failed" if r.returncode == 2 else "killed")
    r = cli(name, "--resume", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_outputs(only_run(tmp_path / "ref"), run)
    log = json.loads((run / "run.json").read_text())["segments"]
    assert [s["status"] for s in log] == ends + ["finished"]
    wall = json.loads((run / "metrics.json").read_text())["wall_seconds"]
    assert wall == pytest.approx(sum(s["seconds"] for s in log), rel=1e-6)  # every segment counted
    return run


def test_demo_resumes_bit_identical_after_kills_in_a_write_and_at_an_epoch_end(tmp_path, isolated_cache):
    kill_and_resume(
        "demo",
        ["epochs=3", "hidden=32", "train_limit=400", "test_limit=200"],
        ["last.npz:1:before", "last.npz:1:after"],
        tmp_path,
    )


def lr_of(checkpoint: Path) -> list[float]:
    """The learning rate of each parameter group stored in a training checkpoint."""
    return [g["lr"] for g in bundles.read(checkpoint).extra["optimizer"]["param_groups"]]


@pytest.mark.torch
def test_hybrid_resumes_bit_identical_after_kills_after_a_learning_rate_drop_and_inside_epochs(
    tmp_path, isolated_cache
):
    # the ANN's rate drops x0.1 after epoch 1 of 2; the kill lands right after that epoch's checkpoint (a resume
    # once restored the lowered rate and replayed the drop: 1e-5 instead of 1e-4), then inside a hybrid epoch
    run = kill_and_resume(
        "hybrid",
        [
            "ann_epochs=2",
            "ann_lr_milestones=0.5",
            "hybrid_epochs=2",
            "convert_steps=4",
            "hybrid_steps=4",
            "train_limit=256",
            "test_limit=64",
            "balance_samples=32",
            "hidden=32",
            "checkpoint_seconds=0",
            "batch_size=64",
        ],
        ["ann.npz:5:after", "ann.npz:2:before", "hybrid_T4.npz:3:before"],
        tmp_path,
    )
    assert lr_of(run / "checkpoints" / "ann.npz") == [pytest.approx(1e-4)]


@pytest.mark.torch
def test_diet_resumes_bit_identical_after_kills_after_learning_rate_drops_and_in_every_phase(tmp_path, isolated_cache):
    # DIET's default schedule drops x0.1 after epochs 1 and 2 of 2: the first kill follows epoch 1's checkpoint
    # (3 batches, then the epoch's own write), the second lands inside epoch 2
    run = kill_and_resume(
        "diet",
        [
            "ann_epochs=1",
            "diet_steps=2",
            "diet_epochs=2",
            "compare_steps=2",
            "hybrid_epochs=1",
            "device_bits=2",
            "qat_steps=2",
            "qat_epochs=1",
            "train_limit=192",
            "test_limit=64",
            "balance_samples=32",
            "hidden=32",
            "checkpoint_seconds=0",
        ],
        ["diet_T2.npz:4:after", "diet_T2.npz:1:before", "hybrid_T2.npz:2:after", "qat_2bit.npz:1:before"],
        tmp_path,
    )
    assert lr_of(run / "checkpoints" / "diet_T2.npz") == [pytest.approx(5e-4 * 0.01)]  # the quick preset's diet_lr


@pytest.mark.brian2
def test_compression_resumes_bit_identical_after_kills_of_the_main_process_and_of_a_worker(tmp_path, isolated_cache):
    tag = uuid.uuid4().hex
    # 1. a worker kills the main process after its second chunk: the workers must die with it
    # 2. a worker is killed in the middle of a checkpoint write: the run stops with one line, keeps its state
    run = kill_and_resume(
        "compression",
        [
            "epochs=1",
            "n_train=600",
            "n_label=200",
            "n_test=100",
            "variants=full,pruned+q2",
            "workers=2",
            "interval=100",
            "start=100",
            "curve_block=100",
            "network.n_exc=10",
            "network.chunk=100",
            "monitor=false",
        ],
        ["checkpoint.npz:2:after:parent", "checkpoint.npz:2:before"],
        tmp_path,
        tag=tag,
    )
    deadline = time.monotonic() + 10
    while tagged_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tagged_processes(tag) == []  # no worker or simulator outlived its run
    curve = json.loads((run / "variants" / "full" / "result.json").read_text())["curve"]
    assert curve["images"] == [200, 300, 400, 500, 600]


@pytest.mark.slow
@pytest.mark.brian2
def test_multimodal_resumes_bit_identical_after_a_kill_in_a_checkpoint_write(data_dir, tmp_path):
    kill_and_resume(
        "multimodal",
        [
            "n_pairs=600",
            "n_label=200",
            "variants=multimodal",
            "image.n_exc=10",
            "audio.n_exc=10",
            "image.chunk=200",
            "audio.chunk=200",
            "interval=200",
            "start=200",
            "image_noise=0.4",
            "audio_snr_db=5",
        ],
        ["checkpoint.npz:2:before"],
        tmp_path,
    )


def test_a_sigterm_ends_the_segment_as_interrupted_and_a_kill_is_timed_to_its_last_write(tmp_path, isolated_cache):
    """``timeout`` or a batch system stops a run with SIGTERM: the segment says so (not ``running``), the exit
    code is 143 and the run resumes; a SIGKILLed segment is timed up to the newest file it wrote."""
    import signal

    sets = [x for s in ["epochs=6", "hidden=32", "train_limit=400", "test_limit=200"] for x in ("--set", s)]
    env = {k: v for k, v in os.environ.items() if k != "BIOSNN_FAULT_KILL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bioSNN.cli", "run", "demo", "--out", str(tmp_path / "r"), *sets, "--no-progress"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not list((tmp_path / "r").glob("*/checkpoints/last.npz")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-2000:]
    run = only_run(tmp_path / "r")
    assert f"--resume {run}" in err and "Traceback" not in err
    (seg,) = json.loads((run / "run.json").read_text())["segments"]
    assert (seg["status"], seg["signal"]) == ("interrupted", "SIGTERM") and seg["seconds"] > 0 and seg["ended"]
    # a kill after the next checkpoint: its segment is settled on the resume from the files it wrote
    killed = cli("demo", "--resume", str(run), fault="last.npz:1:after")
    assert killed.returncode == -9
    last_write = (run / "checkpoints" / "last.npz").stat().st_mtime
    assert cli("demo", "--resume", str(run)).returncode == 0
    segs = json.loads((run / "run.json").read_text())["segments"]
    assert [s["status"] for s in segs] == ["interrupted", "killed", "finished"]
    assert segs[1]["start_time"] + segs[1]["seconds"] >= last_write - 1e-3

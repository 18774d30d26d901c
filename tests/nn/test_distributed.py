"""Two CPU processes under torchrun (gloo): the replicas' weights stay identical and do change."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.torch


def test_two_process_data_parallel_training_keeps_replicas_identical(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(worker),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    w0, w1 = np.load(tmp_path / "rank0.npy"), np.load(tmp_path / "rank1.npy")
    np.testing.assert_array_equal(w0, w1)
    init0, init1 = np.load(tmp_path / "initial_rank0.npy"), np.load(tmp_path / "initial_rank1.npy")
    np.testing.assert_array_equal(init0, init1)  # DDP broadcast rank 0's initial weights
    assert not np.array_equal(w0[: init0.size], init0.ravel())  # and training moved them
    for r in (0, 1):
        samples, world = np.load(tmp_path / f"samples_rank{r}.npy")
        assert world == 2 and samples == 32  # each rank trained on its half of the 64 samples

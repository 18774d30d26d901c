"""brian2cuda: the Diehl & Cook network generates a CUDA project that nvcc compiles, without a GPU.

Running it needs a GPU; this check keeps the CUDA path from rotting on machines without one. It needs the
``cuda`` extra (brian2cuda, nvidia-curand) and ``nvcc``; elsewhere it is skipped.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("brian2cuda")
if shutil.which("nvcc") is None:
    pytest.skip("nvcc not found", allow_module_level=True)

from bioSNN import data
from bioSNN.brian.backend import Backend, backend, compile_cuda_project
from bioSNN.brian.network import DiehlCookConfig, DiehlCookNetwork

pytestmark = [pytest.mark.brian2, pytest.mark.cuda_build]


def test_cuda_project_generates_and_compiles(tmp_path, isolated_cache):
    d = data.load("digits")
    cfg = DiehlCookConfig(n_input=64, n_exc=20, w_sum=12.8, max_rate=255.0, chunk=50)
    be = Backend("cuda_standalone", directory=str(tmp_path / "cuda"), gpu=False, cuda_compute_capability=9.0)
    with backend(be):
        net = DiehlCookNetwork(cfg, d.x_train.reshape(len(d.x_train), -1), be)
        net.build(compile=False)
        with pytest.raises(RuntimeError, match="compilation only"):
            net.present(np.arange(3), plastic=True, progress=False)
    project = tmp_path / "cuda"
    assert (project / "makefile").exists() and (project / "code_objects" / "norm_scale_codeobject.cu").exists()
    assert "sm_90" in (project / "makefile").read_text()
    seconds = compile_cuda_project(project)
    binary = project / "main"
    assert binary.exists() and binary.stat().st_size > 100_000 and seconds > 0

"""Compiled once: a second network with the same generated code takes its binary from the compile cache and gives
the same spikes; a damaged cache entry is rebuilt; make runs with a bounded number of compilers."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from bioSNN.brian import compile_cache
from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.network import DiehlCookConfig, DiehlCookNetwork

pytestmark = pytest.mark.brian2

CFG = DiehlCookConfig(n_input=16, n_exc=4, w_sum=3.2, max_rate=255.0, t_present=50.0, t_rest=20.0, chunk=12)


def _present(tmp_path, name):
    gc.collect()  # Brian2 names objects uniquely among the living ones: a lingering network renames the next one
    x = np.random.default_rng(0).integers(0, 256, (6, 16), dtype=np.uint8)
    be = Backend("cpp_standalone", directory=str(tmp_path / name))
    with backend(be):
        net = DiehlCookNetwork(CFG, x, be)
        counts = net.present(np.arange(6), plastic=True, progress=False).counts
        return net.build_result, counts, net.w.copy()


def test_the_same_network_is_compiled_once_and_runs_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first, counts_a, w_a = _present(tmp_path, "a")
    second, counts_b, w_b = _present(tmp_path, "b")
    assert not first.cached and second.cached and first.key == second.key
    assert second.seconds < first.seconds / 5  # a copy, not a compilation
    np.testing.assert_array_equal(counts_a, counts_b)
    np.testing.assert_array_equal(w_a, w_b)
    entry = compile_cache.cache_dir() / first.key
    assert (entry / "main").stat().st_size > 10_000
    # Brian2 writes the clocks' start lines in set order, which differs between processes: the key does not
    a, b = (tmp_path / "a" / "main.cpp").read_text(), (tmp_path / "b" / "main.cpp").read_text()
    assert sorted(a.splitlines()) == sorted(b.splitlines())
    # a damaged entry (a truncated binary) is noticed and rebuilt, never run
    (entry / "main").write_bytes(b"\x7fELF truncated")
    third, counts_c, _ = _present(tmp_path, "c")
    assert not third.cached and third.key == first.key
    np.testing.assert_array_equal(counts_a, counts_c)
    assert compile_cache._cached_binary(entry) is not None  # stored again, whole


def test_compile_jobs_follow_the_environment(monkeypatch):
    monkeypatch.setenv("BIOSNN_COMPILE_JOBS", "3")
    assert compile_cache.compile_jobs() == 3
    monkeypatch.delenv("BIOSNN_COMPILE_JOBS")
    import os

    assert compile_cache.compile_jobs() == len(os.sched_getaffinity(0))

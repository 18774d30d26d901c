"""Monitors record inside their window only: Brian2's own monitor arrays never hold more than the window, on the
runtime backends chunk after chunk, and switching monitors on and off does not change the simulation."""

from __future__ import annotations

import numpy as np
import pytest

from bioSNN import data
from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.network import DiehlCookConfig, DiehlCookNetwork
from bioSNN.monitors import MonitorSpec

pytestmark = pytest.mark.brian2


@pytest.fixture(scope="module")
def digits():
    d = data.load("digits")
    return np.concatenate([d.x_train, d.x_test]).reshape(-1, 64)


def _net(digits, monitors, be):
    cfg = DiehlCookConfig(
        n_input=64, n_exc=10, w_sum=12.8, max_rate=255.0, t_present=100.0, t_rest=50.0, chunk=8, max_repeats=3, seed=4
    )
    return DiehlCookNetwork(cfg, digits, be, monitors=monitors)


def test_runtime_monitors_hold_no_more_than_their_window_while_recording(digits):
    # chunks of 8 slots = 1,200 ms; a 200 ms window from 300 ms, v of 3 neurons every 0.5 ms, and all spikes
    spec = MonitorSpec("exc", ("v",), (0, 1, 2), dt_ms=0.5, spikes=True, start_ms=300.0, keep_ms=200.0)
    held = []
    with backend(Backend("numpy")):
        net = _net(digits, (spec,), Backend("numpy"))
        state_mon, spike_mon = net.brian.monitors[spec]

        def after_chunk(done):  # Brian2's own arrays, as they are after each chunk
            held.append((len(state_mon.t), len(spike_mon.t)))

        p = net.present(np.arange(24), plastic=False, on_chunk=after_chunk, progress=False)
        rec = net.recordings[spec]
    assert len(held) >= 3  # the run went on well past the window
    bound = int(200.0 / 0.5)  # samples in the window: the stated bound
    assert held[0][0] == bound and all(n == 0 for n, _ in held[1:])  # later chunks record nothing at all
    assert rec.state["v"].shape == (3, bound) and rec.t[0] == pytest.approx(0.3) and rec.t[-1] < 0.5
    assert len(rec.spike_t) > 0 and rec.spike_t.min() >= 0.3 and rec.spike_t.max() < 0.5
    assert held[0][1] == len(rec.spike_t)
    # the same network without monitors: the same responses (switching monitors changes nothing else)
    with backend(Backend("numpy")):
        plain = _net(digits, (), Backend("numpy")).present(np.arange(24), plastic=False, progress=False)
    np.testing.assert_array_equal(p.counts, plain.counts)
    assert p.counts.sum() > 0


def test_a_standalone_window_that_no_chunk_could_record_is_refused(digits, tmp_path):
    spec = MonitorSpec("exc", ("v",), (0,), start_ms=1000.0, keep_ms=500.0)  # crosses the first chunk's end
    be = Backend("cpp_standalone", directory=str(tmp_path / "p"))
    with backend(be):
        net = _net(digits, (spec,), be)
        with pytest.raises(ValueError, match="start at 0 or end within the first chunk"):
            net.build(compile=False)


def test_a_window_must_have_a_length():
    with pytest.raises(ValueError, match="keep_ms > 0"):
        MonitorSpec("exc", ("v",), keep_ms=0.0)

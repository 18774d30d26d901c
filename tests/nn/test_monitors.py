"""The MonitorSpec / Recording API on the PyTorch SpikingNet: the membrane and spikes of the first sample,
step by step, inside the window, equal to the same neurons stepped by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bioSNN.models.mlp import mlp
from bioSNN.monitors import MonitorSpec

pytestmark = pytest.mark.torch


def test_a_spiking_net_records_membranes_and_spikes_of_its_first_sample():
    torch.manual_seed(0)
    net = mlp((1, 8, 8), 10, hidden=(32, 16), leak=0.9, threshold=1.0)
    x = torch.rand(3, 1, 8, 8) * 2
    specs = (
        MonitorSpec("act1", ("v",), (0, 5, 9), dt_ms=2.0, spikes=True, start_ms=4.0, keep_ms=20.0),
        MonitorSpec("act2", spikes=True, keep_ms=1e6),
    )
    out = net.snn(x, 30, monitors=specs, step_ms=1.0, record=True)
    r1, r2 = out.recordings[specs[0]], out.recordings[specs[1]]
    # by hand: act1 driven by fc1 of the first sample (direct input: the same current every step)
    fc1, act1 = net.nodes[1], net.nodes[2]
    with torch.no_grad():
        current, state, us, fired = fc1(x[:1].flatten(1)), None, [], []
        for _ in range(30):
            o, state = act1(current, state)
            us.append(state.u[0].clone())
            fired.append(o[0].clone())
    steps = np.arange(4, 24, 2)  # every 2 ms inside [4, 24) ms
    np.testing.assert_allclose(r1.t, steps * 1e-3)
    np.testing.assert_allclose(r1.state["v"], torch.stack(us)[steps][:, [0, 5, 9]].T.double().numpy(), rtol=1e-6)
    want = [(t, i) for t in range(4, 24) for i in torch.nonzero(fired[t]).flatten().tolist()]
    assert len(want) > 0 and sorted(zip(np.rint(r1.spike_t * 1e3).astype(int).tolist(), r1.spike_i.tolist())) == want
    # act2 over the whole run: the spikes record=True returns for sample 0
    rec2 = out.spikes["act2"][:, 0]
    assert len(r2.spike_t) == int(rec2.sum()) > 0 and r2.state == {}
    with pytest.raises(ValueError, match="unknown activation"):
        net.snn(x, 2, monitors=(MonitorSpec("exc", ("v",)),))

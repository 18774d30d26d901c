"""`biosnn inspect`: a saved network simulated again on a few test items with monitors on every population, in
either engine; bad requests are refused before any folder is made."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bioSNN import bundles
from bioSNN.brian import bundle as brian_bundle
from bioSNN.brian.network import DiehlCookConfig
from bioSNN.cli import main
from bioSNN.config import ConfigError
from bioSNN.inspect import inspect
from bioSNN.models import build_spiking
from bioSNN.nn.bundle import run_settings, to_bundle


@pytest.fixture(scope="module")
def stdp_bundle(tmp_path_factory):
    cfg = DiehlCookConfig(n_input=64, n_exc=12, w_sum=12.8, max_rate=255.0, t_present=100.0, t_rest=50.0, chunk=20)
    rng = np.random.default_rng(1)
    w = rng.uniform(0, 0.3, (64, 12))
    w *= 12.8 / w.sum(0)
    theta = rng.uniform(14, 20, 12)
    path = tmp_path_factory.mktemp("stdp") / "network.npz"
    bundles.write(
        path,
        brian_bundle.to_bundle(
            {"": cfg}, {"": {"w": w, "alive": w > 0, "theta": theta}}, provenance=bundles.provenance("digits", 0)
        ),
    )
    return path


@pytest.mark.torch
@pytest.mark.brian2
@pytest.mark.parametrize("engine", ["torch", "brian2"])
def test_inspect_a_stdp_network(stdp_bundle, tmp_path, engine):
    out = inspect(stdp_bundle, engine, "exc", ("v", "theta", "ge"), (0, 4), items=2, out=tmp_path / "i")
    summary = json.loads((out / "inspect.json").read_text())
    assert (out / "inspect.png").stat().st_size > 10_000
    z = np.load(out / "recording.npz", allow_pickle=False)
    v, t = z["exc/v"], z["exc/t"]
    assert v.shape == (2, len(t)) and len(t) > 400  # every step (0.5 ms) of at least two slots
    assert -0.1 <= v.min() and v.max() < 0.0 and v.std() > 1e-3  # volts (E_inh = -100 mV), and v moved
    np.testing.assert_allclose(z["exc/theta"], np.broadcast_to(z["exc/theta"][:, :1], z["exc/theta"].shape))
    # the raster holds every excitatory spike, the per-item counts only the accepted presentations
    assert len(z["exc/spike_t"]) >= sum(summary["exc_spikes_per_item"]) > 0
    assert summary["rates_hz"]["input"] > 10 and summary["engine"] == engine


@pytest.mark.torch
def test_inspect_a_spiking_net_bundle(tmp_path):
    torch.manual_seed(0)
    net = build_spiking("mlp", (1, 8, 8), 10, hidden=16)
    path = tmp_path / "model.npz"
    bundles.write(
        path,
        to_bundle(
            net, {"model": "mlp", "hidden": 16}, run_settings(6, "direct"), provenance=bundles.provenance("digits", 0)
        ),
    )
    rc = main(
        ["inspect", str(path), "--population", "act1", "--neurons", "0,3", "--items", "2", "--out", str(tmp_path / "i")]
    )
    assert rc == 0
    summary = json.loads((tmp_path / "i" / "inspect.json").read_text())
    z = np.load(tmp_path / "i" / "recording.npz", allow_pickle=False)
    assert z["act1/v"].shape == (2, 12)  # 2 items x 6 steps
    assert len(summary["predictions"]) == 2 and set(summary["spikes_per_neuron_per_step"]) == {"act1"}


def test_bad_requests_are_refused_before_any_folder(stdp_bundle, tmp_path):
    out = tmp_path / "never"
    for kwargs, message in [
        ({"population": "exc", "variables": ("w",)}, "has no"),
        ({"population": "hidden"}, "not one of"),
        ({"engine": "nest"}, "torch or brian2"),
        ({"items": 0}, "at least 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            inspect(stdp_bundle, out=out, **kwargs)
    with pytest.raises(ConfigError, match="no such run folder or bundle"):
        inspect(tmp_path / "missing", out=out)
    assert not out.exists()

"""The memristive device model: levels, mapping, noise, faults, and the straight-through gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bioSNN import device
from bioSNN.device import DeviceConfig


@pytest.mark.parametrize("mapping", ["unipolar", "differential"])
@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_quantized_values_are_exactly_the_levels(bits, mapping):
    cfg = DeviceConfig.from_bits(bits, mapping=mapping, w_max=0.5)
    lo = -0.6 if mapping == "differential" else 0.0
    w = np.random.default_rng(bits).uniform(lo, 0.6, 5000)
    q = device.quantize(w, cfg)
    levels = np.linspace(0, 0.5, 2**bits)
    allowed = np.concatenate([-levels, levels]) if mapping == "differential" else levels
    assert np.isin(np.round(q, 12), np.round(allowed, 12)).all()
    # every level is reached, the end points included
    assert set(np.round(np.abs(q), 12)) == set(np.round(levels, 12))
    # and the conductances are the device's levels
    g = device.to_conductance(w, cfg)
    assert g.shape == (cfg.devices_per_synapse, 5000)
    assert np.isin(g, device.level_conductances(cfg)).all()


def test_proportional_mapping_has_no_zero_state():
    # 2 bits, g_min = g_max / 4: weights w_max * k / 4, k = 1..4; a weight 0 still reads as the lowest state
    cfg = DeviceConfig.from_bits(2, mapping="proportional", w_max=0.8, g_min=2.5e-5, g_max=1e-4)
    q = device.quantize(np.array([0.0, 0.05, 0.11, 0.35, 0.52, 0.79, 3.0]), cfg)
    np.testing.assert_allclose(q, [0.2, 0.2, 0.2, 0.4, 0.6, 0.8, 0.8])
    g = device.to_conductance(np.array([0.4]), cfg)
    assert g.shape == (1, 1) and g[0, 0] == pytest.approx(5e-5)  # G = g_max * w / w_max, no offset
    np.testing.assert_allclose(device.from_conductance(device.level_conductances(cfg)[None], cfg), [0.2, 0.4, 0.6, 0.8])
    t = torch.tensor([0.05, 0.35], requires_grad=True)
    qt = device.quantize(t, cfg)
    qt.sum().backward()
    np.testing.assert_allclose(qt.detach().numpy(), [0.2, 0.4], rtol=1e-6)
    assert t.grad.tolist() == [1.0, 1.0]
    assert DeviceConfig.proportional(2, w_max=0.8) == cfg  # the shorthand: g_min = g_max / 2**bits
    assert DeviceConfig.proportional(3, w_max=1.0, g_max=2e-4).g_min == pytest.approx(2.5e-5)


def test_nearest_level_and_clipping():
    cfg = DeviceConfig(levels=5, w_max=1.0)  # levels 0, .25, .5, .75, 1
    q = device.quantize(np.array([-0.3, 0.1, 0.13, 0.6, 0.9, 7.0]), cfg)
    np.testing.assert_allclose(q, [0.0, 0.0, 0.25, 0.5, 1.0, 1.0])


def test_idempotent_and_monotonic():
    for cfg in [DeviceConfig(levels=8), DeviceConfig(levels=6, mapping="differential", nonlinearity=3.0)]:
        w = np.sort(np.random.default_rng(1).uniform(-1.2, 1.2, 2000))
        q = device.quantize(w, cfg)
        np.testing.assert_array_equal(device.quantize(q, cfg), q)
        assert np.all(np.diff(q) >= 0)


def test_nonlinear_levels_saturate():
    lin = device.level_conductances(DeviceConfig(levels=8))
    nl = device.level_conductances(DeviceConfig(levels=8, nonlinearity=4.0))
    assert nl[0] == lin[0] and nl[-1] == lin[-1]
    steps = np.diff(nl)
    assert np.all(steps > 0) and np.all(np.diff(steps) < 0)  # step size shrinks as the device saturates
    np.testing.assert_allclose(np.diff(lin), np.diff(lin)[0])


def test_round_trip_through_conductance():
    cfg = DeviceConfig(levels=16, mapping="differential", w_max=2.0, g_min=2e-6, g_max=5e-5)
    w = device.quantize(np.random.default_rng(2).uniform(-2, 2, 100), cfg)
    g = device.to_conductance(w, cfg)
    assert g.min() >= cfg.g_min and g.max() <= cfg.g_max
    assert ((g[0] == cfg.g_min) | (g[1] == cfg.g_min)).all()  # one device of each pair stays off
    np.testing.assert_allclose(device.from_conductance(g, cfg), w, atol=1e-12)


def test_programming_noise_statistics():
    cfg = DeviceConfig(levels=4, noise=0.05, g_min=2e-5, g_max=1e-4, seed=3)
    w = np.full(200_000, 1 / 3)
    g0 = device.to_conductance(w, cfg)
    g = device.to_conductance(w, cfg, programmed=True)
    err = (g - g0).ravel()
    sigma = cfg.noise * (cfg.g_max - cfg.g_min)
    assert abs(err.mean()) < 4 * sigma / np.sqrt(err.size)
    assert err.std() == pytest.approx(sigma, rel=0.01)
    # same seed, same draw; another seed, another draw
    np.testing.assert_array_equal(g, device.to_conductance(w, cfg, programmed=True))
    assert not np.array_equal(
        g, device.to_conductance(w, DeviceConfig(**{**cfg.to_dict(), "seed": 4}), programmed=True)
    )


def test_stuck_at_fault_rates():
    cfg = DeviceConfig(levels=8, stuck_off=0.1, stuck_on=0.05, seed=0)
    w = np.full(100_000, 0.5)
    g = device.to_conductance(w, cfg, programmed=True)[0]
    n = w.size
    assert (g == cfg.g_min).mean() == pytest.approx(0.1, abs=4 * np.sqrt(0.1 * 0.9 / n))
    assert (g == cfg.g_max).mean() == pytest.approx(0.05, abs=4 * np.sqrt(0.05 * 0.95 / n))
    nominal = device.to_conductance(np.array([0.5]), cfg)[0, 0]
    assert ((g == cfg.g_min) | (g == cfg.g_max) | (g == nominal)).all()


def test_torch_matches_numpy_and_gradient_passes_straight_through():
    cfg = DeviceConfig.from_bits(3, mapping="differential", w_max=1.0)
    w_np = np.random.default_rng(5).uniform(-1, 1, 1000)
    w = torch.tensor(w_np, dtype=torch.float64, requires_grad=True)
    q = device.quantize(w, cfg)
    np.testing.assert_allclose(q.detach().numpy(), device.quantize(w_np, cfg), atol=1e-12)
    (q * torch.arange(1000.0, dtype=torch.float64)).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.arange(1000.0))
    assert q.dtype == w.dtype


def test_program_on_tensors_applies_faults():
    cfg = DeviceConfig(levels=4, stuck_off=1.0)  # every device stuck off: all weights read back as 0
    out = device.program(torch.rand(50, dtype=torch.float32), cfg)
    assert out.dtype == torch.float32 and torch.all(out == 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"levels": 1}, "levels"),
        ({"g_min": 1e-4, "g_max": 1e-5}, "g_min < g_max"),
        ({"mapping": "bipolar"}, "mapping"),
        ({"w_max": 0}, "w_max"),
        ({"noise": -0.1}, "noise"),
        ({"stuck_off": 0.7, "stuck_on": 0.5}, "fault rates"),
    ],
)
def test_invalid_configs_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeviceConfig(**kwargs)


def test_from_conductance_checks_layout():
    with pytest.raises(ValueError, match="leading axis"):
        device.from_conductance(np.zeros((1, 3)), DeviceConfig(mapping="differential"))

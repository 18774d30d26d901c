"""The frozen Diehl & Cook network in PyTorch against the Brian2 engine: fed the same input spikes (recorded by
one engine, replayed in the other), both give the same excitatory spikes, repeats and counts; streams are
independent runs from the initial state; a bundle alone rebuilds the network."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bioSNN import bundles, data
from bioSNN.brian import bundle as brian_bundle
from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.network import DiehlCookConfig, DiehlCookNetwork
from bioSNN.models.diehl_cook import FrozenDiehlCook
from bioSNN.monitors import MonitorSpec

pytestmark = [pytest.mark.torch, pytest.mark.brian2]


@pytest.fixture(scope="module")
def digits():
    d = data.load("digits")
    return np.concatenate([d.x_train, d.x_test]).reshape(-1, 64)


def _trained_looking(n_exc=20, theta_shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0, 0.3, (64, n_exc))
    w *= 12.8 / w.sum(0)  # normalised as STDP training leaves them
    return w, rng.uniform(18, 25, n_exc) + theta_shift


def _brian(cfg, x, w, theta, be, replay, n):
    with backend(be):
        net = DiehlCookNetwork(cfg, x, be, monitors=(MonitorSpec("exc", spikes=True, keep_ms=1e9),), replay=replay)
        net.w, net.state[""]["theta"] = w.copy(), theta.copy()
        p = net.present(np.arange(n), plastic=False, progress=False)
        rec = next(iter(net.recordings.values()))
    steps = np.rint(rec.spike_t / (cfg.dt * 1e-3)).astype(np.int64)
    return p, set(zip(steps.tolist(), rec.spike_i.tolist()))


@pytest.mark.parametrize(
    "name,theta_shift,n", [("cpp_standalone", 22.0, 5), ("numpy", 0.0, 5)], ids=["cpp_standalone_with_repeats", "numpy"]
)
def test_brian2_and_pytorch_give_the_same_excitatory_spikes_for_the_same_input_spikes(
    digits, tmp_path, name, theta_shift, n
):
    # short slots keep the Python-driven sides quick
    cfg = DiehlCookConfig(n_input=64, n_exc=20, w_sum=12.8, max_rate=255.0, t_present=100.0, t_rest=50.0, chunk=12 * n)
    w, theta = _trained_looking(theta_shift=theta_shift)
    torch_net = FrozenDiehlCook(cfg, w, theta)
    r = torch_net.present(digits, np.arange(n), generator=torch.Generator().manual_seed(1), record=True)
    be = Backend(name, directory=str(tmp_path / "p")) if name == "cpp_standalone" else Backend(name)
    p, brian_spikes = _brian(cfg, digits, w, theta, be, r.input_spikes[0], n)
    torch_spikes = set(zip(r.exc_spikes[0][0].tolist(), r.exc_spikes[0][1].tolist()))
    assert len(torch_spikes) > 20 and brian_spikes == torch_spikes  # every spike, at the same step
    np.testing.assert_array_equal(p.counts, r.counts)
    np.testing.assert_array_equal(p.repeats, r.repeats)
    if theta_shift:
        assert r.repeats.sum() > 0  # the repeat rule (raised input rate) was exercised


def test_streams_are_independent_runs_from_the_initial_state(digits):
    cfg = DiehlCookConfig(n_input=64, n_exc=10, w_sum=12.8, max_rate=255.0, t_present=100.0, t_rest=50.0)
    w, theta = _trained_looking(n_exc=10, seed=3)
    net = FrozenDiehlCook(cfg, w, theta)
    ids = np.arange(6)
    both = net.present(digits, ids, streams=2, generator=torch.Generator().manual_seed(0), record=True)
    assert both.counts.sum() > 0
    for s, part in enumerate((ids[:3], ids[3:])):
        alone = net.present(digits, part, input_spikes=[both.input_spikes[s]])
        np.testing.assert_array_equal(alone.counts, both.counts[part])


def test_a_bundle_alone_rebuilds_the_network(tmp_path, digits):
    cfg = DiehlCookConfig(n_input=64, n_exc=10, w_sum=12.8, max_rate=200.0, t_present=100.0, t_rest=0.0)
    w, theta = _trained_looking(n_exc=10, seed=5)
    path = bundles.write(
        tmp_path / "net.npz", brian_bundle.to_bundle({"": cfg}, {"": {"w": w, "alive": w > 0, "theta": theta}})
    )
    net = FrozenDiehlCook.from_bundle(bundles.read(path))
    assert net.cfg == cfg
    direct = FrozenDiehlCook(cfg, w, theta)
    a = net.present(digits, np.arange(3), generator=torch.Generator().manual_seed(2))
    b = direct.present(digits, np.arange(3), generator=torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(a.counts, b.counts)
    with pytest.raises(ValueError, match="uint8"):
        net.present(digits.astype(np.float32))


@pytest.mark.parametrize("t_rest", [50.0, 0.0], ids=["rest", "reset"])
def test_fused_and_tensor_kernels_give_the_same_spikes(digits, t_rest):
    # raised thresholds: the repeat rule runs; several streams of unequal length, one ending early
    cfg = DiehlCookConfig(n_input=64, n_exc=24, w_sum=12.8, max_rate=255.0, t_present=100.0, t_rest=t_rest)
    w, theta = _trained_looking(n_exc=24, theta_shift=10.0, seed=7)
    net = FrozenDiehlCook(cfg, w, theta)
    ids = np.arange(11)
    fused = net.present(digits, ids, streams=4, generator=torch.Generator().manual_seed(3), record=True, kernel="fused")
    tensor = net.present(digits, ids, streams=4, input_spikes=fused.input_spikes, record=True, kernel="tensor")
    assert fused.counts.sum() > 50 and fused.repeats.sum() > 0
    np.testing.assert_array_equal(fused.counts, tensor.counts)
    np.testing.assert_array_equal(fused.repeats, tensor.repeats)
    for (fs, fi), (ts, ti) in zip(fused.exc_spikes, tensor.exc_spikes):
        last = fs.max(initial=-1)  # the tensor kernel goes on simulating a stream that has ended
        assert set(zip(fs.tolist(), fi.tolist())) == {p for p in zip(ts.tolist(), ti.tolist()) if p[0] <= last}
    # the fused kernel's own draws depend on the seed only, not on its threads
    torch.set_num_threads(1)
    try:
        again = net.present(digits, ids, streams=4, generator=torch.Generator().manual_seed(3), kernel="fused")
    finally:
        torch.set_num_threads(2)
    np.testing.assert_array_equal(again.counts, fused.counts)


def test_loading_the_fused_kernel_keeps_denormals_in_the_process():
    from bioSNN.models import _kernel

    assert _kernel.load() is not None  # a C compiler is part of the set-up (Brian2 needs one too)
    tiny = np.array([1e-310])
    assert (tiny * 1.0)[0] > 0 and float(torch.tensor(1e-310, dtype=torch.float64) * 1.0) > 0


def test_one_monitor_spec_records_the_same_in_both_engines(digits):
    cfg = DiehlCookConfig(n_input=64, n_exc=10, w_sum=12.8, max_rate=255.0, t_present=100.0, t_rest=50.0, chunk=12)
    w, theta = _trained_looking(n_exc=10, seed=2)
    specs = (
        MonitorSpec("exc", ("v", "ge", "gi", "theta"), (0, 3, 7), dt_ms=1.0, spikes=True, start_ms=50.0, keep_ms=400.0),
        MonitorSpec("inh", ("v",), (0, 1), dt_ms=0.5, spikes=True, start_ms=0.0, keep_ms=600.0),
        MonitorSpec("input", spikes=True, start_ms=100.0, keep_ms=200.0),
    )
    net = FrozenDiehlCook(cfg, w, theta)
    r = net.present(digits, np.arange(4), generator=torch.Generator().manual_seed(5), record=True, monitors=specs)
    with backend(Backend("numpy")):
        bn = DiehlCookNetwork(cfg, digits, Backend("numpy"), monitors=specs, replay=r.input_spikes[0])
        bn.w, bn.theta = w.copy(), theta.copy()
        bn.present(np.arange(4), plastic=False, progress=False)
        brian = bn.recordings
    for spec in specs:
        a, b = r.recordings[spec], brian[spec]
        np.testing.assert_allclose(a.t, b.t, rtol=0, atol=1e-12)
        assert set(a.state) == set(b.state) == set(spec.variables)
        for var in spec.variables:
            assert a.state[var].shape == b.state[var].shape == (len(spec.indices), len(a.t))
            np.testing.assert_allclose(a.state[var], b.state[var], rtol=1e-9, atol=1e-15)
        assert len(a.spike_t) > 0
        assert sorted(zip(np.rint(a.spike_t / 5e-4).astype(int).tolist(), a.spike_i.tolist())) == sorted(
            zip(np.rint(b.spike_t / 5e-4).astype(int).tolist(), b.spike_i.tolist())
        )
    exc = r.recordings[specs[0]]
    assert exc.t[0] == pytest.approx(0.05) and exc.t[-1] < 0.45 and exc.state["v"].std() > 1e-4  # v moved
    with pytest.raises(ValueError, match="no variable"):
        net.present(digits, np.arange(1), monitors=(MonitorSpec("inh", ("theta",)),))


def _coupled(digits, n_exc=(12, 10), seed=11, theta_shift=0.0):
    """An image ensemble (the digits) and a second one on generated 'audio' features, joined both ways."""
    rng = np.random.default_rng(seed)
    audio = rng.integers(0, 256, (len(digits), 40)).astype(np.uint8)
    audio[audio < 150] = 0  # sparse, like the ON/OFF coded spectrograms
    common = dict(max_rate=255.0, t_present=100.0, t_rest=50.0, chunk=60)
    cfgs = {
        "image": DiehlCookConfig(n_input=64, n_exc=n_exc[0], w_sum=12.8, **common),
        "audio": DiehlCookConfig(n_input=40, n_exc=n_exc[1], w_sum=9.0, **common),
    }
    ens = {}
    for (name, c), stim in zip(cfgs.items(), (digits, audio)):
        w = rng.uniform(0, 0.3, (c.n_input, c.n_exc))
        w *= c.w_sum / w.sum(0)
        ens[name] = (c, w, rng.uniform(18, 25, c.n_exc) + theta_shift)
    cross = {
        "image_to_audio": rng.uniform(0, 1.5, (n_exc[0], n_exc[1])),
        "audio_to_image": rng.uniform(0, 1.5, (n_exc[1], n_exc[0])),
    }
    return ens, cross, {"image": digits, "audio": audio}


def _brian_coupled(ens, cross, gain, stimuli, replay, n, be, chunk):
    from bioSNN.brian.network import CrossConfig, EnsembleNetwork

    specs = tuple(MonitorSpec(f"{name}_exc", spikes=True, keep_ms=1e9) for name in ens)
    with backend(be):
        # Brian2 simulates every slot of a chunk: make it as long as the torch run took (`chunk` slots)
        net = EnsembleNetwork(
            {k: (dataclasses.replace(c, chunk=chunk), stimuli[k]) for k, (c, _, _) in ens.items()},
            be,
            monitors=specs,
            cross=CrossConfig(gain=gain),
            replay=replay,
        )
        for k, (_, w, theta) in ens.items():
            net.state[k]["w"], net.state[k]["theta"] = w.copy(), theta.copy()
        for key, w in cross.items():
            net.cross_state[key]["w"] = w.copy()
        p = net.present({k: np.arange(n) for k in ens}, plastic=False, progress=False)
        spikes = {}
        for spec, rec in net.recordings.items():
            steps = np.rint(rec.spike_t / 5e-4).astype(np.int64)
            spikes[spec.population.split("_")[0]] = set(zip(steps.tolist(), rec.spike_i.tolist()))
    return p, spikes


# the compiled case joins the slow set (CI time): the numpy case checks the same coupling, and the single-ensemble
# tests compare the engines on cpp_standalone
@pytest.mark.parametrize("name,gain", [("numpy", 1.0), pytest.param("cpp_standalone", 0.6, marks=pytest.mark.slow)])
def test_coupled_ensembles_spike_as_in_brian2(digits, tmp_path, name, gain):
    """The multimodal network: two ensembles joined by cross-modal projections, replayed input: every excitatory
    spike of both ensembles equal to Brian2's."""
    ens, cross, stimuli = _coupled(digits, theta_shift=3.0)
    net = FrozenDiehlCook.coupled(ens, cross, cross_gain=gain)
    n = 4
    ids = {k: np.arange(n) for k in ens}
    r = net.present(stimuli, ids, generator=torch.Generator().manual_seed(4), record=True)
    assert r.repeats.sum() > 0  # the shared repeat rule ran
    be = Backend(name, directory=str(tmp_path / "p")) if name == "cpp_standalone" else Backend(name)
    p, brian = _brian_coupled(ens, cross, gain, stimuli, {k: r.input_spikes[k][0] for k in ens}, n, be, r.slots + 1)
    for k in ens:
        mine = set(zip(r.exc_spikes[k][0][0].tolist(), r.exc_spikes[k][0][1].tolist()))
        assert len(mine) > 10 and mine == brian[k]
        np.testing.assert_array_equal(p.counts[k], r.counts[k])
    np.testing.assert_array_equal(p.repeats, r.repeats)
    tensor = net.present(stimuli, ids, input_spikes=r.input_spikes, kernel="tensor")
    for k in ens:
        np.testing.assert_array_equal(tensor.counts[k], r.counts[k])
    # the cross projections matter: without them the same input gives other spikes
    off = FrozenDiehlCook.coupled(ens, cross, cross_gain=0.0).present(stimuli, ids, input_spikes=r.input_spikes)
    assert any(not np.array_equal(off.counts[k], r.counts[k]) for k in ens)


def test_coupled_fused_and_tensor_kernels_agree_over_streams_and_threads(digits):
    ens, cross, stimuli = _coupled(digits, n_exc=(16, 14), seed=3, theta_shift=5.0)
    net = FrozenDiehlCook.coupled(ens, cross, cross_gain=0.7)
    ids = {"image": np.arange(5), "audio": np.arange(20, 25)}
    fused = net.present(
        stimuli, ids, streams=2, generator=torch.Generator().manual_seed(1), record=True, kernel="fused", threads=2
    )
    assert fused.repeats.sum() > 0 and all(fused.counts[k].sum() > 20 for k in ens)
    tensor = net.present(stimuli, ids, streams=2, input_spikes=fused.input_spikes, record=True, kernel="tensor")
    one = net.present(stimuli, ids, streams=2, generator=torch.Generator().manual_seed(1), kernel="fused", threads=1)
    for k in ens:
        np.testing.assert_array_equal(fused.counts[k], tensor.counts[k])
        np.testing.assert_array_equal(fused.counts[k], one.counts[k])
    np.testing.assert_array_equal(fused.repeats, tensor.repeats)


def test_a_multimodal_bundle_alone_rebuilds_the_coupled_network(tmp_path, digits):
    from bioSNN.brian.network import CrossConfig

    ens, cross, stimuli = _coupled(digits)
    path = bundles.write(
        tmp_path / "mm.npz",
        brian_bundle.to_bundle(
            {k: c for k, (c, _, _) in ens.items()},
            {k: {"w": w, "alive": w > 0, "theta": th} for k, (_, w, th) in ens.items()},
            {k: {"w": w, "alive": w > 0} for k, w in cross.items()},
            CrossConfig(gain=0.5),
        ),
    )
    net = FrozenDiehlCook.from_bundle(bundles.read(path))
    assert net.names == ["image", "audio"] and net.cross_gain == 0.5
    direct = FrozenDiehlCook.coupled(ens, cross, cross_gain=0.5)
    ids = {k: np.arange(4) for k in ens}
    a = net.present(stimuli, ids, generator=torch.Generator().manual_seed(2))
    b = direct.present(stimuli, ids, generator=torch.Generator().manual_seed(2))
    for k in ens:
        np.testing.assert_array_equal(a.counts[k], b.counts[k])
    with pytest.raises(ValueError, match="per ensemble"):
        net.present(stimuli["image"])
    with pytest.raises(ValueError, match="image_to_audio"):
        FrozenDiehlCook.coupled(ens, {"image_to_audio": np.ones((3, 3))})


def test_a_long_presentation_records_only_its_window(digits):
    """Memory bounded while recording: 24 items (>= 3.6 s simulated) with a 100 ms window hold the window's samples
    and spikes only, however long the run."""
    cfg = DiehlCookConfig(n_input=64, n_exc=10, w_sum=12.8, max_rate=255.0, t_present=100.0, t_rest=50.0)
    w, theta = _trained_looking(n_exc=10, seed=4)
    net = FrozenDiehlCook(cfg, w, theta)
    spec = MonitorSpec("exc", ("v", "ge"), tuple(range(10)), dt_ms=0.5, spikes=True, start_ms=2000.0, keep_ms=100.0)
    inp = MonitorSpec("input", spikes=True, start_ms=2000.0, keep_ms=100.0)
    r = net.present(digits, np.arange(24), generator=torch.Generator().manual_seed(0), monitors=(spec, inp))
    assert r.slots >= 24
    rec = r.recordings[spec]
    assert rec.state["v"].shape == (10, 200) and rec.t[0] == pytest.approx(2.0) and rec.t[-1] < 2.1
    spikes = r.recordings[inp].spike_t
    assert len(spikes) > 0 and spikes.min() >= 2.0 and spikes.max() < 2.1

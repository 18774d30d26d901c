"""Cross-modal synapses and the two-ensemble network."""

from __future__ import annotations

from pathlib import Path

import brian2 as b2
import numpy as np
import pytest
from brian2 import Network, NeuronGroup, Synapses, ms

from bioSNN.brian.backend import Backend, backend
from bioSNN.brian.network import CrossConfig, DiehlCookConfig, EnsembleNetwork
from bioSNN.brian.stdp import PowerLawSTDP

pytestmark = pytest.mark.brian2


def test_cross_weights_grow_only_with_correlated_activity_and_stay_non_negative():
    """Pre cells 0, 1 fire 2 ms before every spike of post cell 0; pre cells 2, 3 fire far from any post spike;
    post cell 1 never fires. Power-law STDP: 0→0, 1→0 potentiate, 2→0, 3→0 depress towards (not below) 0,
    nothing onto post cell 1 changes."""
    cross = CrossConfig(gain=1.0, stdp=PowerLawSTDP(eta=0.05, x_offset=0.4, trace="add"))
    sm = cross.synapse_model()
    post_times = np.arange(20.0, 1000.0, 40.0)
    pre_i = np.concatenate([np.zeros(len(post_times)), np.ones(len(post_times)), [2, 3]]).astype(int)
    pre_t = np.concatenate([post_times - 2, post_times - 2, [1.0, 3.0]])
    with backend(Backend("numpy")):
        b2.defaultclock.dt = 0.5 * ms
        pre = b2.SpikeGeneratorGroup(4, pre_i, pre_t * ms)
        post = NeuronGroup(
            2, "ge : 1", threshold="i == 0 and (" + " or ".join(f"abs(t - {t}*ms) < 0.25*dt" for t in post_times) + ")"
        )
        syn = Synapses(pre, post, sm.model, on_pre=sm.on_pre, on_post=sm.on_post, namespace=sm.namespace)
        syn.connect()
        syn.w, syn.alive, syn.learning, syn.eta_scale, syn.cross_gain = 0.2, 1.0, 1.0, 1.0, 1.0
        Network(pre, post, syn).run(1000 * ms, namespace={})
        w = np.asarray(syn.w[:]).reshape(4, 2)
    assert w[0, 0] > 0.5 and w[1, 0] > 0.5  # correlated: potentiated
    assert w[2, 0] == 0.0 and w[3, 0] == 0.0  # uncorrelated: depressed, clipped at 0
    np.testing.assert_array_equal(w[:, 1], 0.2)  # no postsynaptic spikes: no change
    assert (w >= 0).all()


def _tiny(seed=0):
    rng = np.random.default_rng(seed)
    # short slots keep the numpy runtime fast: 100 ms presentation + 50 ms rest
    cfg = DiehlCookConfig(
        n_input=16, n_exc=6, w_sum=4.0, max_rate=255.0, chunk=15, seed=seed, t_present=100.0, t_rest=50.0, max_repeats=2
    )
    a = rng.integers(0, 256, (6, 16)).astype(np.uint8)
    b = rng.integers(0, 256, (6, 16)).astype(np.uint8)
    return cfg, a, b


def test_gain_zero_reproduces_two_independent_ensembles_exactly():
    cfg, a, b = _tiny()
    ids = {"image": np.arange(6), "audio": np.arange(6)[::-1].copy()}
    out = {}
    for label, cross in (("none", None), ("gain0", CrossConfig(gain=0.0, w_init_high=0.5))):
        with backend(Backend("numpy")):
            net = EnsembleNetwork({"image": (cfg, a), "audio": (cfg, b)}, Backend("numpy"), cross=cross)
            p = net.present(ids, plastic=True, progress=False)
            out[label] = (p.counts, {n: net.state[n]["w"].copy() for n in net.names}, net.cross_state)
    for n in ("image", "audio"):
        np.testing.assert_array_equal(out["none"][0][n], out["gain0"][0][n])
        np.testing.assert_array_equal(out["none"][1][n], out["gain0"][1][n])
        assert out["none"][0][n].sum() > 0
    assert out["none"][2] == {} and set(out["gain0"][2]) == {"image_to_audio", "audio_to_image"}


def test_cross_synapses_excite_the_other_ensemble():
    cfg, a, b = _tiny(1)
    silent = np.zeros_like(b)  # the audio ensemble gets no input at all ...
    ids = {"image": np.arange(6), "audio": np.arange(6)}
    spikes = {}
    for gain in (0.0, 40.0):
        with backend(Backend("numpy")):
            cross = CrossConfig(gain=gain, w_init_low=0.5, w_init_high=0.5)
            net = EnsembleNetwork({"image": (cfg, a), "audio": (cfg, silent)}, Backend("numpy"), cross=cross)
            spikes[gain] = net.present(ids, plastic=False, progress=False).counts["audio"].sum()
    assert spikes[0.0] == 0 and spikes[40.0] > 0  # ... so its spikes can only come through the cross synapses


@pytest.mark.parametrize("be", ["numpy", "cpp_standalone"])
def test_cross_gain_changes_at_run_time_without_a_rebuild(be, tmp_path):
    """One network built with gain 40: switching ``cross_gain`` to 0 between runs silences the cross drive
    (the input-less audio ensemble stops firing) and switching back restores it; on cpp_standalone the same
    compiled binary takes the value as a run argument."""
    cfg, a, b = _tiny(1)
    ids = {"image": np.arange(6), "audio": np.arange(6)}
    directory = str(tmp_path / "project") if be == "cpp_standalone" else None
    with backend(Backend(be, directory=directory)) as bk:
        cross = CrossConfig(gain=40.0, w_init_low=0.5, w_init_high=0.5)
        net = EnsembleNetwork({"image": (cfg, a), "audio": (cfg, np.zeros_like(b))}, bk, cross=cross)
        spikes, binaries = [], []
        for gain in (40.0, 0.0, 40.0):
            net.cross_gain = gain
            p = net.present(ids, plastic=False, progress=False)
            spikes.append((p.counts["audio"].sum(), p.counts["image"].sum()))
            if be == "cpp_standalone":  # the compiled program's identity: a rebuild would write a new one
                st = (Path(directory) / "main").stat()
                binaries.append((st.st_ino, st.st_mtime_ns))
        net.cross_gain = -1.0
        with pytest.raises(ValueError, match="cross_gain"):
            net.present(ids, plastic=False, progress=False)
    assert spikes[0][0] > 0 and spikes[1][0] == 0 and spikes[2][0] > 0, spikes
    assert all(s[1] > 0 for s in spikes)  # the image ensemble, driven by its input, fires throughout
    if be == "cpp_standalone":  # built once, before the first run; the later gains reuse that binary
        assert len(binaries) == 3 and len(set(binaries)) == 1, binaries


def test_bad_ensembles_are_named():
    cfg, a, b = _tiny()
    with pytest.raises(ValueError, match="stimuli must be"):
        EnsembleNetwork({"image": (cfg, a[:, :5])}, Backend("numpy"))
    with pytest.raises(ValueError, match="exactly two"):
        EnsembleNetwork({"image": (cfg, a)}, Backend("numpy"), cross=CrossConfig())
    with pytest.raises(ValueError, match="gain"):
        CrossConfig(gain=-1.0)

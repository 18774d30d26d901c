"""The compression experiment driver on the embedded digits: pruning and quantization during training end in
a bundle whose weights sit on device levels, and a finished run continues from its checkpoint."""

from __future__ import annotations

import dataclasses
import json
import logging

import brian2  # noqa: F401  (a hard dependency: a broken install must fail, not skip)
import numpy as np
import pytest

from bioSNN import bundles, device
from bioSNN.brian.training import residual_key
from bioSNN.config import apply_overrides
from bioSNN.experiments import compression as exp

pytestmark = pytest.mark.brian2


def test_pruned_quantized_variant_and_resume(tmp_path, isolated_cache, caplog):
    caplog.set_level(logging.INFO, logger="bioSNN")
    cfg = apply_overrides(
        exp.Config(),
        {
            "dataset": "digits",
            "n_train": 400,
            "n_label": 400,
            "n_test": 0,
            "variants": ("pruned+q2",),
            "interval": 100,
            "start": 100,
            "curve_block": 100,
            "workers": 1,
            "prune_threshold": 0.02,
            "network": {"n_input": 64, "n_exc": 10, "w_sum": 12.8, "max_rate": 255.0, "chunk": 100, "t_rest": 0.0},
        },
    )
    out = tmp_path / "v"
    r = exp.train_variant(cfg, "pruned+q2", out)
    # a line per phase: compiling, training progress, labelling and testing
    said = caplog.text
    assert "Brian2 project brian_project: compiling with" in said and "compiled in" in said
    assert "pruned+q2: epoch 1/1, 400 of 400 images" in said
    assert "pruned+q2: labelling on 400 and testing on 450 images (torch engine)" in said
    assert 0.2 < r["fraction_pruned"] < 1 and r["bits_per_synapse"] == 2 and r["energy_vs_full"] < 1
    conf = np.array(r["confusion"])
    assert conf.shape == (10, 10) and conf.sum() == 450  # every test digit once
    assert r["accuracy"] == pytest.approx(np.trace(conf) / 450) and r["accuracy"] > 0.2  # chance is 0.1
    b = bundles.read(out / "network.npz")
    w, alive = b.arrays["input_exc.w"], b.arrays["input_exc.alive"]
    assert (w[~alive] == 0).all() and alive.sum() == r["synapses_kept"]
    dev = device.DeviceConfig(**b.device)
    levels = np.ravel(device.from_conductance(device.level_conductances(dev)[None], dev))
    gain = b.arrays["input_exc.column_gain"]  # per-neuron levels (default): neuron j's weights = gain[j] x level
    assert dev.levels == 4 and dev.mapping == "proportional" and gain.shape == (10,) and w.shape == (10, 64)
    assert np.isin(np.round(w / gain[:, None], 9)[alive], np.round(levels, 9)).all()
    np.testing.assert_allclose(w.sum(1)[alive.any(1)], 12.8)  # each neuron rescaled to the normalisation sum
    assert b.arrays["exc.assignment"].shape == (10,)

    # a finished result is reused; a run resumed with more epochs continues from the checkpoint instead of
    # starting over, and keeps the shorter run's result beside its own
    assert exp.train_variant(cfg, "pruned+q2", out)["accuracy"] == r["accuracy"]
    assert r["epochs"] == 1 and r["images_seen"] == 400
    longer = dataclasses.replace(cfg, epochs=2)
    caplog.clear()
    r2 = exp.train_variant(longer, "pruned+q2", out)
    assert "binary reused from the compile cache" in caplog.text  # the same network: not compiled again
    progress = bundles.read(out / "checkpoint.npz").extra["progress"]
    assert progress["epoch"] == 2 and progress["seen"] == 800
    assert r2["epochs"] == 2 and r2["images_seen"] == 800 and r2["synapses_kept"] <= r["synapses_kept"]
    assert json.loads((out / "result_epochs1.json").read_text()) == r


def test_error_feedback_keeps_its_remainder_in_the_checkpoint_only(tmp_path, isolated_cache):
    cfg = apply_overrides(
        exp.Config(),
        {
            "dataset": "digits",
            "n_train": 200,
            "n_label": 200,
            "n_test": 100,
            "variants": ("q2",),
            "interval": 50,
            "start": 50,
            "curve_block": 100,
            "workers": 1,
            "error_feedback": True,
            "network": {"n_input": 64, "n_exc": 8, "w_sum": 12.8, "max_rate": 255.0, "chunk": 50, "t_rest": 0.0},
        },
    )
    out = tmp_path / "v"
    exp.train_variant(cfg, "q2", out)
    ck, net = bundles.read(out / "checkpoint.npz"), bundles.read(out / "network.npz")
    r = ck.arrays[residual_key("")]
    gain = net.arrays["input_exc.column_gain"]
    assert r.shape == (8, 64) and np.abs(r).max() > 0  # something was carried (the weights' layout) ...
    # ... and bounded: half a level spacing (m/3 at 2 bits with a zero state) of rounding plus the column's
    # rescaling to the normalisation sum (measured: at most 1.03 spacings here)
    assert (np.abs(r) <= 2 * gain[:, None] / 3).all()
    assert residual_key("") not in net.arrays  # the deployed network is weights on levels, nothing else
    w = net.arrays["input_exc.w"]
    assert len(np.unique(np.round(w / gain[:, None], 9))) <= 4


def test_unknown_variant_is_named():
    with pytest.raises(ValueError, match="unknown variant 'q9x'"):
        exp.compression_for("q9x", exp.Config())


def test_a_bad_annealing_target_is_refused_before_any_work():
    with pytest.raises(ValueError, match="eta_end"):
        exp.run(dataclasses.replace(exp.Config(), eta_end=2.0), None)


def test_label_and_test_in_both_engines(tmp_path):
    from bioSNN import data
    from bioSNN.brian.backend import Backend, backend
    from bioSNN.brian.network import DiehlCookNetwork

    d = data.load("digits")
    x = np.concatenate([d.x_train, d.x_test]).reshape(-1, 64)
    y = np.concatenate([d.y_train, d.y_test])
    rng = np.random.default_rng(0)
    # class-mean templates as weights: a network that reads digits without training
    w = np.stack([x[:600][y[:600] == c].mean(0) for c in range(10)] * 2, 1).astype(float) + rng.uniform(0, 2, (64, 20))
    w *= 12.8 / w.sum(0)
    theta = np.full(20, 15.0)
    net_cfg = exp.DiehlCookConfig(
        n_input=64, n_exc=20, w_sum=12.8, max_rate=255.0, t_present=150.0, t_rest=50.0, chunk=60
    )
    lab_ids, test_ids = np.arange(600, 690), np.arange(690, 780)
    accs = {}
    for engine in ("torch", "brian2"):
        cfg = apply_overrides(exp.Config(), {"test_engine": engine, "workers": 1, "variants": ("full",)})
        with backend(Backend("numpy")):
            brian_net = DiehlCookNetwork(net_cfg, x, Backend("numpy")) if engine == "brian2" else None
            if brian_net is not None:
                brian_net.w, brian_net.theta = w, theta
            lab, test = exp.label_and_test(cfg, net_cfg, w, theta, x, lab_ids, test_ids, brian_net)
        assert lab.counts.shape == (90, 20) and test.counts.shape == (90, 20) and test.seconds > 0
        assign = exp.readout.assign_labels(lab.counts, y[lab_ids], 10)
        accs[engine] = (exp.readout.predict(test.counts, assign, 10) == y[test_ids]).mean()
        if engine == "torch":  # seeded from the config: a rerun gives the same responses
            again = exp.label_and_test(cfg, net_cfg, w, theta, x, lab_ids, test_ids)
            np.testing.assert_array_equal(again[1].counts, test.counts)
    # both engines read the template network (chance: 0.1; measured 0.47 and 0.40 on 90 test digits); their Poisson
    # draws differ
    assert min(accs.values()) > 0.3 and abs(accs["torch"] - accs["brian2"]) < 0.2, accs
    with pytest.raises(exp.ConfigError, match="test_engine"):
        apply_overrides(exp.Config(), {"test_engine": "nest"})

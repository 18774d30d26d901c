"""The DIET experiment driver end to end (energy penalty, QAT, partial results) and the trade-off study."""

from __future__ import annotations

import json

import pytest

from bioSNN.experiments import diet as exp
from bioSNN.experiments import diet_tradeoff

pytestmark = pytest.mark.torch


def test_diet_experiment_driver_end_to_end_with_energy_penalty(tmp_path):
    cfg = exp.Config(
        dataset="digits",
        width=0.25,
        hidden=32,
        train_limit=300,
        test_limit=100,
        ann_epochs=3,
        diet_steps=(2,),
        diet_epochs=1,
        compare_steps=(2,),
        hybrid_epochs=1,
        device_bits=(2,),
        qat_steps=2,
        qat_epochs=1,
        balance_samples=64,
        energy_penalty=1.0,
        threads=1,
    )
    m = exp.run(cfg, tmp_path, progress=False)
    assert m["main"] == "DIET T=2" and m["n_train"] == 300 and m["n_test"] == 100
    assert [(r["network"], r["T"]) for r in m["table"]] == [
        ("ANN", 0),
        ("diet", 2),
        ("converted", 2),
        ("hybrid", 2),
        ("diet 2bit", 2),
    ]
    hist = m["diet"]["2"]["history"]
    assert len(hist["train_energy_ratio_snn_over_ann"]) == 1 and 0 < hist["train_energy_ratio_snn_over_ann"][0] < 2
    assert "train_energy_ratio_snn_over_ann" not in m["hybrid"]["2"]["history"]  # the penalty is DIET's only
    # each finished phase was readable before the run ended, and the last partial holds every phase
    partial = json.loads((tmp_path / "partial.json").read_text())
    assert set(partial["diet"]) == {"2"} and set(partial["qat"]) == {"2bit"}
    assert (tmp_path / "diet.png").stat().st_size > 0 and (tmp_path / "diet_T2_2bit.npz").exists()
    with pytest.raises(ValueError, match="energy_penalty"):
        exp.run(exp.Config(dataset="digits", energy_penalty=-1.0), tmp_path / "bad", progress=False)


def test_tradeoff_collects_every_diet_network_of_the_same_ann_and_refuses_others(tmp_path):
    def run(name, alpha, steps, ann=0.9, model="vgg9"):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(
            json.dumps({"experiment": "diet", "config": {"width": 0.25, "hidden": 256, "energy_penalty": alpha}})
        )
        diet = {
            str(t): {
                "accuracy": 0.8 + 0.01 * t,
                "history": {"epoch": [1]},
                "mean_spike_rate": 0.1,
                "energy_ratio_ann_over_snn": 20.0 / t,
                "energy_ratio_first_layer_once": 30.0 / t,
            }
            for t in steps
        }
        (d / "metrics.json").write_text(
            json.dumps({"dataset": "fashion_mnist", "model": model, "ann": {"accuracy": ann}, "diet": diet})
        )
        return d

    sweep, pen = run("sweep", 0.0, (2, 5)), run("pen", 0.1, (5,))
    res = diet_tradeoff.collect([pen, sweep])
    assert [(p["energy_penalty"], p["T"]) for p in res["points"]] == [(0.0, 2), (0.0, 5), (0.1, 5)]
    assert res["points"][0]["energy_ratio_ann_over_snn"] == 10.0 and res["ann_accuracy"] == 0.9
    diet_tradeoff.main([str(tmp_path / "out"), str(sweep), str(pen)])
    assert (tmp_path / "out" / "tradeoff.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "out" / "tradeoff.json").read_text())["points"] == res["points"]
    with pytest.raises(ValueError, match="not the same ANN"):
        diet_tradeoff.collect([sweep, run("other_ann", 0.0, (5,), ann=0.8)])
    with pytest.raises(ValueError, match="not the network"):
        diet_tradeoff.collect([sweep, run("other_model", 0.0, (5,), model="vgg5")])

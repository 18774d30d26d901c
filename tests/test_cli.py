"""The biosnn command line end to end: list, a small real demo run, resume, and errors."""

from __future__ import annotations

import json

import pytest

from bioSNN import bundles
from bioSNN.cli import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "compression " in out and "demo " in out and "quick" in out and "full" in out


def test_demo_run_trains_and_writes_results(tmp_path, capsys, isolated_cache):
    tmp_path = tmp_path / "runs"
    rc = main(["run", "demo", "--out", str(tmp_path), "--no-progress", "--set", "epochs=3", "--set", "hidden=64"])
    assert rc == 0
    (run,) = tmp_path.iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["epochs"] == 3 and cfg["preset"] == "quick"
    assert 0.75 < metrics["accuracy"] <= 1.0  # 10 classes: chance is 0.1
    assert metrics["wall_seconds"] > 0 and metrics["n_test"] == 450
    assert metrics["history"]["epoch"] == [1, 2, 3]
    assert set(metrics["device_accuracy"]) == {"1bit", "2bit", "3bit", "4bit"}
    assert metrics["device_accuracy"]["4bit"] > 0.6
    assert 0 < metrics["spike_rate"]["act1"] < 1 and metrics["time_steps"] == 20
    assert (run / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    b = bundles.read(run / "model.npz")
    assert b.arrays["state.nodes.1.weight"].shape == (64, 64) and b.provenance["dataset"] == "digits"


def test_resume_continues_from_the_checkpoint(tmp_path, caplog, isolated_cache):
    tmp_path = tmp_path / "runs"
    args = [
        "run",
        "demo",
        "--preset",
        "full",
        "--out",
        str(tmp_path),
        "--no-progress",
        "--set",
        "epochs=1",
        "--set",
        "hidden=32",
    ]
    assert main(args) == 0
    (run,) = tmp_path.iterdir()
    first = json.loads((run / "metrics.json").read_text())["history"]
    assert main(["run", "demo", "--resume", str(run), "--no-progress", "--set", "epochs=2"]) == 0
    assert "resumed last.npz after epoch 1" in caplog.text
    hist = json.loads((run / "metrics.json").read_text())["history"]
    assert hist["epoch"] == [1, 2] and hist["test_accuracy"][0] == first["test_accuracy"][0]
    saved = json.loads((run / "config.json").read_text())  # the resumed run keeps its preset and records the change
    assert saved["preset"] == "full" and saved["config"]["epochs"] == 2 and saved["config"]["hidden"] == 32


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["run", "demo", "--out", str(tmp_path), "--set", "epochz=1"]) == 2
    assert "unknown config key 'epochz'" in capsys.readouterr().err
    assert main(["run", "nope"]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err
    assert main(["run", "demo", "--preset", "huge", "--out", str(tmp_path)]) == 2


@pytest.mark.torch
def test_hybrid_run_converts_fine_tunes_and_resumes(tmp_path, caplog, isolated_cache):
    root = tmp_path / "runs"
    args = [
        "run",
        "hybrid",
        "--out",
        str(root),
        "--no-progress",
        "--set",
        "ann_epochs=6",
        "--set",
        "hybrid_epochs=1",
        "--set",
        "convert_steps=6,24",
        "--set",
        "hybrid_steps=6",
        "--set",
        "train_limit=600",
        "--set",
        "balance_samples=128",
    ]
    assert main(args) == 0
    (run,) = root.iterdir()
    m = json.loads((run / "metrics.json").read_text())
    assert m["ann"]["accuracy"] > 0.6  # 600 digits, 6 epochs; chance is 0.1
    conv = m["converted"]
    assert conv["6"]["accuracy"] <= conv["24"]["accuracy"] + 0.02  # longer windows approach the ANN
    assert set(conv["24"]["thresholds"]) == {"act1", "act2", "act3", "act4"}
    hy = m["hybrid"]["6"]
    assert hy["history"]["epoch"] == [1] and 0 < hy["mean_spike_rate"] < 1
    assert hy["energy_model"].startswith("45 nm") and hy["snn_energy_uj"] > 0
    assert [r["network"] for r in m["table"]] == ["ANN", "converted", "converted", "hybrid"]
    assert (run / "accuracy_vs_t.png").read_bytes()[:4] == b"\x89PNG"
    # resume with one more hybrid epoch: the ANN and the conversions are not redone
    assert main(["run", "hybrid", "--resume", str(run), "--no-progress", "--set", "hybrid_epochs=2"]) == 0
    out = caplog.text
    assert "resumed ann.npz after epoch 6" in out and "resumed hybrid_T6.npz after epoch 1" in out
    m2 = json.loads((run / "metrics.json").read_text())
    assert m2["ann"]["accuracy"] == m["ann"]["accuracy"] and m2["hybrid"]["6"]["history"]["epoch"] == [1, 2]
    assert bundles.read(run / "hybrid_T6.npz").population("act1").params["v_threshold"]["value"] > 0
    # a new run from that ANN (ann_bundle) trains no ANN and converts it to the same network
    other = tmp_path / "from_bundle"
    assert (
        main(
            [
                "run",
                "hybrid",
                "--out",
                str(other),
                "--no-progress",
                "--set",
                "train_limit=600",
                "--set",
                "balance_samples=128",
                "--set",
                "convert_steps=6",
                "--set",
                "hybrid_steps=",
                "--set",
                f"ann_bundle={run / 'checkpoints' / 'ann.npz'}",
            ]
        )
        == 0
    )
    (run3,) = other.iterdir()
    m3 = json.loads((run3 / "metrics.json").read_text())
    assert m3["ann"]["accuracy"] == m["ann"]["accuracy"] and "history" not in m3["ann"]
    assert m3["converted"]["6"]["accuracy"] == conv["6"]["accuracy"] and m3["hybrid"] == {}
    assert not (run3 / "checkpoints" / "ann.npz").exists()


def test_list_shows_each_presets_wall_time_from_the_stored_runs(capsys):
    from bioSNN.cli import preset_times

    times = preset_times()
    assert 30 < times["compression", "quick"] < 3600 and ("compression", "full") not in times  # full: no plain run
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("compression "))
    assert "quick ~" in line and "2-core CPU" in out

"""Translation models trained in separate runs merge into what one run of all of them writes."""

from __future__ import annotations

import json
import shutil

import pytest

from bioSNN import bundles
from bioSNN.experiments import lite_translate_attention
from bioSNN.experiments.lite_translate_merge import merge
from bioSNN.models.seq2seq import load_translator

from .test_resume import _strip, cli, only_run

pytestmark = pytest.mark.torch

TINY = [
    "train_limit=200",
    "epochs=1",
    "dim=16",
    "layers=1",
    "select_limit=10",
    "test_limit=10",
    "beam=2",
    "max_len=10",
    "examples=1",
    "checkpoint_seconds=0",
]


def _run(tmp_path, name, models, threads=1):
    sets = [x for s in [*TINY, f"models={models}", f"threads={threads}"] for x in ("--set", s)]
    r = cli("lite_translate", "--out", str(tmp_path / name), *sets)
    assert r.returncode == 0, r.stderr[-3000:]
    return only_run(tmp_path / name)


def test_models_trained_apart_merge_into_the_run_of_both(data_dir, tmp_path):
    both = _run(tmp_path, "both", "conv_lif,gru")
    gru = _run(tmp_path, "gru", "gru")  # alone, and given first: its seed follows its name
    lif = _run(tmp_path, "lif", "conv_lif")
    m = merge([gru, lif], tmp_path / "out")
    ref = json.loads((both / "metrics.json").read_text())
    assert list(m["models"]) == ["conv_lif", "gru"] and m["main"] == "conv_lif"
    assert _strip(m["models"]) == _strip(ref["models"])  # same weights, losses, BLEU and examples
    assert m["claims"] == ref["claims"] and m["accuracy"] == ref["accuracy"]
    assert m["merged_from"] == {"conv_lif": str(lif), "gru": str(gru)}
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["merged"] is True and saved["config"]["models"] == ["conv_lif", "gru"]
    for name in ("conv_lif", "gru"):
        a, b = bundles.read(tmp_path / "out" / f"{name}.npz"), bundles.read(both / f"{name}.npz")
        assert a.arrays.keys() == b.arrays.keys() and all((a.arrays[k] == b.arrays[k]).all() for k in a.arrays)
    assert (tmp_path / "out" / "translate.png").stat().st_size > 10_000
    att = lite_translate_attention.stats(tmp_path / "out")  # read back from the merged bundles
    assert set(att["models"]) == {"conv_lif", "gru"} and att["pairs"] == 10
    for r in att["models"].values():
        assert 0.0 < r["entropy_over_uniform"] <= 1.0 + 1e-9 and 0.0 < r["mean_max_weight"] <= 1.0
    assert json.loads((tmp_path / "out" / "attention.json").read_text()) == att
    # a stored model translates raw sentences as the run did (its first test example, greedy and beam)
    ex = m["models"]["conv_lif"]["examples"][0]
    tr = load_translator(tmp_path / "out" / "conv_lif.npz")
    assert tr.translate([ex["source"]]) == [ex["greedy"]] and tr.translate([ex["source"]], beam=2) == [ex["beam"]]

    with pytest.raises(ValueError, match="'conv_lif' comes from both"):
        merge([lif, both], tmp_path / "out2")
    other = tmp_path / "other"
    shutil.copytree(gru, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["config"]["dim"] = 32
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="'dim' differs"):
        merge([lif, other], tmp_path / "out3")
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()

"""How sharply the translators of finished runs attend: :func:`bioSNN.nn.seq2seq.attention_stats` of every model
of a ``lite_translate`` run folder (or a merged one) on its selection split (``val``, ``select_limit`` pairs),
written to ``attention.json`` in the folder and printed.

Usage: ``python -m bioSNN.experiments.lite_translate_attention RUN [RUN ...]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bioSNN.atomic import write_json
from bioSNN.config import apply_overrides
from bioSNN.models.seq2seq import load_translator
from bioSNN.nn.seq2seq import attention_stats
from bioSNN.runs import read_finished

from . import lite_translate as exp


def stats(run: Path) -> dict:
    cfg, _ = read_finished(run, "lite_translate")
    models = list(cfg["models"])
    for name in models:
        if not (run / f"{name}.npz").is_file():
            raise FileNotFoundError(f"{run}: no {name}.npz (the run is not finished, or its bundles were not kept)")
    # the experiment's own data path; a setting absent from an older config.json takes its value of the time
    c = apply_overrides(
        exp.Config(), {"attention": "dot", **{k: v for k, v in cfg.items() if k in exp.Config.__dataclass_fields__}}
    )
    _, _, d, _ = exp.data_of(c)
    torch.set_num_threads(int(cfg.get("threads", 1)))
    out = {"split": "val", "pairs": len(d["val"]), "models": {}}
    for name in models:
        out["models"][name] = attention_stats(load_translator(run / f"{name}.npz").model, d["val"])
    write_json(run / "attention.json", out)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    for run in ap.parse_args(argv).runs:
        for name, r in stats(run)["models"].items():
            print(
                f"{run}  {name:>10}: attention entropy {r['entropy_nats']:.3f} nats "
                f"({r['entropy_over_uniform']:.2f} of uniform), mean largest weight {r['mean_max_weight']:.3f}"
            )


if __name__ == "__main__":
    main()

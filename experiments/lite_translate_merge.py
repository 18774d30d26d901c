"""One table and one figure from translation models trained in separate runs.

Each model of the translation experiment is trained on its own (its seed follows its name, not its place in
``models``), so on a 2-core machine the three models are best run as single-threaded runs side by side. This
merges their run folders into one, as a run of all of them writes it: ``metrics.json`` (models, claims, the main
model's BLEU), ``config.json``, ``translate.png``, each model's bundle and the shared vocabularies.

The runs must share their configuration except ``models``, ``threads`` and ``checkpoint_seconds`` (a difference
is an error naming the key, unless listed in ``--ignore``), and their vocabularies must be the same file.

Usage: ``python -m bioSNN.experiments.lite_translate_merge OUT RUN RUN ... [--ignore KEY ...]``
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bioSNN.models.seq2seq import SEQ2SEQ_MODELS
from bioSNN.runs import check_same_config, read_finished, write_merged

from . import lite_translate as exp

_ALWAYS_DIFFERENT = ("models", "threads", "checkpoint_seconds")
_RUN_KEYS = ("test_split", "direction", "n_train", "n_val", "n_test", "vocab")  # the same in every source


def merge(sources: list[str | Path], out: Path, ignore: tuple[str, ...] = ()) -> dict:
    """Merge finished ``lite_translate`` run folders into ``out``; returns the merged metrics."""
    if not sources:
        raise ValueError("merge needs at least one run folder")
    base, first, models, origin, walls = None, None, {}, {}, {}
    for run in map(Path, sources):
        cfg, metrics = read_finished(run, "lite_translate")
        if base is None:
            base, first, head = cfg, run, metrics
        else:
            check_same_config(base, cfg, (*_ALWAYS_DIFFERENT, *ignore), run, first)
            if (run / "vocab.json").read_bytes() != (first / "vocab.json").read_bytes():
                raise ValueError(f"{run}: vocab.json differs from {first}'s (same config, other data?)")
            for k in _RUN_KEYS:
                if metrics.get(k) != head.get(k):
                    raise ValueError(f"{run}: {k!r} differs ({metrics.get(k)!r} vs {head.get(k)!r} in {first})")
        for name, r in metrics["models"].items():
            if name in models:
                raise ValueError(f"model {name!r} comes from both {origin[name]} and {run}")
            if not (run / f"{name}.npz").is_file():
                raise FileNotFoundError(f"{run}: no {name}.npz (the bundle of its model {name!r})")
            models[name], origin[name] = r, str(run)
        walls[str(run)] = metrics.get("wall_seconds")
    order = [m for m in SEQ2SEQ_MODELS if m in models]
    models = {m: models[m] for m in order}
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(first / "vocab.json", out / "vocab.json")  # copied only once every source has passed
    for name, run in origin.items():
        shutil.copyfile(Path(run) / f"{name}.npz", out / f"{name}.npz")
    res = {"models": models, "claims": exp._claims(models)}
    exp._figure(out / "translate.png", res)
    main = "conv_lif" if "conv_lif" in models else order[0]
    metrics = {
        "accuracy": models[main]["test_bleu_beam"] / 100,
        "main": main,
        "main_bundle": f"{main}.npz",
        **{k: head.get(k) for k in _RUN_KEYS},
        **res,
        "merged_from": origin,
        "config_keys_ignored": list(ignore),
        "wall_seconds_of_runs": walls,
    }
    write_merged(out, "lite_translate", metrics, {**base, "models": order})
    return metrics


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", nargs="+", type=Path, help="finished lite_translate run folders")
    ap.add_argument("--ignore", nargs="*", default=[], help="config keys allowed to differ")
    args = ap.parse_args(argv)
    m = merge(args.runs, args.out, tuple(args.ignore))
    for name, r in m["models"].items():
        print(
            f"{name:>10}: test BLEU {r['test_bleu_greedy']:.2f} greedy, {r['test_bleu_beam']:.2f} beam "
            f"{r['beam']}  {r['parameters']:,} parameters  {r['energy_nj_per_sentence']:.1f} nJ per sentence"
        )
    print(f"claims: {m['claims']}")


if __name__ == "__main__":
    main()

"""One table and one figure from compression variants trained in separate runs.

Each variant of the compression experiment trains a network of its own, so variants are often run apart (one
per core, one per session, one per machine). This merges their run folders into one: ``metrics.json`` with the
variants table and details as a single run writes them, ``config.json``, the accuracy-vs-pruning and
accuracy-vs-bits figure (``compression.png``) and each variant's receptive-field figure.

The runs must share their configuration except ``variants`` and ``workers``; any other difference is an error
naming the key, unless it is listed in ``--ignore`` (the merged metrics record what was ignored, e.g.
``error_feedback`` when only a ``full`` network, which it does not touch, comes from an older run).

Usage: ``python -m bioSNN.experiments.compression_merge OUT RUN[:variant,...] RUN[:variant,...] ... [--ignore KEY ...]``
(``RUN:full`` takes only that run's ``full`` variant).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bioSNN.runs import check_same_config, read_finished, write_merged

from . import compression as exp

_ALWAYS_DIFFERENT = ("variants", "workers")


def _source(spec: str) -> tuple[Path, list[str] | None]:
    path, _, only = spec.rpartition(":") if ":" in spec and not Path(spec).exists() else (spec, "", "")
    return Path(path), [v for v in only.split(",") if v] or None


def merge(sources: list[str], out: Path, ignore: tuple[str, ...] = ()) -> dict:
    """Merge compression run folders (``"RUN"`` or ``"RUN:variant,..."``) into ``out``; returns the metrics."""
    if not sources:
        raise ValueError("merge needs at least one run folder")
    base, table, details, origin = None, {}, {}, {}
    walls = {}  # each source run's wall time (all its segments), kept with the merge
    for spec in sources:
        run, only = _source(spec)
        cfg, metrics = read_finished(run, "compression")
        if base is None:
            base = cfg
        else:
            check_same_config(base, cfg, (*_ALWAYS_DIFFERENT, *ignore), run, sources[0])
        for v in only or list(metrics["variants"]):
            if v not in metrics["variants"]:
                raise ValueError(f"{run}: no variant {v!r} (has {list(metrics['variants'])})")
            if v in table:
                raise ValueError(f"variant {v!r} comes from both {origin[v]} and {run}")
            table[v], details[v], origin[v] = metrics["variants"][v], metrics["details"][v], str(run)
        walls[str(run)] = metrics.get("wall_seconds")
    out.mkdir(parents=True, exist_ok=True)
    for v, run in origin.items():  # copied only once every source has passed the checks above
        png = Path(run) / f"receptive_fields_{v.replace('+', '_')}.png"
        if png.is_file():
            shutil.copyfile(png, out / png.name)
    results = [{"variant": v, **table[v], **details[v]} for v in table]
    exp._figures(out, results, receptive_fields=False)
    main = "full" if "full" in table else next(iter(table))
    metrics = {
        "accuracy": table[main]["accuracy"],
        "main_variant": main,
        "variants": table,
        "details": details,
        "merged_from": origin,
        "config_keys_ignored": list(ignore),
        "wall_seconds_of_runs": walls,
        "cost_model": exp.compression.COST_MODEL,
    }
    write_merged(out, "compression", metrics, {**base, "variants": list(table)})
    return metrics


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", nargs="+", help="run folders, each optionally :variant,variant")
    ap.add_argument("--ignore", nargs="*", default=[], help="config keys allowed to differ")
    args = ap.parse_args(argv)
    m = merge(args.runs, args.out, tuple(args.ignore))
    for v, r in m["variants"].items():
        print(
            f"{v:>10}: accuracy {r['accuracy']:.4f}  kept {100 * (1 - r['fraction_pruned']):.1f} %  "
            f"bits {r['bits_per_synapse']}  energy x{r['energy_vs_full']:.2f}  area x{r['area_vs_full']:.3f}"
        )


if __name__ == "__main__":
    main()

"""One table, one noise figure and the paired comparisons from multimodal variants trained in separate runs.

The variants of the multimodal experiment train networks of their own, so they are often run apart (one per
core, e.g. ``variants=independent`` beside ``variants=multimodal``). This merges finished run folders into one:
``metrics.json`` as a single run writes it (accuracy per network and condition, the McNemar comparison of the
multimodal and independent variants on the same test pairs, the cross-synapses on/off comparison where the
multimodal run was tested at cross gain 0), ``config.json`` and ``noise.png``. The comparisons are computed
from the source runs' saved test responses (``variants/<v>/test_counts*.npz``), which stay where they are.

The runs must share their configuration except ``variants`` and ``test_gains`` (which only re-tests the
multimodal variant after training); any other difference is an error naming the key, unless it is listed in
``--ignore``. They must also hold the same test pairs (checked on the saved labels).

Usage: ``python -m bioSNN.experiments.multimodal_merge OUT RUN RUN ... [--ignore KEY ...]``
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from bioSNN import data
from bioSNN.runs import check_same_config, read_finished, write_merged

from . import multimodal as exp

_ALWAYS_DIFFERENT = ("variants", "test_gains")


def _n_classes(cfg: dict, metrics: dict) -> int:
    if "n_classes" in metrics:
        return int(metrics["n_classes"])
    return data.load(cfg["image_dataset"], progress=False).n_classes  # runs from before n_classes was recorded


def merge(runs: list[str | Path], out: Path, ignore: tuple[str, ...] = (), verbose: bool = False) -> dict:
    """Merge finished multimodal run folders into ``out``; returns the merged metrics."""
    if not runs:
        raise ValueError("merge needs at least one run folder")
    base, first, n_classes, results, origin, counts, labels, gains = None, None, 0, {}, {}, {}, None, ()
    walls = {}  # each source run's wall time (all its segments), kept with the merge
    for run in map(Path, runs):
        cfg, metrics = read_finished(run, "multimodal")
        if base is None:
            base, first, n_classes = cfg, run, _n_classes(cfg, metrics)
        else:
            check_same_config(base, cfg, (*_ALWAYS_DIFFERENT, *ignore), run, first)
        counts[run] = (metrics["n_train_pairs"], metrics["n_test_pairs"])
        walls[str(run)] = metrics.get("wall_seconds")
        for v, r in metrics["variants"].items():
            if v in results:
                raise ValueError(f"variant {v!r} comes from both {origin[v]} and {run}")
            with np.load(run / "variants" / v / "test_counts.npz", allow_pickle=False) as z:
                if labels is None:
                    labels = z["labels"]
                elif not np.array_equal(labels, z["labels"]):
                    raise ValueError(f"{run}: variant {v!r} was tested on other test pairs than {first}")
            results[v], origin[v] = r, run
            if v == "multimodal":
                gains = tuple(cfg.get("test_gains", ()))
    if len(set(counts.values())) > 1:
        raise ValueError(f"the runs differ in (training pairs, test pairs): {counts}")
    out.mkdir(parents=True, exist_ok=True)
    merged = exp.report(
        results,
        {v: origin[v] / "variants" / v for v in results},
        n_classes,
        tuple(base["image_noise"]),
        tuple(base["audio_snr_db"]),
        out,
        verbose=verbose,
    )
    n_train, n_test = next(iter(counts.values()))
    merged.update(
        n_train_pairs=n_train,
        n_test_pairs=n_test,
        merged_from={v: str(r) for v, r in origin.items()},
        config_keys_ignored=list(ignore),
        wall_seconds_of_runs=walls,
    )
    write_merged(out, "multimodal", merged, {**base, "variants": list(results), "test_gains": list(gains)})
    return merged


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", nargs="+", type=Path, help="finished multimodal run folders")
    ap.add_argument("--ignore", nargs="*", default=[], help="config keys allowed to differ")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    m = merge(args.runs, args.out, tuple(args.ignore), verbose=True)
    for net, acc in m["accuracy_by_network"].items():
        print(
            f"{net:>42}: clean {acc['clean']:.4f}  " + "  ".join(f"{k} {a:.3f}" for k, a in acc.items() if k != "clean")
        )


if __name__ == "__main__":
    main()

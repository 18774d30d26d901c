"""Accuracy against estimated compute energy for DIET runs: fewer time steps vs the energy penalty.

Two levers lower a DIET network's energy: fewer time steps ``T`` and a penalty ``α·E_SNN/E_ANN`` in the loss
(``energy_penalty``). This reads finished DIET run folders (``metrics.json`` + ``config.json``), collects every
DIET network in them as a point (T, α, accuracy, spike rate, ANN/SNN energy ratio, and the ratio with the first
layer's constant current computed once) and plots accuracy vs energy ratio, one marker per α, labelled by T,
with the ANN's accuracy as a line; ``tradeoff.json`` holds the points.

Usage: ``python -m bioSNN.experiments.diet_tradeoff OUT RUN [RUN ...]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bioSNN import viz
from bioSNN.atomic import write_json
from bioSNN.runs import read_finished


def collect(runs: list[Path]) -> dict:
    """Points of every DIET network in ``runs``; all runs must share dataset, model and ANN accuracy."""
    points, ann, ident = [], None, None
    for run in runs:
        cfg, m = read_finished(run, "diet")
        this = (m["dataset"], m["model"], cfg["width"], cfg["hidden"])
        if ident is not None and this != ident:
            raise ValueError(f"{run}: {this} is not the network of the other runs {ident}")
        if ann is not None and abs(m["ann"]["accuracy"] - ann) > 1e-12:
            raise ValueError(f"{run}: ANN accuracy {m['ann']['accuracy']} differs ({ann}): not the same ANN")
        ident, ann = this, m["ann"]["accuracy"]
        alpha = float(cfg.get("energy_penalty", 0.0))
        for t, r in m["diet"].items():
            points.append(
                {
                    "T": int(t),
                    "energy_penalty": alpha,
                    "accuracy": r["accuracy"],
                    "epochs": len(r["history"]["epoch"]),
                    "mean_spike_rate": r["mean_spike_rate"],
                    "energy_ratio_ann_over_snn": r["energy_ratio_ann_over_snn"],
                    "energy_ratio_first_layer_once": r.get("energy_ratio_first_layer_once"),
                    "run": str(run),
                }
            )
    if not points:
        raise ValueError("no DIET networks in the given runs")
    points.sort(key=lambda p: (p["energy_penalty"], p["T"]))
    return {"dataset": ident[0], "model": ident[1], "ann_accuracy": ann, "points": points}


def figure(path: Path, res: dict) -> None:
    fig, ax = viz.figure(figsize=(6.5, 4.5))
    for alpha in sorted({p["energy_penalty"] for p in res["points"]}):
        pts = [p for p in res["points"] if p["energy_penalty"] == alpha]
        ax.plot(
            [p["energy_ratio_ann_over_snn"] for p in pts],
            [p["accuracy"] for p in pts],
            marker="o",
            ls="-" if alpha == 0 else "none",
            label=f"α = {alpha:g}" + (" (T sweep)" if len(pts) > 1 else ""),
        )
        for p in pts:
            ax.annotate(
                f"T={p['T']}",
                (p["energy_ratio_ann_over_snn"], p["accuracy"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(4, 3),
            )
    ax.axhline(res["ann_accuracy"], color="k", ls="--", lw=1, label="ANN")
    ax.axvline(10.0, color="grey", ls=":", lw=1, label="10× target")
    ax.set(
        xlabel="estimated compute energy ANN / SNN",
        ylabel="test accuracy",
        title=f"DIET {res['model']} on {res['dataset']}: accuracy vs energy",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    viz.save(fig, path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", nargs="+", type=Path)
    args = ap.parse_args(argv)
    res = collect(args.runs)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "tradeoff.json", res)
    figure(args.out / "tradeoff.png", res)
    for p in res["points"]:
        print(
            f"α {p['energy_penalty']:<5g} T {p['T']:>2}: accuracy {p['accuracy']:.4f}  spike rate "
            f"{p['mean_spike_rate']:.3f}  energy ANN/SNN x{p['energy_ratio_ann_over_snn']:.1f}"
        )


if __name__ == "__main__":
    main()

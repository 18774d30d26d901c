"""``biosnn`` command line: list and run experiments, inspect bundles and datasets.

    biosnn list
    biosnn run NAME [--preset quick|full] [--config FILE] [--set key=value ...] [--out runs] [--resume DIR]
    biosnn data [NAME ...]          which datasets are found locally, or load and summarise some
    biosnn info BUNDLE              print a bundle's description
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import time
from pathlib import Path

from .config import apply_overrides, parse_set_args, read_config_file, to_dict
from .runs import new_run_dir, write_json

# name -> module; each module defines SUMMARY, Config, PRESETS and run()
EXPERIMENTS = {
    "compression": "bioSNN.experiments.compression",
    "hybrid": "bioSNN.experiments.hybrid",
    "diet": "bioSNN.experiments.diet",
    "multimodal": "bioSNN.experiments.multimodal",
    "demo": "bioSNN.experiments.demo",
}


def _experiment(name: str):
    if name not in EXPERIMENTS:
        raise SystemExit(f"unknown experiment {name!r}; `biosnn list` shows: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name])


def build_config(module, preset: str | None, config_file: str | None, sets: list[str]):
    """Defaults → preset → config file → ``--set`` overrides, each applied on top of the previous."""
    cfg = module.Config()
    if preset:
        if preset not in module.PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(module.PRESETS)}")
        cfg = apply_overrides(cfg, module.PRESETS[preset])
    if config_file:
        cfg = apply_overrides(cfg, read_config_file(config_file))
    return apply_overrides(cfg, parse_set_args(sets))


def cmd_list(_args) -> int:
    width = max(map(len, EXPERIMENTS))
    for name in EXPERIMENTS:
        mod = _experiment(name)
        print(f"{name:<{width}}  {mod.SUMMARY}  [presets: {', '.join(mod.PRESETS)}]")
    return 0


def cmd_run(args) -> int:
    mod = _experiment(args.name)
    if args.resume:
        run_dir = Path(args.resume)
        saved = json.loads((run_dir / "config.json").read_text())
        cfg = apply_overrides(mod.Config(), {k: v for k, v in saved["config"].items()})
        cfg = apply_overrides(cfg, parse_set_args(args.set))
        preset = saved.get("preset")  # a resumed run keeps the preset it was started with
    else:
        cfg = build_config(mod, args.preset, args.config, args.set)
        run_dir = _shared_run_dir(args.out, args.name)
        preset = args.preset
    main_rank = _rank() == 0
    if main_rank:
        write_json(run_dir / "config.json", {"experiment": args.name, "preset": preset, "config": to_dict(cfg)})
        print(f"run folder: {run_dir}  (preset {preset}; --set values apply on top of it)")
    t0 = time.perf_counter()
    metrics = mod.run(cfg, run_dir, progress=not args.no_progress)
    if not main_rank:  # under torchrun only rank 0 reports
        return 0
    metrics = {"accuracy": metrics.pop("accuracy"), "wall_seconds": time.perf_counter() - t0, **metrics}
    if not 0.0 <= metrics["accuracy"] <= 1.0:
        raise RuntimeError(f"experiment {args.name} reported accuracy {metrics['accuracy']}, not a fraction")
    write_json(run_dir / "metrics.json", metrics)
    print(f"accuracy {metrics['accuracy']:.4f}  wall {metrics['wall_seconds']:.1f} s  -> {run_dir / 'metrics.json'}")
    return 0


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _shared_run_dir(out: str, name: str) -> Path:
    """A new run folder; under torchrun (WORLD_SIZE > 1) rank 0 creates it and every rank receives its path."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return new_run_dir(out, name)
    import torch.distributed as tdist

    from .nn import distributed

    distributed.setup()
    box = [str(new_run_dir(out, name)) if tdist.get_rank() == 0 else None]
    tdist.broadcast_object_list(box, src=0)
    return Path(box[0])


def cmd_data(args) -> int:
    from . import data

    if not args.names:
        for name, summary in data.available().items():
            spec = data.get_spec(name)
            where = "embedded" if spec.builtin else (data.locate(name) or "absent (downloads on first use)")
            print(f"{name:<14} {where}\n{'':<14} {summary}")
        return 0
    for name in args.names:
        ds = data.load(name, download=not args.no_download)
        fields = {f.name: getattr(ds, f.name) for f in dataclasses.fields(ds)}
        desc = {k: (f"{v.dtype}{list(v.shape)}" if hasattr(v, "shape") else
                    (f"{len(v)} items" if isinstance(v, (list, tuple, dict)) and len(v) > 12 else v))
                for k, v in fields.items()}
        print(name, json.dumps(desc, indent=1, default=str))
    return 0


def cmd_info(args) -> int:
    from . import io

    print(json.dumps(io.read(args.bundle).describe(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="biosnn", description="bioSNN: energy-efficient, low-latency SNNs")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list experiments").set_defaults(func=cmd_list)
    r = sub.add_parser("run", help="run an experiment into a new run folder")
    r.add_argument("name")
    r.add_argument("--preset", default="quick", help="named settings: quick (smoke run, < 3 min) or full")
    r.add_argument("--config", help="TOML or JSON file of config overrides")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config field")
    r.add_argument("--out", default="runs", help="parent folder of run folders (default: runs)")
    r.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.set_defaults(func=cmd_run)
    d = sub.add_parser("data", help="show where datasets are found, or load and summarise some")
    d.add_argument("names", nargs="*")
    d.add_argument("--no-download", action="store_true")
    d.set_defaults(func=cmd_data)
    i = sub.add_parser("info", help="print the description of a bioSNN bundle")
    i.add_argument("bundle")
    i.set_defaults(func=cmd_info)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        from .data import DataError
        from .io import BundleError

        if isinstance(e, (DataError, BundleError, ValueError, FileNotFoundError, KeyError)):
            print(f"biosnn: error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())

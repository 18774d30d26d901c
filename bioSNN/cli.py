"""``biosnn`` command line: list and run experiments, inspect bundles and datasets.

biosnn list
biosnn run NAME [--preset quick|full] [--config FILE] [--set key=value ...] [--out runs] [--resume DIR]
biosnn data [NAME ...]          which datasets are found locally, or load and summarise some
biosnn command RUN_DIR          the `biosnn run` command that repeats a run folder's config
biosnn info BUNDLE|FILE.nir     print a bundle's or NIR graph's description (arrays are not read)
biosnn export RUN_OR_BUNDLE [--to nir|bundle] [--out FILE]
                                a run's or bundle's network as a NIR graph, or a NIR graph as a bundle
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import importlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

from . import runs
from .config import SCHEMA_VERSION, ConfigError, apply_overrides, parse_set_args, read_config_file, to_dict, validate
from .runs import (
    LOCK_FILE,
    RUN_LOG,
    RunClock,
    RunLock,
    RunLockedError,
    WorkerDiedError,
    is_run_config,
    new_run_dir,
    remove_stale_temporaries,
    stop_on_sigterm,
    write_json,
)

# name -> module; each module defines SUMMARY, Config, PRESETS and run()
EXPERIMENTS = {
    "compression": "bioSNN.experiments.compression",
    "hybrid": "bioSNN.experiments.hybrid",
    "diet": "bioSNN.experiments.diet",
    "multimodal": "bioSNN.experiments.multimodal",
    "lite": "bioSNN.experiments.lite",
    "lite_nmnist": "bioSNN.experiments.lite_nmnist",
    "lite_translate": "bioSNN.experiments.lite_translate",
    "demo": "bioSNN.experiments.demo",
}


def _experiment(name: str):
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; `biosnn list` shows: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name])


def build_config(module, preset: str | None, config_file: str | None, sets: list[str], name: str = ""):
    """Defaults → preset → config file → ``--set`` overrides, each applied on top of the previous.

    ``config_file`` may be a run folder's ``config.json``: its resolved config then replaces defaults and preset
    alike (it must be a run of the same experiment), so ``--config RUN/config.json`` repeats that run."""
    cfg = module.Config()
    if preset:
        if preset not in module.PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(module.PRESETS)}")
        cfg = apply_overrides(cfg, module.PRESETS[preset])
    if config_file:
        overrides = read_config_file(config_file)
        if is_run_config(overrides):
            if name and overrides["experiment"] != name:
                raise ConfigError(f"{config_file} is the config of a {overrides['experiment']!r} run, not {name!r}")
            cfg, overrides = module.Config(), overrides["config"]
        cfg = apply_overrides(cfg, overrides)
    return apply_overrides(cfg, parse_set_args(sets))


def read_run_config(run_dir: Path, name: str | None) -> dict:
    """The ``config.json`` of run folder ``run_dir``, checked to be a run of experiment ``name`` (None: any of
    :data:`EXPERIMENTS`)."""
    return runs.read_run_config(run_dir, name, tuple(EXPERIMENTS))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _set_value(v) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(_set_value(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return "none" if v is None else str(v)


def reproduce_command(saved: dict) -> str:
    """The shortest ``biosnn run`` command that resolves to the config of a run folder's ``config.json``
    (``saved``) with today's defaults and presets: its preset plus a ``--set`` for every value that differs."""
    mod = _experiment(saved["experiment"])
    preset = saved.get("preset") or "full"
    base = _flat(to_dict(build_config(mod, preset, None, [])))
    want = _flat(to_dict(apply_overrides(mod.Config(), saved["config"])))
    sets = [f"--set {shlex.quote(f'{k}={_set_value(v)}')}" for k, v in want.items() if base.get(k) != v]
    return " ".join([f"biosnn run {saved['experiment']} --preset {preset}", *sets])


def resolve_command(command: str):
    """``(experiment, config)`` that ``biosnn run ...`` (a command line as text) would run with; no --resume."""
    argv = shlex.split(command)
    if argv[:2] != ["biosnn", "run"]:
        raise ConfigError(f"not a `biosnn run` command: {command}")
    p = argparse.ArgumentParser(prog="biosnn run", add_help=False)
    p.add_argument("name")
    p.add_argument("--preset")
    p.add_argument("--config")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--out")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv[2:])
    mod = _experiment(args.name)
    return args.name, build_config(mod, args.preset or "quick", args.config, args.set, args.name)


def preset_times() -> dict[tuple[str, str], float]:
    """Wall seconds of each ``(experiment, preset)`` run as it is, read from the stored runs beside the
    experiments (``experiments/results``: those whose config is exactly the preset's, threads aside; measured on
    a 2-core CPU); empty where no stored runs are installed."""
    from . import experiments

    out: dict[tuple[str, str], float] = {}
    for cfg_file in sorted((Path(experiments.__file__).parent / "results").glob("*/config.json")):
        try:
            saved = json.loads(cfg_file.read_text())
            wall = json.loads((cfg_file.parent / "metrics.json").read_text()).get("wall_seconds")
            if not is_run_config(saved) or saved.get("merged") or not isinstance(wall, (int, float)):
                continue
            command = re.sub(r" --set threads=\d+", "", reproduce_command(saved))
        except (OSError, ValueError, ConfigError):
            continue
        key = (saved["experiment"], saved.get("preset") or "full")
        if command == f"biosnn run {key[0]} --preset {key[1]}":
            out[key] = min(out.get(key, wall), wall)
    return out


def _duration(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 90
        else f"{seconds / 60:.0f} min"
        if seconds < 5400
        else f"{seconds / 3600:.1f} h"
    )


def cmd_list(_args) -> int:
    width = max(map(len, EXPERIMENTS))
    times = preset_times()
    for name in EXPERIMENTS:
        mod = _experiment(name)
        presets = ", ".join(f"{p} ~{_duration(times[name, p])}" if (name, p) in times else p for p in mod.PRESETS)
        print(f"{name:<{width}}  {mod.SUMMARY}  [presets: {presets}]")
    if times:
        print("(~: wall time of the stored run of that preset on a 2-core CPU, experiments/results)")
    return 0


# what a resumed run may change, per experiment (module attribute RESUMABLE); anything else needs a new run
def _resumable(mod) -> tuple[str, ...]:
    return tuple(getattr(mod, "RESUMABLE", ()))


def _prepare_resume(mod, args, command: list[str]):
    """Config and run folder of ``--resume``: every check passes before anything is written."""
    if args.config or args.preset:
        raise ConfigError(
            "--resume continues a run with its own config; drop --config/--preset (use --set for "
            f"what may change: {', '.join(_resumable(mod)) or 'nothing'})"
        )
    run_dir = Path(args.resume)
    saved = read_run_config(run_dir, args.name)
    try:
        old = apply_overrides(mod.Config(), saved["config"])
    except ConfigError as e:
        raise ConfigError(f"{run_dir / 'config.json'}: {e}") from None
    cfg = apply_overrides(old, parse_set_args(args.set))
    validate(cfg)
    before, after = _flat(to_dict(old)), _flat(to_dict(cfg))
    for key in sorted(after):
        if after[key] != before.get(key) and key not in _resumable(mod):
            raise ConfigError(
                f"--resume cannot change {key!r} ({before.get(key)!r} -> {after[key]!r}): the "
                f"checkpoints hold a run with the old value; may change: "
                f"{', '.join(_resumable(mod)) or 'nothing'}. Start a new run for other settings"
            )
    saved = {**saved, "config": to_dict(cfg), "resumes": [*saved.get("resumes", []), command]}
    return cfg, run_dir, saved


def _has_checkpoints(run_dir: Path) -> bool:
    return (
        any((run_dir / "checkpoints").glob("*"))
        or any(run_dir.glob("variants/*/checkpoint.npz"))
        or any(run_dir.glob("variants/*/result.json"))
    )


_BOOKKEEPING = {"config.json", RUN_LOG, LOCK_FILE}


def _remove_if_empty(run_dir: Path) -> None:
    """Remove a new run's folder when the run failed before saving any work (only bookkeeping files in it)."""
    if all(p.is_dir() or p.name in _BOOKKEEPING for p in run_dir.rglob("*")):
        shutil.rmtree(run_dir, ignore_errors=True)


def cmd_run(args) -> int:
    mod = _experiment(args.name)
    command = ["biosnn", *args.argv]
    main_rank = _rank() == 0
    if args.resume:
        cfg, run_dir, saved = _prepare_resume(mod, args, command)
    else:
        cfg = build_config(mod, args.preset or "quick", args.config, args.set, args.name)
        validate(cfg)
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file, not a folder")
        preset = args.preset or "quick"
        if args.config and not args.preset:  # a run's config.json: the new run records that run's preset
            given = read_config_file(args.config)
            if is_run_config(given) and given.get("preset"):
                preset = given["preset"]
        run_dir = _shared_run_dir(args.out, args.name)
        saved = {
            "schema": SCHEMA_VERSION,
            "experiment": args.name,
            "preset": preset,
            "command": command,
            "config": to_dict(cfg),
        }
    args.run_dir = run_dir  # for the message after Ctrl-C
    lock = RunLock(run_dir).acquire() if main_rank else None
    try:
        if main_rank:
            if args.resume:
                remove_stale_temporaries(run_dir)  # half-written files of a killed process
            if args.resume and not _has_checkpoints(run_dir):
                print(
                    f"biosnn: warning: {run_dir} holds no checkpoint (deleted?): the run starts over from the "
                    "beginning",
                    file=sys.stderr,
                )
            write_json(run_dir / "config.json", saved)
            print(f"run folder: {run_dir}  (preset {saved.get('preset')}; --set values apply on top of it)")
        stop_on_sigterm()
        clock = RunClock(run_dir, command) if main_rank else None
        status, signal_name = "failed", None
        try:
            metrics = mod.run(cfg, run_dir, progress=not args.no_progress)
            status = "finished"
        except KeyboardInterrupt as e:
            status, signal_name = "interrupted", getattr(e, "signal_name", "SIGINT")
            raise
        finally:
            if clock is not None:
                wall = clock.stop(status, signal_name)
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # leave the process group before exiting (no
                from .nn import distributed  # gloo threads left running at interpreter exit)

                distributed.teardown()
        if not main_rank:  # under torchrun only rank 0 reports
            return 0
        metrics = {"accuracy": metrics.pop("accuracy"), "wall_seconds": wall, **metrics}
        if not 0.0 <= metrics["accuracy"] <= 1.0:
            raise RuntimeError(f"experiment {args.name} reported accuracy {metrics['accuracy']}, not a fraction")
        write_json(run_dir / "metrics.json", metrics)
        print(
            f"accuracy {metrics['accuracy']:.4f}  wall {metrics['wall_seconds']:.1f} s (all segments of the run)"
            f"  -> {run_dir / 'metrics.json'}"
        )
        return 0
    except BaseException:
        if not args.resume and main_rank:
            _remove_if_empty(run_dir)
        raise
    finally:
        if lock is not None:
            lock.release()


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
        desc = {
            k: (
                f"{v.dtype}{list(v.shape)}"
                if hasattr(v, "shape")
                else (f"{len(v)} items" if isinstance(v, (list, tuple, dict)) and len(v) > 12 else v)
            )
            for k, v in fields.items()
        }
        print(name, json.dumps(desc, indent=1, default=str))
    return 0


def cmd_command(args) -> int:
    saved = read_run_config(Path(args.run_dir), None)
    print(reproduce_command(saved))
    return 0


def cmd_info(args) -> int:
    from . import bundles

    if str(args.bundle).endswith(".nir"):
        from .interop.nir_graph import describe

        print(json.dumps(describe(args.bundle), indent=2, default=str))
        return 0
    print(json.dumps(bundles.describe(args.bundle), indent=2))
    return 0


def cmd_export(args) -> int:
    from .interop.nir import bundle_from_nir
    from .models.from_bundle import export_bundle

    src = Path(args.bundle)
    if src.is_dir():
        src = runs.main_bundle(src)
    is_nir = src.suffix == ".nir"
    if args.to == "nir" and is_nir:
        raise ConfigError(f"{src} is a NIR file already; --to bundle makes a bundle of it")
    out = Path(args.out) if args.out else src.with_suffix(".nir" if args.to == "nir" else ".npz")
    if out.resolve() == src.resolve():
        raise ConfigError(f"--out {out} is the source itself; give another file")
    if out.exists() and not args.force:
        raise ConfigError(f"--out {out} exists; give another file or --force")
    if args.to == "bundle":
        if is_nir:
            b = bundle_from_nir(src, out)
            print(
                f"{out}: bundle of the NIR graph {src.name} ({len(b.populations)} populations, "
                f"T = {b.extra['run']['time_steps']}, encoder {b.extra['run']['encoder']})"
            )
        else:
            shutil.copyfile(src, out)
            print(f"{out}: bundle {src.name}")
        return 0
    g = export_bundle(src, out, args.time_steps, args.encoder, args.dt)
    print(
        f"{out}: NIR graph of {len(g.nodes)} nodes (T = {g.metadata['time_steps']}, encoder "
        f"{g.metadata['encoder']}, dt = {g.metadata['dt']} s)"
    )
    return 0


def cmd_inspect(args) -> int:
    from .inspect import inspect

    neurons = args.neurons
    variables = tuple(v.strip() for v in args.vars.split(",") if v.strip()) if args.vars is not None else None
    out = inspect(args.source, args.engine, args.population, variables, neurons, args.items, args.out, args.variant)
    summary = json.loads((out / "inspect.json").read_text())
    rates = summary.get("rates_hz") or summary.get("spikes_per_neuron_per_step")
    print(
        f"{out}: inspect.png, recording.npz, inspect.json; firing rates "
        + ", ".join(f"{k} {v:.3g}" for k, v in rates.items())
        + (" Hz" if "rates_hz" in summary else " spikes/neuron/step")
    )
    return 0


class _TqdmHandler(logging.StreamHandler):
    """Log records as plain lines on stdout, written through tqdm so that they do not break its bars."""

    def emit(self, record):
        from tqdm.auto import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:
            self.handleError(record)


_HANDLER: logging.Handler | None = None


def _log_to_console() -> None:
    """bioSNN's messages (logger ``bioSNN``) on stdout above tqdm's bars: one line per phase, compilation and
    training progress, with or without bars (``--no-progress`` turns off the bars only). Records still reach other
    handlers (e.g. pytest's)."""
    global _HANDLER

    logger = logging.getLogger("bioSNN")
    if _HANDLER is not None:
        logger.removeHandler(_HANDLER)
    _HANDLER = _TqdmHandler()
    _HANDLER.setFormatter(logging.Formatter("%(message)s"))
    _HANDLER.setLevel(logging.INFO)
    logger.addHandler(_HANDLER)
    logger.setLevel(logging.INFO)


def _one_line(e: BaseException) -> str:
    """An expected error as one line: OS errors as 'what: file', others by their message."""
    if isinstance(e, OSError) and e.strerror and not isinstance(e, _data_errors()):
        what = {
            errno.ENOSPC: "disk full (no space left on device)",
            errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied",
        }.get(e.errno, e.strerror)
        return f"{what}: {e.filename}" if e.filename else what
    return " ".join(str(e).split()) or type(e).__name__


def _data_errors():
    from .data import DataError

    return (DataError,)


def _expected():
    from .bundles import BundleError
    from .data import DataError

    return (ConfigError, DataError, BundleError, RunLockedError, WorkerDiedError, ValueError, OSError)


class _Parser(argparse.ArgumentParser):
    """argparse with bioSNN's error style: one line ``biosnn: error: <command>: <what>``, exit code 2, as for
    every other expected error (argparse prints its usage first)."""

    def error(self, message: str):
        where = self.prog.split(maxsplit=1)[1] + ": " if " " in self.prog else ""
        print(f"biosnn: error: {where}{' '.join(message.split())}", file=sys.stderr)
        raise SystemExit(2)


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"an integer >= {low}, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"an integer >= {low}, got {text!r}")
        return v

    return parse


def _positive_seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"a positive, finite number of seconds, got {text!r}")
    return v


def _neuron_list(text: str) -> tuple[int, ...]:
    try:
        neurons = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated neuron indices, got {text!r}") from None
    if not neurons:
        raise argparse.ArgumentTypeError("name at least one neuron")
    if min(neurons) < 0:
        raise argparse.ArgumentTypeError(f"neuron indices are >= 0 (counted from the first), got {text!r}")
    if len(set(neurons)) != len(neurons):
        raise argparse.ArgumentTypeError(f"each neuron once, got {text!r}")
    return neurons


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = _Parser(prog="biosnn", description="bioSNN: energy-efficient, low-latency SNNs")
    p.add_argument("--debug", action="store_true", help="show the full traceback of expected errors too")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list experiments").set_defaults(func=cmd_list)
    r = sub.add_parser("run", help="run an experiment into a new run folder")
    r.add_argument("name")
    r.add_argument("--preset", default=None, help="named settings: quick (the default; smoke run, < 3 min) or full")
    r.add_argument(
        "--config", help="TOML or JSON file of config overrides, or a run folder's config.json (repeats that run)"
    )
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config field")
    r.add_argument("--out", default="runs", help="parent folder of run folders (default: runs)")
    r.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_run)
    d = sub.add_parser("data", help="show where datasets are found, or load and summarise some")
    d.add_argument("names", nargs="*")
    d.add_argument("--no-download", action="store_true")
    d.set_defaults(func=cmd_data)
    c = sub.add_parser("command", help="print the `biosnn run` command that repeats a run folder's config")
    c.add_argument("run_dir")
    c.set_defaults(func=cmd_command)
    e = sub.add_parser(
        "export",
        help="write a run's or bundle's network as a NIR graph (for other simulators), or a NIR graph as a bundle",
    )
    e.add_argument("bundle", metavar="RUN_OR_BUNDLE", help="a run folder (its main network), a bundle or a .nir file")
    e.add_argument("--to", choices=["nir", "bundle"], default="nir")
    e.add_argument("--out", help="the file to write (default: the source's name with .nir or .npz)")
    e.add_argument(
        "--time-steps", type=_int_at_least(1), help="T the network runs for (default: what the bundle records)"
    )
    e.add_argument("--encoder", choices=["direct", "poisson"], help="input coding (default: the bundle's)")
    e.add_argument(
        "--dt", type=_positive_seconds, help="seconds per step in the NIR graph (default: the bundle's, else 1e-3)"
    )
    e.add_argument("--force", action="store_true", help="replace an existing --out file")
    e.set_defaults(func=cmd_export)
    n = sub.add_parser(
        "inspect",
        help="re-simulate a saved network on a few test items with monitors: rasters, "
        "membrane and threshold traces, firing rates, receptive fields",
    )
    n.add_argument("source", metavar="RUN_OR_BUNDLE", help="a run folder or a bundle")
    n.add_argument("--engine", choices=["torch", "brian2"], default="torch")
    n.add_argument("--population", help="whose state to trace (default: exc, or act1 for a SpikingNet)")
    n.add_argument("--vars", help="comma-separated state variables (default: the population's first three)")
    n.add_argument("--neurons", type=_neuron_list, default=(0, 1, 2), help="comma-separated neuron indices to trace")
    n.add_argument("--items", type=_int_at_least(1), default=3, help="test items to show (default 3)")
    n.add_argument("--variant", help="which variant of a compression run (default: its first)")
    n.add_argument("--out", help="output folder (default: <run>/inspect-<engine>)")
    n.set_defaults(func=cmd_inspect)
    i = sub.add_parser("info", help="print the description of a bioSNN bundle or NIR file (arrays are not read)")
    i.add_argument("bundle")
    i.set_defaults(func=cmd_info)
    args = p.parse_args(argv)
    args.argv = argv
    _log_to_console()
    try:
        return args.func(args)
    except KeyboardInterrupt as e:
        if args.debug:
            raise
        run_dir = getattr(args, "run_dir", None)
        hint = (
            f"; resume with `biosnn run {args.name} --resume {run_dir}`"
            if run_dir is not None and run_dir.exists()
            else (" before anything was saved; nothing to resume" if run_dir else "")
        )
        print(f"biosnn: interrupted{hint}", file=sys.stderr)
        return 128 + getattr(e, "signum", 2)  # the shell's code for a death by that signal: 130 SIGINT, 143 SIGTERM
    except _expected() as e:
        if args.debug:
            raise
        run_dir = getattr(args, "run_dir", None)
        hint = (
            f"; resume with `biosnn run {args.name} --resume {run_dir}`"
            if isinstance(e, WorkerDiedError) and run_dir is not None
            else ""
        )
        print(f"biosnn: error: {_one_line(e)}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

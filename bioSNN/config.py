"""Experiment configs: plain dataclasses, filled from presets, a TOML/JSON file and ``key=value`` overrides.

Overrides name fields with dots for nested dataclasses (``device.levels=8``). Values are parsed by the field's
declared type (int, float, bool, str, tuples/lists as JSON or comma lists); unknown keys and unparsable values
raise ``ValueError`` naming the key and the valid choices.

:func:`validate` checks a whole config before anything is run or written: every float is finite, and each
dataclass may declare ``RULES`` (a ``ClassVar`` mapping a field to a range such as ``">0"``, ``">=1"``,
``"[0,1]"``, ``"(0,1]"``; a tuple field is checked item by item) and a ``cross_check()`` method for rules
between fields. Choice fields are annotated ``Literal[...]`` (or ``tuple[Literal[...], ...]``): the annotation is
the list of choices, checked when a value is parsed and again by :func:`validate`. Each failure is one
:class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError",
    "apply_overrides",
    "parse_set_args",
    "read_config_file",
    "to_dict",
    "validate",
    "SCHEMA_VERSION",
]

# version of the run folder's config.json layout (experiment, preset, command, config); older folders lack it
SCHEMA_VERSION = 1


class ConfigError(ValueError):
    """A config value is of the wrong type, out of range, or inconsistent with another; names the key."""


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _parse(value: Any, tp, key: str):
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null") and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _parse(value, a, key)
            except ValueError:
                continue
        raise ConfigError(f"{key}: cannot parse {value!r} as {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    try:
        if tp is bool:
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise ValueError
        if tp in (int, float, str):
            return tp(value)
        if origin in (tuple, list):
            items = json.loads(value) if value.strip().startswith("[") else [v for v in value.split(",") if v.strip()]
            inner = args[0] if args else str
            parsed = [_parse(str(v).strip(), inner, key) for v in items]
            return tuple(parsed) if origin is tuple else parsed
    except ValueError:
        raise ConfigError(f"{key}: cannot parse {value!r} as {getattr(tp, '__name__', tp)}") from None
    return value


def _check_type(value, tp, key):
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}")
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{key}: expected int, got {value!r}")
    if typing.get_origin(tp) is tuple and isinstance(value, list):
        return tuple(value)
    return value


def apply_overrides(cfg, overrides: Mapping[str, Any]):
    """A copy of dataclass ``cfg`` with ``overrides`` applied (dotted keys reach nested dataclasses)."""
    nested: dict[str, dict] = {}
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if isinstance(value, Mapping) and not rest:
            for k, v in value.items():
                nested.setdefault(head, {})[k] = v
        elif rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[head] = value
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    changes = {}
    for key in list(flat) + list(nested):
        if key not in fields:
            raise ConfigError(f"unknown config key {key!r} for {type(cfg).__name__}; valid: {sorted(fields)}")
    for key, value in flat.items():
        tp = hints[key]
        if dataclasses.is_dataclass(getattr(cfg, key)):
            raise ConfigError(f"{key} is a group; set its fields as {key}.<field>")
        changes[key] = _check_type(_parse(value, tp, key), tp, key)
    for key, sub in nested.items():
        inner = getattr(cfg, key)
        if not dataclasses.is_dataclass(inner):
            raise ConfigError(f"{key} is not a group of settings; use {key}=value")
        try:
            changes[key] = apply_overrides(inner, sub)
        except ValueError as e:
            raise ConfigError(f"{key}.{e}") from None
    return dataclasses.replace(cfg, **changes)


def parse_set_args(items: list[str]) -> dict[str, str]:
    """``["a=1", "b.c=x"]`` → ``{"a": "1", "b.c": "x"}``; an item without ``=`` raises ``ValueError``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def read_config_file(path: str | Path) -> dict:
    """Read a ``.toml`` or ``.json`` config file into a (possibly nested) dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    if path.suffix not in (".toml", ".json"):
        raise ConfigError(f"config file {path} must end in .toml or .json")
    if path.stat().st_size > 16 << 20:
        raise ConfigError(f"config file {path} is {path.stat().st_size} bytes; a config is at most 16 MiB")
    try:
        text = path.read_bytes().decode("utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError, RecursionError) as e:
        what = "UTF-8 text" if isinstance(e, UnicodeDecodeError) else f"valid {path.suffix[1:].upper()}"
        raise ConfigError(f"config file {path} is not {what}: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be an object, got {type(data).__name__}")
    return data


def to_dict(cfg) -> dict:
    """The config as a JSON-ready dict."""
    return dataclasses.asdict(cfg)


def _in_range(value, rule: str) -> bool:
    rule = rule.replace(" ", "")
    for op, test in (
        (">=", lambda v, b: v >= b),
        ("<=", lambda v, b: v <= b),
        (">", lambda v, b: v > b),
        ("<", lambda v, b: v < b),
    ):
        if rule.startswith(op):
            return test(value, float(rule[len(op) :]))
    lo, hi = rule[1:-1].split(",")
    ok_lo = value >= float(lo) if rule[0] == "[" else value > float(lo)
    ok_hi = value <= float(hi) if rule[-1] == "]" else value < float(hi)
    return ok_lo and ok_hi


def _check_value(key: str, value, rule) -> None:
    items = value if isinstance(value, (tuple, list)) else (value,)
    for v in items:
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{key}: must be a finite number, got {v!r}")
        if rule is None or v is None:
            continue
        if isinstance(rule, tuple):
            if v not in rule:
                raise ConfigError(f"{key}: {v!r} is not one of {list(rule)}")
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{key}: expected a number {rule}, got {v!r}")
        elif not _in_range(v, rule):
            raise ConfigError(f"{key}: must be {rule}, got {v!r}")


def choices(tp) -> tuple | None:
    """The values a ``Literal`` annotation allows (also inside ``tuple[Literal[...], ...]`` or ``Optional``)."""
    if typing.get_origin(tp) is typing.Literal:
        return typing.get_args(tp)
    for arg in typing.get_args(tp):
        if arg is not Ellipsis and arg is not type(None) and (found := choices(arg)) is not None:
            return found
    return None


def validate(cfg, prefix: str = "") -> None:
    """Check every field of ``cfg`` (and of its nested dataclasses) against its class's ``RULES`` and, for a
    field annotated with ``Literal`` choices, against those; every float for finiteness; then the class's
    ``cross_check()``. Raises :class:`ConfigError` naming the first bad key."""
    rules = getattr(type(cfg), "RULES", {})
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            validate(value, f"{prefix}{f.name}.")
        else:
            rule = rules.get(f.name)
            _check_value(prefix + f.name, value, rule if rule is not None else choices(hints[f.name]))
    check = getattr(cfg, "cross_check", None)
    if check is not None:
        try:
            check()
        except ConfigError as e:
            raise ConfigError(f"{prefix}{e}") from None

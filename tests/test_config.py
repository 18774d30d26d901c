"""Config overrides: presets, files and --set map onto dataclass fields with clear errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bioSNN.config import apply_overrides, parse_set_args, read_config_file


@dataclass(frozen=True)
class Inner:
    levels: int = 16
    noise: float = 0.0


@dataclass(frozen=True)
class Cfg:
    epochs: int = 1
    lr: float = 0.1
    name: str = "a"
    flag: bool = False
    bits: tuple[int, ...] = (2, 3)
    dataset: str | None = None
    inner: Inner = field(default_factory=Inner)


def test_string_values_are_parsed_by_field_type():
    c = apply_overrides(
        Cfg(), parse_set_args(["epochs=5", "lr=1e-3", "flag=true", "bits=1,4", "inner.levels=8", "dataset=none"])
    )
    assert c == Cfg(epochs=5, lr=1e-3, flag=True, bits=(1, 4), inner=Inner(levels=8), dataset=None)
    assert apply_overrides(Cfg(), {"bits": "[2, 5]"}).bits == (2, 5)


def test_file_values_keep_types(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("epochs = 3\nlr = 1\n[inner]\nnoise = 0.05\n")
    c = apply_overrides(Cfg(), read_config_file(f))
    assert c.epochs == 3 and c.lr == 1.0 and isinstance(c.lr, float) and c.inner.noise == 0.05


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"epoch": "3"}, "unknown config key 'epoch'"),
        ({"epochs": "three"}, "epochs: cannot parse"),
        ({"inner.levls": "3"}, "levls"),
        ({"flag": "maybe"}, "flag"),
        ({"epochs": 2.5}, "expected int"),
    ],
)
def test_bad_overrides_are_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        apply_overrides(Cfg(), overrides)


def test_bad_set_syntax_and_files(tmp_path):
    with pytest.raises(ValueError, match="key=value"):
        parse_set_args(["epochs"])
    (tmp_path / "bad.toml").write_text("epochs = = 3")
    with pytest.raises(ValueError, match="not valid TOML"):
        read_config_file(tmp_path / "bad.toml")
    with pytest.raises(FileNotFoundError):
        read_config_file(tmp_path / "none.toml")

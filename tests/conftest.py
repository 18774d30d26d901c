"""Shared fixtures.

Tests marked ``data`` read the real datasets from ``$BIOSNN_DATA``. Without it they are skipped locally;
under ``CI=true`` a missing data folder is an error, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    env = os.environ.get("BIOSNN_DATA")
    if not env or not Path(env).is_dir():
        msg = f"BIOSNN_DATA={env!r} is not a folder holding the real datasets"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (required under CI=true)")
        pytest.skip(msg)
    return Path(env)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """An empty user cache and no BIOSNN_DATA, so nothing outside tmp_path is read or written."""
    monkeypatch.delenv("BIOSNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "biosnn"

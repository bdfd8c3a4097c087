"""Fixtures of the view tests: the hand-made snapshots of the notebook tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.notebook.conftest import _snapshot


@pytest.fixture
def make_snapshot() -> Any:
    """Build a finished sweep's snapshot; keyword arguments replace fields."""
    return _snapshot

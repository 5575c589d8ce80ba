"""Shared test setup: quiet, offline defaults and the real-data mirror fixture."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("WANDB_MODE", "offline")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real-data mirror folder (MMRAY_DATA_MIRROR); CI must have it, elsewhere the test is skipped."""
    value = os.environ.get("MMRAY_DATA_MIRROR")
    if not value:
        if os.environ.get("CI") == "true":
            pytest.fail("MMRAY_DATA_MIRROR is not set on CI: .ci/run points it at ../shared/datasets")
        pytest.skip("MMRAY_DATA_MIRROR is not set: point it at ../shared/datasets to run real-data tests")
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        pytest.fail(f"MMRAY_DATA_MIRROR={value} is not a folder")
    return path

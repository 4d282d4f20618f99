"""The test material in ../shared (real clips, protocol files). Without it a test is
skipped, unless FROSTER_REQUIRE_SHARED is set (CI sets it): then it fails, so a run can
never pass by skipping the end-to-end tests."""

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def require(path: Path, what: str = "shared test material") -> Path:
    """`path`, or a skip (a failure under FROSTER_REQUIRE_SHARED) when it is absent."""
    if not path.exists():
        message = f"{what} not found at {path}"
        if os.environ.get("FROSTER_REQUIRE_SHARED"):
            pytest.fail(f"{message} (FROSTER_REQUIRE_SHARED is set)")
        pytest.skip(message)
    return path

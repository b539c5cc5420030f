"""The image checks: the `image` marker for the test that builds it in a root filesystem."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "image: runs the Dockerfile's steps in a Debian root filesystem (tests/lab)"
    )

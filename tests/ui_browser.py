"""Debian's Chromium, driven by Playwright through its executable (nothing downloaded).

scripts/system-deps.sh installs /usr/bin/chromium and the dev extra installs
Playwright; without either these tests skip (under CI=true they fail: there
both must be installed, and a skip would hide that the viewer went untested).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_playwright() -> None:
    """At a test module's top: Playwright, or a skip (a failure under CI=true)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        message = "playwright is not installed (the dev extra: pip install -e '.[dev]')"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)


def require_chromium() -> None:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (scripts/system-deps.sh installs Debian's chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Any]:
    """A fresh Chromium (its own throwaway profile), closed afterwards."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="eventstore-ui-profile-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=FLAGS,
            headless=True,
            viewport={"width": 1200, "height": 800},
        )
        try:
            yield context
        finally:
            context.close()

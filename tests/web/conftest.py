"""The headless Chromium every page test drives (Debian's ``chromium``, through Playwright)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.web._served import chromium, require_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium()
    require_playwright()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True)
        try:
            yield b
        finally:
            b.close()

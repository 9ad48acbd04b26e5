"""Headless Debian chromium driven by playwright (tests/test_browser.py; benchmarks may use it too).

``make test`` installs Debian's ``chromium`` with apt when it is missing; playwright drives that
binary (``executable_path``): ``playwright install`` is never needed, nothing is downloaded.
"""
from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic", "--disable-extensions",
        "--disable-default-apps", "--mute-audio", "--hide-scrollbars"]
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 1}


def launch(playwright):
    """Debian's chromium, headless."""
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed: `make test` installs Debian's chromium "
                           "(apt-get install -y chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


class Recorder:
    """What a page did since :meth:`reset`: requests to other hosts, failed requests, script URLs,
    JavaScript errors."""

    def __init__(self, page, base_url: str):
        self.base_url = base_url
        self.reset()
        page.on("request", self._request)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("pageerror", lambda e: self.problems.append(f"JavaScript exception: {e}"))
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console error: {m.text}"))

    def reset(self) -> None:
        self.problems: list[str] = []
        self.scripts: list[str] = []

    def _request(self, request) -> None:
        url = request.url
        if not url.startswith((self.base_url, "data:", "blob:", "about:")):
            self.problems.append(f"request to another host: {url}")
        if request.resource_type == "script":
            self.scripts.append(url)

    def _failed(self, request) -> None:
        # ERR_ABORTED: cancelled because the test moved on to the next page (the search worker's
        # files, the favicon), not a failure of the site
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed request: {request.url} ({request.failure})")

    def _response(self, response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

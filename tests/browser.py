"""Browser-test fixtures: the session ``app`` served by a real HTTP server in a thread (same test database
as the rest of the suite), and Debian's Chromium driven by Playwright.

Playwright never downloads a browser of its own here: the browser is /usr/bin/chromium (``bash scripts/test`` installs it).
Every browser test gets a fresh context and page; console errors (CSP violations included), uncaught
page errors, 5xx responses and server-side exceptions are collected and fail the test.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent / "e2e" / "artifacts"
PHONE = {"width": 390, "height": 844}

# Records Content-Security-Policy violations in the page (in addition to the console message Chromium
# logs for them), so a test can say exactly which directive was broken.
_CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                              " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


@dataclass
class LiveServer:
    url: str
    errors: list[str] = field(default_factory=list)

    def __call__(self, path: str = "/") -> str:
        return self.url + path


@pytest.fixture(scope="session")
def live_server(app):
    """The test app on http://127.0.0.1:<free port>, served by werkzeug in a background thread."""
    errors: list[str] = []

    def wsgi(environ, start_response):
        try:
            return app(environ, start_response)
        except Exception as exc:  # TESTING propagates exceptions: record them, then let werkzeug answer 500
            errors.append(f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}: {exc!r}")
            raise

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    live = LiveServer(url=f"http://127.0.0.1:{server.server_port}", errors=errors)
    yield live
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (bash scripts/test does it)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Phone:
    """A page at phone size plus what went wrong on it."""

    page: object
    live: LiveServer
    name: str
    console_errors: list[str] = field(default_factory=list)

    def goto(self, path: str):
        return self.page.goto(self.live(path))

    def login(self, user, password: str = PASSWORD) -> None:
        """Sign in through the real form, as a person would."""
        self.goto("/login")
        self.page.fill("input[name=username]", user.username)
        self.page.fill("input[name=password]", password)
        self.page.click("main form button[type=submit]")
        self.page.wait_for_url(self.live("/"))

    def open_menu(self) -> list[str]:
        """Open the ☰ menu; return the data-nav keys of its visible entries, in order."""
        self.page.click("#nav-menu > summary")
        self.page.wait_for_selector("#nav-menu[open] nav", state="visible")
        return self.page.eval_on_selector_all(
            "#nav-menu nav [data-nav]",
            "els => els.filter(e => e.offsetParent !== null).map(e => e.dataset.nav)")

    def nav_text(self, key: str) -> str:
        return self.page.inner_text(f'#nav-menu nav [data-nav="{key}"]').strip()

    def switch_language(self, label: str) -> None:
        with self.page.expect_navigation():
            self.page.click(f'form.lang button:text-is("{label}")')

    def problems(self, allow: str | None = None) -> list[str]:
        """Console errors, CSP violations, 5xx responses and server exceptions so far; ``allow`` is a
        regular expression for expected ones (e.g. a 422 the test provokes on purpose)."""
        csp = self.page.evaluate("() => window.__cspViolations || []")
        found = self.console_errors + [f"CSP: {v}" for v in csp] + [f"server: {e}" for e in self.live.errors]
        return [p for p in found if not (allow and re.search(allow, p))]

    def assert_clean(self, allow: str | None = None) -> None:
        """htmx 2 loaded from static/vendor, nothing wider than the phone, no problems."""
        # htmx is a deferred script: a selector can appear before it has run, so wait for it (bounded).
        try:
            self.page.wait_for_function("() => typeof window.htmx === 'object'", timeout=10_000)
        except Exception:  # noqa: BLE001  (reported by the assertion below)
            pass
        version = self.page.evaluate("() => typeof window.htmx === 'object' ? window.htmx.version : null")
        assert version, "static/vendor/htmx.min.js did not load (window.htmx undefined)"
        assert version.startswith("2."), f"htmx 2.x expected, got {version}"
        overflow = self.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than the phone screen"
        assert self.problems(allow) == []

    def screenshot(self, label: str = "") -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.name}{'-' + label if label else ''}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def phone(browser, live_server, request):
    """A fresh browser context at 390x844 (touch, mobile), one page, errors collected."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2,
                                  locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(10_000)
    context.add_init_script(_CSP_LISTENER)
    page = context.new_page()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    ph = Phone(page=page, live=live_server, name=name)
    page.on("console", lambda msg: ph.console_errors.append(f"console: {msg.text} ({msg.location})")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: ph.console_errors.append(f"page error: {exc}"))
    page.on("response", lambda resp: ph.console_errors.append(f"HTTP {resp.status}: {resp.url}")
            if resp.status >= 500 else None)
    live_server.errors.clear()
    yield ph
    from playwright.sync_api import Error as PlaywrightError
    try:
        ph.screenshot("last")  # the state the test ended in, passed or failed
    except PlaywrightError:
        pass  # the page is gone (crash, closed by the test): nothing to capture
    finally:
        context.close()

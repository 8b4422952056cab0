"""Browser fixtures (live_server, browser, phone) are a plugin loaded by tests/conftest.py
(tests/browser.py), so every module's browser tests share one Chromium per test process.
Do not import them into test modules: a second definition would start a second Playwright."""

"""The page shell in a real browser at phone size: sign-in form, ☰ menu per role, language switch,
htmx loaded under the Content-Security-Policy, no console errors."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def _zh(app, text: str) -> str:
    """The Chinese catalog's translation of ``text``; it must exist (the UI is Chinese first)."""
    from flask_babel import force_locale, gettext
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        translated = gettext(text)
    assert translated != text, f"no Chinese translation for {text!r} (portal/translations)"
    return translated


def test_login_page_chinese_by_default_and_language_switch(phone):
    resp = phone.goto("/login")
    assert resp.status == 200
    page = phone.page
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.inner_text("main h1").strip() == "登录"
    assert page.get_attribute("form.lang button[value=zh_Hans_CN]", "aria-pressed") == "true"

    phone.switch_language("EN")
    assert page.url == phone.live("/login")
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("main h1").strip() == "Sign in"
    assert page.inner_text("main form button[type=submit]").strip() == "Sign in"
    assert page.get_attribute("form.lang button[value=en]", "aria-pressed") == "true"

    phone.switch_language("中文")
    assert page.inner_text("main h1").strip() == "登录"
    assert page.get_attribute("html", "lang") == "zh-CN"
    phone.screenshot("login")
    phone.assert_clean()


def test_employee_signs_in_and_sees_employee_menu(phone, make, app):
    user = make.user(roles=("employee",), name="张三")
    phone.login(user)
    page = phone.page
    assert "张三" in page.inner_text("main h1")
    assert "张三" in page.inner_text("header .who")

    entries = phone.open_menu()
    assert entries[0] == "home.index"
    assert "accounts.password" in entries and "logout" in entries
    assert "accounts.users" not in entries, "an employee must not see account administration"
    assert "audit.index" not in entries, "an employee must not see the audit trail"
    assert phone.nav_text("home.index") == _zh(app, "Home")
    assert phone.nav_text("accounts.password") == _zh(app, "Change password")
    assert phone.nav_text("logout") == _zh(app, "Sign out")
    box = page.locator("#nav-menu nav").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"menu leaves the screen: {box}"
    phone.screenshot("menu")
    phone.assert_clean()

    # Sign out from the menu: back on the sign-in page, and the home page is closed again.
    with page.expect_navigation():
        page.click('#nav-menu [data-nav="logout"]')
    assert page.url.startswith(phone.live("/login"))
    phone.goto("/")
    assert page.url.startswith(phone.live("/login"))
    assert page.inner_text("main h1").strip() == "登录"
    phone.assert_clean()


def test_admin_menu_and_language_switch_when_signed_in(phone, make):
    admin = make.user(roles=("admin", "employee"), name="李四")
    phone.login(admin)
    page = phone.page

    entries = phone.open_menu()
    assert "accounts.users" in entries, "an administrator sees account administration"
    assert "audit.index" in entries, "an administrator sees the audit trail"
    assert entries.index("home.index") < entries.index("accounts.users")
    assert phone.nav_text("accounts.users") == "账号"
    phone.screenshot("admin-menu-zh")

    phone.switch_language("EN")
    assert page.url == phone.live("/")
    phone.open_menu()
    assert phone.nav_text("accounts.users") == "Accounts"
    assert phone.nav_text("home.index") == "Home"
    assert phone.nav_text("logout") == "Sign out"
    phone.screenshot("admin-menu-en")

    # The menu entry works in the chosen language.
    with page.expect_navigation():
        page.click('#nav-menu [data-nav="accounts.users"]')
    assert page.url == phone.live("/admin/users")
    assert page.get_attribute("html", "lang") == "en"

    # The choice is kept with the account: after signing out and in again the portal is still English.
    phone.open_menu()
    with page.expect_navigation():
        page.click('#nav-menu [data-nav="logout"]')
    phone.login(admin)
    assert page.get_attribute("html", "lang") == "en"

    phone.switch_language("中文")
    assert page.get_attribute("html", "lang") == "zh-CN"
    phone.open_menu()
    assert phone.nav_text("accounts.users") == "账号"
    phone.assert_clean()


def test_badge_refresh_does_not_close_an_open_menu(phone, make):
    """The unread badge refreshes itself over htmx; a menu the user opened stays open."""
    user = make.user(roles=("employee",))
    phone.login(user)
    page = phone.page
    phone.open_menu()
    with page.expect_response(lambda r: "/notifications/badge" in r.url):
        page.evaluate("() => htmx.ajax('GET', '/notifications/badge', "
                      "{source: '#inbox-badge', target: '#inbox-badge', swap: 'outerHTML'})")
    page.wait_for_timeout(100)  # let htmx settle the swap
    assert page.get_attribute("#nav-menu", "open") is not None
    phone.assert_clean()

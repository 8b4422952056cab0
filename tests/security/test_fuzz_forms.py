"""Bad input on every form (issue 9): for each POST route of ``app.url_map``, hypothesis sends the fields
the real form sends (crawled from the pages, or read from the view's WTForms classes when no page shows
the form in the seeded state) filled with random unicode, 100k-character strings, HTML/JS and SQL-looking
text, impossible dates and numbers, wrong choices, missing, doubled and unknown fields.

Every response: never a 500 or a traceback; a 4xx carries a visible message (field error or flash); no
payload comes back active (unescaped), neither in the answer nor on the pages that show what was stored.

One seeded world (demo company + one row of each kind) serves the whole module: the per-test truncation of
tests/conftest.py is switched off here and the module truncates once at the end (under pytest-xdist, pytest
tears the module fixture down, i.e. truncates, whenever a worker moves on to another module's test, and
seeds again when it comes back). Routes that destroy or
sign out run last. Examples per route are few, fixed (``derandomize``) and without deadline, so the module
stays inside its time budget and CI sees the same inputs every run.
"""
from __future__ import annotations

import io
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from tests.security import fuzz_support as fs

EXAMPLES = 4

# Run after the others: they delete, sign out or close what later routes need.
LAST = ("delete", "logout", "user_active", "complete", "cycle_state", "revoke", "publish", "send",
        "version_create", "resignation_submit", "termination_create", "user_roles", "person_edit")
ENDPOINTS = sorted(fs.static_post_endpoints(), key=lambda e: (any(w in e for w in LAST), e))


@pytest.fixture
def _clean_db():
    """Overrides tests/conftest.py's per-test truncation: the module shares one seeded world."""
    yield


@pytest.fixture(scope="module")
def env(app):
    fs.truncate(app)
    world = fs.seed_world(app)
    client = app.test_client()
    fs.login_admin(client, app, world)
    forms = fs.crawl_forms(client, app)
    yield world, forms
    fs.truncate(app)


def _check(resp, what: str) -> str:
    body = resp.get_data(as_text=True)
    assert resp.status_code < 500, f"{what}: {resp.status_code}\n{body[:2000]}"
    assert "Traceback (most recent call last)" not in body, f"{what}: traceback\n{body[:2000]}"
    hit = fs.active_payload(body)
    assert hit is None, f"{what}: payload came back active: ...{hit}..."
    return body


def _request_body(body, token):
    data = MultiDict()
    for key, value in body:
        if isinstance(value, tuple):
            data.add(key, (io.BytesIO(value[0]), value[1]))
        else:
            data.add(key, value)
    data.add("csrf_token", token)
    return data


def _local(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_every_post_route_is_fuzzed(app):
    """The parametrised list (built without the app at collection) is exactly the app's POST routes."""
    assert ENDPOINTS and set(ENDPOINTS) == {r.endpoint for r in fs.post_rules(app)}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_form_survives_bad_input(app, env, endpoint):
    world, forms = env
    rule = next(r for r in fs.post_rules(app) if r.endpoint == endpoint)
    form = forms.get(endpoint) or fs.introspect_form(app, endpoint, fs.build_path(app, rule))
    if "user_id" in rule.arguments:  # another account than the admin's own, whatever page showed the form
        form.action = fs.build_path(app, rule)
    client = app.test_client()
    seen = {"pages": set()}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(body=fs.form_data(form), htmx=st.booleans())
    def run(body, htmx):
        token = fs.login_admin(client, app, world)
        headers = {"HX-Request": "true"} if htmx else {}
        what = f"POST {form.action} ({endpoint}) htmx={htmx} body={[(k, str(v)[:80]) for k, v in body]}"
        resp = client.post(form.action, data=_request_body(body, token), headers=headers)
        text = _check(resp, what)
        if 400 <= resp.status_code < 500 and resp.status_code != 401:
            assert fs.has_clear_message(text), f"{what}: {resp.status_code} without a visible message\n" \
                                               f"{text[text.find('<main'):][:3000]}"
        target = _local(resp.headers.get("HX-Redirect") or (resp.headers.get("Location")
                                                             if 300 <= resp.status_code < 400 else None))
        if target and not target.startswith("/login"):
            seen["pages"].add(target)
            _check(client.get(target), f"GET {target} after {what}")

    # One fixed example on every route: each field holds a NUL and a script (PostgreSQL refuses NUL in
    # text: it must be a message, not a 500) next to the random ones.
    nul = [(name, "a\x00b<script>alert(1)</script>") for name in form.fields if name != "csrf_token"]
    example(body=nul or [("x", "\x00")], htmx=False)(run)()
    # The pages that show what the route stored: where the form lives, and where it sent us.
    fs.login_admin(client, app, world)
    for page in sorted(seen["pages"] | ({form.page} if form.page else set()))[:4]:
        _check(client.get(page), f"GET {page} after fuzzing {endpoint}")


def test_ids_too_large_for_the_database_are_not_found(app, env):
    """Every URL with an id, GET and POST: an id no INTEGER column can hold is a 404 with a message, never a
    database error."""
    from werkzeug.routing import IntegerConverter
    world, _forms = env
    client = app.test_client()
    token = fs.login_admin(client, app, world)
    checked = 0
    for rule in app.url_map.iter_rules():
        ints = [a for a in rule.arguments if isinstance(rule._converters.get(a), IntegerConverter)]
        if not ints:
            continue
        for huge in (2**31, 10**30):
            values = {a: (huge if a in ints else sorted(getattr(rule._converters[a], "items", ["x"]))[0])
                      for a in rule.arguments}
            path = "/" + "/".join(str(values.get(part[1:-1].split(":")[-1], part)) if part.startswith("<")
                                  else part for part in rule.rule.strip("/").split("/"))
            for method in sorted(rule.methods & {"GET", "POST"}):
                resp = client.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
                body = _check(resp, f"{method} {path}")
                # (405 where another rule of the same path takes the other method)
                assert resp.status_code in (404, 405) and fs.has_clear_message(body), \
                    f"{method} {path}: {resp.status_code}"
                checked += 1
    assert checked > 100


def test_no_page_shows_a_stored_payload_active(app, env):
    """After all the fuzzing, every page (lists, detail pages of seeded rows) renders without a 500 and
    with every stored payload escaped or sanitised (Markdown bodies go through nh3)."""
    world, _forms = env
    client = app.test_client()
    fs.login_admin(client, app, world)
    pages = sorted(set(fs.get_pages(app)) | set(fs.detail_pages(app)))
    for page in pages:
        _check(client.get(page), f"GET {page}")
    assert len(pages) > 50


MARKDOWN_ATTACKS = [*fs.XSS, "<iframe src=javascript:alert(1)></iframe>", "![x](javascript:alert(1))",
                    "<a href='javascript:alert(1)'>y</a>", "<img src=x onerror=alert(1)>",
                    "<div onclick=alert(1)>z</div>", "[c](JaVaScRiPt:alert(1))", "<form action=javascript:alert(1)>"]


def test_markdown_bodies_are_sanitised(app, env):
    """Lesson bodies are Markdown rendered to HTML (markdown-it + nh3): every attack is kept as typed and
    shown inert in the rendered preview, while the Markdown itself still renders."""
    from sqlalchemy import text

    from portal.core.db import db
    world, _forms = env
    client = app.test_client()
    token = fs.login_admin(client, app, world)
    with app.app_context():
        lesson_id = db.session.execute(text(
            "SELECT min(l.id) FROM training_lessons l JOIN training_course_versions v ON v.id = l.version_id "
            "WHERE v.status = 'draft'")).scalar()
        db.session.remove()
    body = "\n\n".join(MARKDOWN_ATTACKS) + "\n\n**粗体** 保留"
    resp = client.post(f"/training/studio/lessons/{lesson_id}", data={"csrf_token": token, "title": "Markdown 测试",
                                                                      "body": body})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    page = _check(client.get(_local(resp.headers["Location"])), "the lesson preview")
    preview = page[page.index('id="preview"'):]
    assert "<strong>粗体</strong>" in preview  # Markdown is rendered, not merely escaped
    assert "<iframe" not in preview and "<div onclick" not in preview

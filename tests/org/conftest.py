"""Helpers for the people & organisation tests: clients signed in with the English UI (the assertions
read English messages, whatever the translations say), CSRF-posting, audit lookups."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.core.audit import AuditEvent
from portal.core.db import db
from tests.conftest import csrf_token, login


@pytest.fixture
def signed_in(app):
    def _client(user):
        client = app.test_client()
        login(client, user)
        with client.session_transaction() as sess:
            sess["locale"] = "en"
        return client
    return _client


def post(client, path, data=None, **kw):
    """POST with a valid CSRF token (taken from the user's profile page)."""
    data = dict(data or {})
    data["csrf_token"] = csrf_token(client, "/me")
    return client.post(path, data=data, **kw)


def events(action):
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.id).execution_options(populate_existing=True)).all()


def text(resp) -> str:
    return resp.get_data(as_text=True)

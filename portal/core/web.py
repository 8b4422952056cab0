"""Request pipeline shared by every module: request id, access enforcement, security headers,
error pages (htmx-aware), template helpers."""
from __future__ import annotations

import datetime as dt
import logging
import uuid

from flask import Flask, abort, current_app, g, render_template, request
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, generate_csrf
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from portal.core.db import db, utcnow
from portal.core.security import access_of, can, effective_permissions
from portal.core.ui import is_partial_request, local, nav_for

log = logging.getLogger("portal")

PUBLIC_ENDPOINTS = {"static"}

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")


def current_request_id() -> str:
    """This request's id, made on first use: a request refused before our own before_request hooks
    run (CSRF is checked first) still gets one on its error page and in ``X-Request-ID``."""
    if "request_id" not in g:
        g.request_id = uuid.uuid4().hex[:16]
    return g.request_id


def check_view_access(app: Flask) -> None:
    """Refuse to start when a view has no access declaration (require / login_only / public)."""
    missing = [ep for ep, fn in app.view_functions.items()
               if ep not in PUBLIC_ENDPOINTS and access_of(fn) is None]
    if missing:
        raise RuntimeError(f"views without an access declaration: {sorted(missing)}")


ID_MAX = 2**31 - 1  # ids are INTEGER columns: 32 bits on PostgreSQL


class IdConverter(IntegerConverter):
    """``<int:...>`` in URLs holds row ids: a larger number than an id column can hold matches no route
    (404) instead of reaching the database (PostgreSQL "integer out of range", SQLite OverflowError: 500)."""

    def __init__(self, map, fixed_digits=0, min=None, max=ID_MAX, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = IdConverter  # before the blueprints add their rules

    @app.before_request
    def _request_id():
        g.request_id = uuid.uuid4().hex[:16]

    @app.before_request
    def _refuse_nul():
        # PostgreSQL cannot store or even compare text with a NUL (0x00) character: a pasted NUL in any
        # field or query parameter would end as a 500 at the first query. No input of the portal has a
        # use for it (uploaded files are not form fields), so refuse the request with a message.
        for values in (request.args, request.form):
            if any("\x00" in key or "\x00" in value for key, value in values.items(multi=True)):
                return error_page(400, _("The input contains a NUL character, which cannot be saved. Remove it and "
                                         "try again."))
        return None

    @app.before_request
    def _enforce_login():
        if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
            return None
        view = app.view_functions.get(request.endpoint)
        access = access_of(view)
        if access is None:  # cannot happen after check_view_access, but never fail open
            abort(403)
        if access[0] == "public":
            return None
        if not current_user.is_authenticated:
            from portal import login_manager
            return login_manager.unauthorized()
        return None

    @app.after_request
    def _headers(resp):
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        resp.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(self)"
        if request.is_secure:
            resp.headers["Strict-Transport-Security"] = "max-age=31536000"
        resp.headers["X-Request-ID"] = current_request_id()
        if current_user and getattr(current_user, "is_authenticated", False):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.errorhandler(CSRFError)
    def _csrf_error(exc):
        return error_page(400, _("Your session form expired or is invalid. Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.code in (401, 403, 404, 405, 409, 413, 429, 400):
            return error_page(exc.code, _message_for(exc.code, exc))
        return exc

    @app.errorhandler(Exception)
    def _server_error(exc):
        if isinstance(exc, HTTPException):
            return exc
        log.exception("unhandled error, request %s", g.get("request_id"))
        try:
            db.session.rollback()
        except Exception:  # the connection itself may be gone
            log.exception("rollback failed")
        if current_app.config.get("PROPAGATE_EXCEPTIONS_IN_TESTS"):
            raise exc
        return error_page(500, _("Something went wrong on our side. Nothing was saved."))

    app.jinja_env.globals.update(
        can=lambda perm, obj=None: can(current_user, perm, obj),
        nav_items=lambda: nav_for(current_user),
        csrf_token=generate_csrf,
        current_locale=lambda: str(get_locale()),
        request_id=current_request_id,
        now_local=lambda: local(utcnow()),
    )
    app.jinja_env.filters["localdt"] = _localdt
    app.jinja_env.filters["localdate"] = _localdate
    app.jinja_env.filters["tolocal"] = local


# Numeric CLDR patterns print the same in every locale: strftime on the company-time value gives Babel's
# text at a fraction of the cost (list pages format a few hundred times per request).
_NUMERIC_PATTERNS = {"yyyy-MM-dd HH:mm": "%Y-%m-%d %H:%M", "yyyy-MM-dd HH:mm:ss": "%Y-%m-%d %H:%M:%S",
                     "HH:mm": "%H:%M", "HH:mm:ss": "%H:%M:%S", "yyyy-MM-dd": "%Y-%m-%d", "MM-dd HH:mm": "%m-%d %H:%M"}


def _localdt(value, fmt: str = "yyyy-MM-dd HH:mm") -> str:
    if not value:
        return ""
    numeric = _NUMERIC_PATTERNS.get(fmt)
    if numeric is not None and isinstance(value, dt.datetime):
        return local(value).strftime(numeric)
    return format_datetime(value, fmt)


def _localdate(value) -> str:
    if not value:
        return ""
    return (local(value) if isinstance(value, dt.datetime) else value).strftime("%Y-%m-%d")


def _message_for(code: int, exc) -> str:
    return {
        400: _("The request could not be understood."),
        401: _("Please sign in."),
        403: _("You do not have permission to do this."),
        404: _("This page or record does not exist."),
        405: _("This action is not allowed this way."),
        409: _("Someone else changed this first. Reload and try again."),
        413: _("The upload is too large."),
        429: _("Too many attempts. Please wait and try again."),
    }.get(code, getattr(exc, "description", "") or _("Error"))


def error_page(code: int, message: str):
    from flask import make_response
    if is_partial_request():
        body = render_template("errors/_error.html", code=code, message=message)
        resp = make_response(body, code)
        resp.headers["HX-Retarget"] = "#messages"
        resp.headers["HX-Reswap"] = "innerHTML"
        return resp
    return make_response(render_template("errors/error.html", code=code, message=message), code)

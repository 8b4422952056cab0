"""Rendering helpers: full page vs htmx partial, flashes over htmx, pagination, navigation."""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from flask import current_app, get_flashed_messages, make_response, render_template, request, url_for
from sqlalchemy import func, select

from portal.core.db import db


def is_partial_request() -> bool:
    """htmx asked for a fragment (not a boosted navigation, not a history restore)."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-Boosted") != "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def render(page: str, partial: str | None = None, /, status: int = 200, **ctx: Any):
    """Render ``page`` or, for an htmx request, ``partial`` plus out-of-band flash messages.
    ``page`` and ``partial`` are positional-only, so ``page=`` can pass a paginated result to templates."""
    if partial and is_partial_request():
        body = render_template(partial, **ctx)
        body += render_template("_macros/flash_oob.html")
    else:
        body = render_template(page, **ctx)
    resp = make_response(body, status)
    resp.vary.add("HX-Request")
    return resp


def htmx_redirect(url: str):
    """Redirect that works for plain requests (303) and for htmx ones (HX-Redirect)."""
    from flask import redirect
    if request.headers.get("HX-Request") == "true":
        resp = make_response("", 204)
        resp.headers["HX-Redirect"] = url
        return resp
    return redirect(url, code=303)


# ---------------------------------------------------------------- pagination

@dataclass
class Page:
    items: Sequence[Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page)) if self.per_page else 1

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def url(self, page: int) -> str:
        args = request.args.to_dict()
        args["page"] = page
        return url_for(request.endpoint, **(request.view_args or {}), **args)


def page_arg(default_per_page: int = 25) -> tuple[int, int]:
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    try:
        per_page = min(200, max(5, int(request.args.get("per_page", default_per_page))))
    except ValueError:
        per_page = default_per_page
    return page, per_page


def paginate(stmt, page: int, per_page: int, scalars: bool = True) -> Page:
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(page, pages)
    q = stmt.limit(per_page).offset((page - 1) * per_page)
    items = db.session.scalars(q).all() if scalars else db.session.execute(q).all()
    return Page(items, page, per_page, total)


# ---------------------------------------------------------------- navigation

@dataclass
class NavItem:
    endpoint: str
    label: Any
    perm: str | None = None  # None: every signed-in user
    order: int = 100
    group: str = "main"


NAV: list[NavItem] = []


def register_nav(endpoint: str, label: Any, perm: str | None = None, order: int = 100,
                 group: str = "main") -> None:
    if not any(n.endpoint == endpoint for n in NAV):
        NAV.append(NavItem(endpoint, label, perm, order, group))
        NAV.sort(key=lambda n: n.order)


def nav_for(user) -> list[NavItem]:
    from portal.core.security import effective_permissions
    perms = effective_permissions(user)
    return [n for n in NAV if n.perm is None or n.perm in perms]


# ---------------------------------------------------------------- time display

def company_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


def local(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(company_tz())


def local_today() -> dt.date:
    return dt.datetime.now(company_tz()).date()

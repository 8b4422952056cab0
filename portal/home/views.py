"""Home dashboard (cards per role) and the health check."""
from __future__ import annotations

from flask import jsonify
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import text

from portal.core.db import db
from portal.core.security import effective_permissions, login_only, public
from portal.core.ui import register_nav, render
from portal.home import bp

register_nav("home.index", _l("Home"), None, order=0)

# Cards modules contribute: (permission or None, title, text, endpoint). Modules append to CARDS.
CARDS: list[tuple[str | None, object, object, str]] = []


def register_card(perm, title, text_, endpoint) -> None:
    CARDS.append((perm, title, text_, endpoint))


@bp.route("/")
@login_only
def index():
    perms = effective_permissions(current_user)
    cards = [c for c in CARDS if c[0] is None or c[0] in perms]
    roles = sorted((ur.role for ur in current_user.user_roles), key=lambda r: r.id)
    return render("home/index.html", cards=cards, roles=roles)


@bp.route("/healthz")
@public
def health():
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")

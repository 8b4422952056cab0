"""HR portal application factory."""
from __future__ import annotations

import importlib
from typing import Any

from flask import Flask, request, session
from flask_babel import Babel
from flask_htmx import HTMX
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import config as settings
from portal.core.db import db

# Blueprints are loaded from this explicit list (order = navigation order where it matters).
MODULES: tuple[str, ...] = (
    "portal.home",
    "portal.accounts",
    "portal.org",
    "portal.audit",
    "portal.notify",
    "portal.notices",
    "portal.attendance",
    "portal.performance",
    "portal.training",
    "portal.offboarding",
)

csrf = CSRFProtect()
babel = Babel()
htmx = HTMX()
login_manager = LoginManager()

LANGUAGES = {"zh_Hans_CN": "简体中文", "en": "English"}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(settings.INSTANCE),
        instance_relative_config=True,
        template_folder=str(settings.ROOT / "templates"),
        static_folder=str(settings.ROOT / "static"),
    )
    app.config.update(settings.from_env())
    if config:
        app.config.update(config)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(settings.ROOT / "portal" / "translations"))

    db.configure(app.config["DATABASE_URL"], echo=app.config.get("SQL_ECHO", False))

    proxies = {k: app.config[f"PROXY_FIX_{k.upper()}"] for k in ("for", "proto", "host")}
    if any(proxies.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies["for"], x_proto=proxies["proto"],
                                x_host=proxies["host"])

    csrf.init_app(app)
    htmx.init_app(app)
    babel.init_app(app, locale_selector=_select_locale, timezone_selector=lambda: app.config["TIMEZONE"])
    _init_login(app)

    from portal.core import web
    web.init_app(app)

    for name in MODULES:
        module = importlib.import_module(name)
        app.register_blueprint(module.bp)
        if hasattr(module, "init_app"):
            module.init_app(app)

    from portal import cli
    cli.init_app(app)
    import portal.models  # noqa: F401  (every mapper known before the first query, CLI included)

    web.check_view_access(app)

    @app.teardown_appcontext
    def _remove_session(exc):
        if exc is not None:
            db.session.rollback()
        db.session.remove()

    return app


def _select_locale() -> str:
    from flask import has_request_context
    if not has_request_context():
        return "zh_Hans_CN"
    user_locale = getattr(current_user, "locale", None) if current_user else None
    if user_locale in LANGUAGES:
        return user_locale
    chosen = session.get("locale")
    if chosen in LANGUAGES:
        return chosen
    return "zh_Hans_CN"


def _init_login(app: Flask) -> None:
    from portal.core.models import User
    from portal.core.ui import htmx_redirect

    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(token: str):
        from sqlalchemy import select
        if not token:
            return None
        user = db.session.scalar(select(User).where(User.session_token == token))
        if user is None or not user.is_active:
            return None
        return user

    @login_manager.unauthorized_handler
    def unauthorized():
        from flask import url_for, redirect
        target = url_for("accounts.login", next=request.full_path if request.method == "GET" else None)
        if request.headers.get("HX-Request") == "true":
            resp = htmx_redirect(target)
            resp.status_code = 401
            return resp
        return redirect(target)


__all__ = ["create_app", "MODULES", "LANGUAGES"]

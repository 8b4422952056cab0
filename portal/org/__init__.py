from flask import Blueprint

bp = Blueprint("org", __name__)

from portal.org import views  # noqa: E402,F401


def init_app(app) -> None:
    from portal.org.messages import STATUS_LABELS
    app.jinja_env.filters["status_label"] = lambda code: STATUS_LABELS.get(code, code)

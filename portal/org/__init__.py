from flask import Blueprint

bp = Blueprint("org", __name__)

from portal.org import views  # noqa: E402,F401

from flask import Blueprint

bp = Blueprint("attendance", __name__)

from portal.attendance import views  # noqa: E402,F401

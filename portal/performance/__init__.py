from flask import Blueprint

bp = Blueprint("performance", __name__)

from portal.performance import views  # noqa: E402,F401

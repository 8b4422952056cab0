from flask import Blueprint

bp = Blueprint("offboarding", __name__)

from portal.offboarding import views  # noqa: E402,F401

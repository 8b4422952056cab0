from flask import Blueprint

bp = Blueprint("training", __name__)

from portal.training import views  # noqa: E402,F401

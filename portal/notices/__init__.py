"""Formal notices (warnings, termination, policy changes) with a per-channel delivery record."""
from flask import Blueprint

bp = Blueprint("notices", __name__)

from portal.notices import views  # noqa: E402,F401

"""attendance pages."""
from __future__ import annotations

from portal.attendance import bp  # noqa: F401

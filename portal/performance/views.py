"""performance pages."""
from __future__ import annotations

from portal.performance import bp  # noqa: F401

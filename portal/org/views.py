"""People and organisation pages."""
from __future__ import annotations

from portal.org import bp  # noqa: F401

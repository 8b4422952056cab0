"""training pages."""
from __future__ import annotations

from portal.training import bp  # noqa: F401

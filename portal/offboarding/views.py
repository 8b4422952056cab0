"""offboarding pages."""
from __future__ import annotations

from portal.offboarding import bp  # noqa: F401

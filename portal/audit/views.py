"""Audit trail pages."""
from __future__ import annotations

from portal.audit import bp  # noqa: F401

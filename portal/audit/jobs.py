"""RQ job functions of the audit trail (enqueued every few seconds by the clock)."""
from __future__ import annotations

from portal.core import audit


def seal_pending() -> int:
    """Seal what is pending; safe to run twice or concurrently (sealers queue on the seal lock)."""
    return audit.seal()

"""Shared machinery used by every module (no business rules of one module live here)."""

"""training data model."""
from __future__ import annotations

"""Progress arithmetic exactly as DOMAIN.md "Definitions" says. Pure functions, Decimal throughout.

* KR progress: number/percentage = clamp((current - start) / (target - start), 0, 1); milestone =
  done / total (clamped); yes-no = 0 or 1.
* Objective progress = sum(w * p) / sum(w) over its own key results (w = KR weight) and its child
  objectives (w = the child's link weight, default 1). sum(w) = 0 gives None, shown as "—".
  A child objective whose own progress is None ("—") has nothing to contribute and is left out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Optional

ZERO, ONE = Decimal(0), Decimal(1)


def _d(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def clamp01(value: Decimal) -> Decimal:
    return max(ZERO, min(ONE, value))


def kr_progress(kind: str, start, target, current) -> Optional[Decimal]:
    """0..1, or None when it cannot be defined (target == start, no milestones)."""
    start, target, current = _d(start or 0), _d(target), _d(current or 0)
    if kind in ("number", "percentage"):
        if target == start:
            return None
        return clamp01((current - start) / (target - start))
    if kind == "milestone":
        if target <= 0:
            return None
        return clamp01(current / target)
    if kind == "yesno":
        return ONE if current >= 1 else ZERO
    raise ValueError(f"unknown key result kind {kind!r}")


@dataclass
class KRIn:
    id: int
    objective_id: int
    kind: str
    start: Decimal
    target: Decimal
    current: Decimal
    weight: Decimal


@dataclass
class ObjIn:
    id: int
    parent_id: Optional[int]
    link_weight: Decimal


@dataclass
class Result:
    kr: dict[int, Optional[Decimal]] = field(default_factory=dict)
    objective: dict[int, Optional[Decimal]] = field(default_factory=dict)


def weighted(parts: Iterable[tuple[Decimal, Optional[Decimal]]]) -> Optional[Decimal]:
    """sum(w * p) / sum(w) over (w, p) pairs with a defined p; None when sum(w) = 0."""
    num = den = ZERO
    for w, p in parts:
        if p is None:
            continue
        w = _d(w)
        num += w * p
        den += w
    if den == 0:
        return None
    return num / den


def compute(objectives: Iterable[ObjIn], krs: Iterable[KRIn]) -> Result:
    """Progress of every key result and every objective of a forest, in one pass (no queries).

    A parent missing from ``objectives`` is ignored (the child is a root here). Cycles in the parent
    links are refused by the services; here a cycle would only ever be visited once.
    """
    objectives = list(objectives)
    res = Result()
    own: dict[int, list[tuple[Decimal, Optional[Decimal]]]] = {o.id: [] for o in objectives}
    for kr in krs:
        p = kr_progress(kr.kind, kr.start, kr.target, kr.current)
        res.kr[kr.id] = p
        if kr.objective_id in own:
            own[kr.objective_id].append((_d(kr.weight), p))
    children: dict[int, list[ObjIn]] = {}
    for o in objectives:
        if o.parent_id in own and o.parent_id != o.id:
            children.setdefault(o.parent_id, []).append(o)

    visiting: set[int] = set()

    def visit(oid: int) -> Optional[Decimal]:
        if oid in res.objective:
            return res.objective[oid]
        if oid in visiting:
            return None
        visiting.add(oid)
        parts = list(own[oid])
        for child in children.get(oid, []):
            parts.append((_d(child.link_weight), visit(child.id)))
        res.objective[oid] = weighted(parts)
        visiting.discard(oid)
        return res.objective[oid]

    for o in objectives:
        visit(o.id)
    return res


def percent(p: Optional[Decimal]) -> Optional[Decimal]:
    """0..1 -> 0..100 with two decimals (None stays None)."""
    if p is None:
        return None
    return (p * 100).quantize(Decimal("0.01"))

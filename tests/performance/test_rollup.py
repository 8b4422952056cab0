"""Roll-up arithmetic exactly as DOMAIN.md "Definitions" says (pure functions, no database)."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from portal.performance.rollup import KRIn, ObjIn, compute, kr_progress, percent, weighted


@pytest.mark.parametrize("kind,start,target,current,expected", [
    ("number", 0, 100, 40, D("0.4")),
    ("number", 0, 100, 140, D(1)),          # clamped above
    ("number", 50, 100, 20, D(0)),          # clamped below
    ("number", 100, 60, 80, D("0.5")),      # decreasing target (cut cost from 100 to 60)
    ("percentage", 20, 80, 50, D("0.5")),
    ("milestone", 0, 4, 1, D("0.25")),      # done / total
    ("milestone", 0, 4, 4, D(1)),
    ("yesno", 0, 1, 0, D(0)),
    ("yesno", 0, 1, 1, D(1)),
])
def test_kr_progress(kind, start, target, current, expected):
    assert kr_progress(kind, D(start), D(target), D(current)) == expected


def test_kr_progress_undefined():
    assert kr_progress("number", D(5), D(5), D(5)) is None
    assert kr_progress("milestone", D(0), D(0), D(0)) is None


def kr(i, obj, kind, s, t, c, w):
    return KRIn(i, obj, kind, D(s), D(t), D(c), D(w))


def test_objective_is_weighted_mean_of_own_key_results():
    res = compute([ObjIn(1, None, D(1))], [
        kr(1, 1, "number", 0, 100, 50, 2),      # 0.5, w 2
        kr(2, 1, "milestone", 0, 4, 1, 1),      # 0.25, w 1
        kr(3, 1, "yesno", 0, 1, 1, 1),          # 1, w 1
    ])
    # (2*0.5 + 1*0.25 + 1*1) / 4 = 0.5625
    assert res.objective[1] == D("0.5625")
    assert percent(res.objective[1]) == D("56.25")


def test_zero_weight_key_result_does_not_count():
    res = compute([ObjIn(1, None, D(1))], [kr(1, 1, "number", 0, 10, 10, 1), kr(2, 1, "number", 0, 10, 0, 0)])
    assert res.objective[1] == D(1)


def test_all_zero_weights_is_dash_not_zero():
    res = compute([ObjIn(1, None, D(1)), ObjIn(2, None, D(1))],
                  [kr(1, 1, "number", 0, 10, 3, 0)])
    assert res.objective[1] is None  # Σw = 0
    assert res.objective[2] is None  # no key results at all
    assert percent(None) is None


def test_children_roll_up_with_link_weights():
    # company 1 <- team 2 (link w 3) <- individual 4 (link w 1); company 1 <- team 3 (link w 1)
    objs = [ObjIn(1, None, D(1)), ObjIn(2, 1, D(3)), ObjIn(3, 1, D(1)), ObjIn(4, 2, D(1))]
    krs = [kr(1, 2, "number", 0, 100, 100, 1),     # team 2 own: 1.0
           kr(2, 4, "milestone", 0, 2, 1, 1),      # individual 4: 0.5
           kr(3, 3, "yesno", 0, 1, 0, 1),          # team 3: 0
           kr(4, 1, "percentage", 0, 100, 80, 2)]  # company own: 0.8, w 2
    res = compute(objs, krs)
    assert res.objective[4] == D("0.5")
    assert res.objective[2] == D("0.75")  # (1*1 + 1*0.5) / 2
    assert res.objective[3] == D(0)
    # company: (2*0.8 + 3*0.75 + 1*0) / (2 + 3 + 1) = 3.85 / 6
    assert res.objective[1] == D("3.85") / D(6)


def test_child_with_zero_link_weight_and_dash_child_are_left_out():
    objs = [ObjIn(1, None, D(1)), ObjIn(2, 1, D(0)), ObjIn(3, 1, D(5))]
    krs = [kr(1, 1, "number", 0, 10, 4, 1), kr(2, 2, "number", 0, 10, 10, 1)]  # 3 has no KRs: "—"
    res = compute(objs, krs)
    assert res.objective[2] == D(1)
    assert res.objective[3] is None
    assert res.objective[1] == D("0.4")  # only its own key result counts


def test_parent_made_only_of_dash_children_is_dash():
    res = compute([ObjIn(1, None, D(1)), ObjIn(2, 1, D(1))], [])
    assert res.objective[1] is None


def test_weighted_helper():
    assert weighted([]) is None
    assert weighted([(D(1), None)]) is None
    assert weighted([(D(1), D(1)), (D(3), D(0))]) == D("0.25")

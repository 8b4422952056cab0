"""The alignment tree at scale: the page renders the roots and their first level (plus collapsed
summaries below), deeper content loads on demand from /okr/tree/node/<id> (htmx, "toggle once"), the roots
are paginated, and neither the statements nor the HTML of the page grow with the number of objectives."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import event, insert

from portal.core.db import db
from portal.performance import services
from portal.performance.models import Cycle, KeyResult, Objective
from tests.conftest import login
from tests.performance.helpers import build_org, open_cycle

HX = {"HX-Request": "true"}


def _client(app, user):
    c = app.test_client()
    login(c, user)
    return c


def _statements(fn) -> int:
    seen: list[str] = []

    def listener(conn, cursor, statement, *args):
        seen.append(statement)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        fn()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return len(seen)


def _size(html: str) -> int:
    """The length of the page's content, ids and counts ("200 aligned objective(s)") aside."""
    return len(re.sub(r"\d+", "0", html.split("<main")[1].split("</main>")[0]))


def _pct(html: str, title: str) -> str:
    """The percentage the progress bar labelled ``title`` shows."""
    m = re.search(r'aria-label="' + re.escape(title) + r'"><span class="[^"]*"></span></span>\s*'
                  r'<span class="perf-pct">([^<]*)</span>', html)
    assert m, title
    return m.group(1)


def _deep_tree(app, o, cycle):
    """公司目标 <- 研发部 team objective <- 子团队目标 (team, depth 2) <- 王开发's 深层目标 (depth 3), each with
    a key result; 子团队目标 also has a second individual objective of 王开发 (the KR half done)."""
    from portal.org.models import Department, Employee
    with app.app_context():
        cycle = db.session.get(Cycle, cycle.id)
        rd = db.session.get(Department, o.rd.id)
        dev = db.session.get(Employee, o.dev.id)
        comp = services.create_objective(o.hr_user, cycle, "company", "营收增长")
        team = services.create_objective(o.hr_user, cycle, "team", "交付新版本", department=rd, parent=comp)
        sub = services.create_objective(o.hr_user, cycle, "team", "子团队目标", department=rd, parent=team)
        services.add_key_result(o.hr_user, sub, "子团队关键结果", "number", "个", "0", "10", "1")
        deep = services.create_objective(o.mgr_user, cycle, "individual", "深层目标", owner=dev, parent=sub)
        kr = services.add_key_result(o.mgr_user, deep, "深层关键结果", "number", "个", "0", "100", "1")
        kr.current_value = Decimal(45)
        other = services.create_objective(o.mgr_user, cycle, "individual", "第二个深层目标", owner=dev,
                                          parent=sub, link_weight="3")
        kr2 = services.add_key_result(o.mgr_user, other, "第二个关键结果", "number", "个", "0", "8", "2")
        kr2.current_value = Decimal(2)
        db.session.commit()
        return comp.id, team.id, sub.id, deep.id, other.id


def test_page_stops_at_the_first_levels_and_a_node_loads_its_content(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    comp_id, team_id, sub_id, deep_id, _other = _deep_tree(app, o, cycle)
    hr = _client(app, o.hr_user)
    html = hr.get(f"/okr/tree?cycle={cycle.id}").get_data(as_text=True)
    # roots and their first level open; the level below as collapsed summaries that load on opening
    assert "营收增长" in html and "交付新版本" in html and "子团队目标" in html
    assert "深层目标" not in html and "子团队关键结果" not in html and "深层关键结果" not in html
    assert html.count("<details open") == 2
    m = re.search(r'<details\s+hx-get="/okr/tree/node/(\d+)" hx-trigger="toggle once" '
                  r'hx-target="find \.perf-lazy" hx-swap="outerHTML">', html)
    assert m and int(m.group(1)) == sub_id
    assert f'<a href="/okr/objectives/{sub_id}"' in html  # without JavaScript: the objective's own page
    # the partial: the node's key results and aligned objectives, collapsed again
    part = hr.get(f"/okr/tree/node/{sub_id}", headers=HX)
    body = part.get_data(as_text=True)
    assert part.status_code == 200 and "<html" not in body
    assert "子团队关键结果" in body and "深层目标" in body and "第二个深层目标" in body
    assert "深层关键结果" not in body and "<details open" not in body
    assert f'hx-get="/okr/tree/node/{deep_id}"' in body
    body = hr.get(f"/okr/tree/node/{deep_id}", headers=HX).get_data(as_text=True)
    assert "深层关键结果" in body


def test_the_partial_shows_the_numbers_of_the_objective_page(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    _c, _t, sub_id, deep_id, other_id = _deep_tree(app, o, cycle)
    hr = _client(app, o.hr_user)
    part = hr.get(f"/okr/tree/node/{sub_id}", headers=HX).get_data(as_text=True)
    page = hr.get(f"/okr/objectives/{sub_id}").get_data(as_text=True)
    for title in ("子团队关键结果", "深层目标", "第二个深层目标"):
        assert _pct(part, title) == _pct(page, title), title
    assert _pct(part, "深层目标") == "45%" and _pct(part, "第二个深层目标") == "25%"
    # and the roll-up of the node itself: the tree page shows what cycle_progress computes
    with app.app_context():
        _objs, _krs, res = services.cycle_progress(cycle.id)
        expected = services.rollup.percent(res.objective[sub_id])
    html = hr.get(f"/okr/tree?cycle={cycle.id}").get_data(as_text=True)
    assert expected == Decimal("24.00")  # (0 * 1 + 0.45 * 1 + 0.25 * 3) / (1 + 1 + 3), as DOMAIN.md defines
    assert _pct(html, "子团队目标") == "24%"


def test_an_employee_cannot_open_another_teams_node(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    _c, team_id, sub_id, deep_id, _o = _deep_tree(app, o, cycle)
    with app.app_context():
        from portal.org.models import Employee
        c = db.session.get(Cycle, cycle.id)
        theirs = services.create_objective(o.other_user, c, "individual", "销售目标",
                                           owner=db.session.get(Employee, o.other_user.employee_id))
        services.add_key_result(o.other_user, theirs, "销售关键结果", "number", "单", "0", "10", "1")
        db.session.commit()
        theirs_id = theirs.id
    dev, other = _client(app, o.dev_user), _client(app, o.other_user)
    mgr = _client(app, o.mgr_user)
    assert dev.get(f"/okr/tree/node/{theirs_id}", headers=HX).status_code == 404
    assert other.get(f"/okr/tree/node/{deep_id}", headers=HX).status_code == 404
    assert "销售关键结果" in other.get(f"/okr/tree/node/{theirs_id}", headers=HX).get_data(as_text=True)
    assert "深层关键结果" in dev.get(f"/okr/tree/node/{deep_id}", headers=HX).get_data(as_text=True)
    assert "深层关键结果" in mgr.get(f"/okr/tree/node/{deep_id}", headers=HX).get_data(as_text=True)
    # team objectives are visible to all, but their aligned individual objectives only within scope
    body = other.get(f"/okr/tree/node/{sub_id}", headers=HX).get_data(as_text=True)
    assert "子团队关键结果" in body and "深层目标" not in body
    assert dev.get("/okr/tree/node/999999", headers=HX).status_code == 404
    assert app.test_client().get(f"/okr/tree/node/{team_id}").status_code in (302, 401)


def _bulk_objectives(app, cycle_id: int, rows: list[dict], krs_each: int = 2) -> list[int]:
    if not rows:
        return []
    with app.app_context():
        ids = list(db.session.scalars(insert(Objective).returning(Objective.id, sort_by_parameter_order=True),
                                      [{"cycle_id": cycle_id, "status": "active", "link_weight": Decimal(1), **r}
                                       for r in rows]))
        if krs_each:
            db.session.execute(insert(KeyResult), [
                {"objective_id": i, "title": f"批量关键结果{i}-{k}", "kind": "number", "start_value": Decimal(0),
                 "target_value": Decimal(100), "current_value": Decimal(20 + k), "weight": Decimal(1),
                 "status": "active"} for i in ids for k in range(krs_each)])
        db.session.commit()
        return ids


def test_roots_are_paginated(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    n = services.TREE_ROOTS_PER_PAGE + 7
    _bulk_objectives(app, cycle.id, [{"level": "individual", "title": f"根目标{i:03d}", "owner_id": o.dev.id}
                                     for i in range(n)])
    hr = _client(app, o.hr_user)
    first = hr.get(f"/okr/tree?cycle={cycle.id}").get_data(as_text=True)
    second = hr.get(f"/okr/tree?cycle={cycle.id}&page=2").get_data(as_text=True)
    shown1 = set(re.findall(r">(根目标\d{3})<", first))
    shown2 = set(re.findall(r">(根目标\d{3})<", second))
    assert len(shown1) == services.TREE_ROOTS_PER_PAGE and len(shown2) == 7
    assert not shown1 & shown2 and len(shown1 | shown2) == n
    assert 'rel="next"' in first and f"page=2" in first and 'rel="prev"' in second


def _scale_company(app, o, cycle, n: int, deep: int | None = None):
    """公司目标 <- 2 team objectives <- n individual objectives each (2 KRs each), and a sub-team objective
    (depth 2) under the first team with ``deep`` (default n) individual objectives of its own (depth 3)."""
    deep = n if deep is None else deep
    comp, = _bulk_objectives(app, cycle.id, [{"level": "company", "title": "公司总目标"}])
    teams = _bulk_objectives(app, cycle.id, [{"level": "team", "title": f"团队{t}", "department_id": o.rd.id,
                                              "owner_id": o.mgr.id, "parent_id": comp} for t in range(2)])
    sub, = _bulk_objectives(app, cycle.id, [{"level": "team", "title": "子团队", "department_id": o.rd.id,
                                             "parent_id": teams[0]}])
    _bulk_objectives(app, cycle.id, [{"level": "individual", "title": f"个人{t}-{i}", "owner_id": o.dev.id,
                                      "department_id": o.rd.id, "parent_id": teams[t]}
                                     for t in range(2) for i in range(n)])
    _bulk_objectives(app, cycle.id, [{"level": "individual", "title": f"深层{i}", "owner_id": o.dev.id,
                                      "department_id": o.rd.id, "parent_id": sub} for i in range(deep)])
    return comp, teams, sub


def _cleanup(app, cycle_id):
    with app.app_context():
        from sqlalchemy import delete, select
        ids = select(Objective.id).where(Objective.cycle_id == cycle_id)
        db.session.execute(delete(KeyResult).where(KeyResult.objective_id.in_(ids)))
        db.session.execute(delete(Objective).where(Objective.cycle_id == cycle_id))
        db.session.commit()


@pytest.mark.parametrize("who", ["hr_user", "mgr_user", "dev_user"])
def test_statements_do_not_grow_with_the_objectives(app, make, who):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    client = _client(app, getattr(o, who))
    counts = {}
    for n in (10, 200):
        _comp, teams, sub = _scale_company(app, o, cycle, n)
        page = f"/okr/tree?cycle={cycle.id}"
        client.get(page)  # warm-up
        resp = client.get(page)
        assert resp.status_code == 200 and "个人0-0" in resp.get_data(as_text=True)
        counts[n] = (_statements(lambda: client.get(page)),
                     _statements(lambda: client.get(f"/okr/tree/node/{teams[1]}", headers=HX)),
                     _statements(lambda: client.get(f"/okr/tree/node/{sub}", headers=HX)),
                     _statements(lambda: client.get(f"/okr/tree/node/{sub}?offset=5", headers=HX)))
        _cleanup(app, cycle.id)
    assert counts[10] == counts[200], counts
    assert max(counts[200]) <= 16, counts


def test_the_page_html_does_not_grow_with_deeper_objectives(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    hr = _client(app, o.hr_user)
    sizes, partials = {}, {}
    for n in (10, 200):
        _comp, teams, sub = _scale_company(app, o, cycle, 5, deep=n)
        html = hr.get(f"/okr/tree?cycle={cycle.id}").get_data(as_text=True)
        assert "子团队" in html and "深层0" not in html
        sizes[n] = _size(html)
        part = hr.get(f"/okr/tree/node/{sub}", headers=HX).get_data(as_text=True)
        deep = set(re.findall(r">(深层\d+)<", part))
        assert len(deep) == min(n, services.TREE_CHILDREN)
        partials[n] = len(part)
        if n > services.TREE_CHILDREN:
            assert f'hx-get="/okr/tree/node/{sub}?offset={services.TREE_CHILDREN}"' in part
            more = hr.get(f"/okr/tree/node/{sub}?offset={services.TREE_CHILDREN}", headers=HX)
            rest = set(re.findall(r">(深层\d+)<", more.get_data(as_text=True)))
            assert len(rest) == services.TREE_CHILDREN and not rest & deep
        _cleanup(app, cycle.id)
    assert sizes[200] == sizes[10], sizes
    assert partials[200] < partials[10] * 3, partials


def test_an_open_node_shows_its_first_aligned_objectives_and_more(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    hr = _client(app, o.hr_user)
    sizes = {}
    for n in (services.TREE_CHILDREN, 200):
        _comp, teams, _sub = _scale_company(app, o, cycle, n, deep=0)
        html = hr.get(f"/okr/tree?cycle={cycle.id}").get_data(as_text=True)
        shown = re.findall(r">(个人1-\d+)<", html)
        assert len(shown) == services.TREE_CHILDREN, len(shown)
        sizes[n] = _size(html)
        more = f'hx-get="/okr/tree/node/{teams[1]}?offset={services.TREE_CHILDREN}"'
        assert (more in html) == (n > services.TREE_CHILDREN)
        _cleanup(app, cycle.id)
    assert sizes[200] < sizes[services.TREE_CHILDREN] + 500, sizes  # + the "show more" button


@pytest.mark.browser
def test_opening_a_node_loads_it_in_a_browser(phone, make, app):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    _c, _t, sub_id, deep_id, _o = _deep_tree(app, o, cycle)
    phone.login(o.hr_user)
    phone.goto(f"/okr/tree?cycle={cycle.id}")
    page = phone.page
    assert "深层目标" not in page.inner_text("main")
    page.click(f'details[hx-get="/okr/tree/node/{sub_id}"] > summary .tag')
    page.wait_for_selector(f'details[hx-get="/okr/tree/node/{deep_id}"]')
    assert "子团队关键结果" in page.inner_text("main")
    page.click(f'details[hx-get="/okr/tree/node/{deep_id}"] > summary .tag')
    page.wait_for_selector("text=深层关键结果")
    phone.assert_clean()


def test_the_objective_page_rolls_up_every_level_below(app, make):
    """The objective page shows the same progress as the tree (DOMAIN.md roll-up at any depth): for 交付新版本
    the aligned 子团队目标 counts with its own aligned objectives, not with its key result alone."""
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    _comp, team_id, sub_id, _deep, _other = _deep_tree(app, o, cycle)
    with app.app_context():
        _objs, _krs, res = services.cycle_progress(cycle.id)
        want_team = f"{services.rollup.percent(res.objective[team_id]):.0f}%"
        want_sub = f"{services.rollup.percent(res.objective[sub_id]):.0f}%"
    hr = _client(app, o.hr_user)
    page = hr.get(f"/okr/objectives/{team_id}").get_data(as_text=True)
    assert want_sub == "24%" and _pct(page, "子团队目标") == want_sub
    assert want_team == "24%"  # its only aligned objective; it has no key results of its own
    assert "24%" in page.split('class="perf-pct"', 1)[1][:40]


def test_my_okrs_reads_only_my_part_of_the_cycle(app, make):
    """/okr shows the employee's objectives with the roll-up of what is aligned below them; its statements
    do not grow with the rest of the company's objectives."""
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    _comp, _team, sub_id, _deep, _other = _deep_tree(app, o, cycle)
    mgr = _client(app, o.mgr_user)
    dev = _client(app, o.dev_user)
    counts = []
    for n in (5, 200):
        _bulk_objectives(app, cycle.id, [{"level": "individual", "title": f"别人的目标{n}-{i}",
                                          "owner_id": o.other_user.employee_id} for i in range(n)])
        mgr.get(f"/okr?cycle={cycle.id}")
        counts.append((_statements(lambda: mgr.get(f"/okr?cycle={cycle.id}")),
                       _statements(lambda: dev.get(f"/okr?cycle={cycle.id}"))))
    assert counts[0] == counts[1], counts
    html = dev.get(f"/okr?cycle={cycle.id}").get_data(as_text=True)
    assert _pct(html, "深层目标") == "45%" and _pct(html, "第二个深层目标") == "25%"
    assert "别人的目标" not in html


def test_the_tree_follows_every_change_of_the_cycle(app, make):
    """The tree reuses the cycle's roll-up between requests while nothing changed; a check-in, or even a
    change written straight to the database with the timestamps kept, shows on the next request."""
    from sqlalchemy import text
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    _comp, _team, sub_id, deep_id, _other = _deep_tree(app, o, cycle)
    hr = _client(app, o.hr_user)
    tree = f"/okr/tree?cycle={cycle.id}"
    assert _pct(hr.get(tree).get_data(as_text=True), "子团队目标") == "24%"
    assert _pct(hr.get(tree).get_data(as_text=True), "子团队目标") == "24%"  # from the cached roll-up
    with app.app_context():
        from portal.core.models import User
        from sqlalchemy import select
        kr = db.session.scalar(select(KeyResult).where(KeyResult.objective_id == deep_id))
        services.check_in(db.session.get(User, o.dev_user.id), kr, "95", "8", "快完成了")
        db.session.commit()
    # (0 + 0.95 + 0.25 * 3) / 5 = 34 %
    assert _pct(hr.get(tree).get_data(as_text=True), "子团队目标") == "34%"
    with app.app_context():  # as an attacker or a migration would: updated_at untouched
        db.session.execute(text("UPDATE perf_key_results SET current_value = 5 WHERE objective_id = :o"),
                           {"o": deep_id})
        db.session.commit()
    # (0 + 0.05 + 0.25 * 3) / 5 = 16 %
    assert _pct(hr.get(tree).get_data(as_text=True), "子团队目标") == "16%"
    with app.app_context():
        db.session.execute(text("UPDATE perf_objectives SET parent_id = NULL WHERE id = :o"), {"o": deep_id})
        db.session.commit()
    # 深层目标 no longer counts under 子团队目标: (0 + 0.25 * 3) / 4 = 18.75 %
    assert _pct(hr.get(tree).get_data(as_text=True), "子团队目标") == "19%"

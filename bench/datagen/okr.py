"""Step "okr": two OKR cycles (the previous quarter, closed, and the current one, open) with company,
team and individual objectives, key results (number, percentage, milestone, yes-no), weekly check-ins,
the monthly completion snapshots and the early warnings the daily scan raised.

Who has OKRs: a check-in can only be made by the objective's owner (``access.can_checkin``), so
individual objectives belong to people with an account (every head, HR, and the ``--user-share`` of
the other employees; ``--user-share 1`` gives everyone OKRs). Team objectives: one or two per department
headed by someone, owned and checked in by the head; company objectives are checked in by HR.

Volumes at 10,000 employees (1,510 accounts; measured with seed 1), both cycles together: 8 company,
~3,000 team (one or two per headed department) and ~6,000 individual objectives (1-3 per account holder;
~3 % of the open cycle's still wait for approval), 27,000 key results (2-4 each; 12,400 milestones),
204,000 check-ins (each owner checks in all their key results in a weekly session, with a personal
diligence of 55-100 %), 7,400 monthly completions and 3,900 early warnings. (The warning rule on quarterly
cycles flags many people: a quarter's progress is naturally below 70 % in its first two months.)

Consistency with the module: check-in rows are what ``services.check_in`` writes (previous value, new
value, ``rollup.kr_progress``, the company-time month, milestone titles done); a key result's current value
and its milestones are those of its last check-in; ``perf_monthly_completion`` is
``services.employee_completion`` recomputed after every check-in session with ``rollup`` (the month's last
check-in wins); ``perf_warnings`` are what ``services.scan_warnings`` raises for each finished month with
the configured threshold/months/drop. ``verify`` recomputes a sample with the performance service.
"""
from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal

from bench.common import log
from bench.datagen import gen_now, local_dt, num

COMPANY_OBJECTIVES = ("营收同比增长25%，利润率提升2个百分点", "客户满意度达到行业前列", "核心系统稳定性与交付效率显著提升",
                      "打造高绩效组织，关键岗位人才梯队完备", "降本增效：运营成本下降8%")
TEAM_TITLES = ("完成季度业务目标", "提升交付质量与效率", "优化团队协作流程", "拓展重点客户与渠道", "降低运营成本",
               "提升客户满意度", "完善团队人才培养", "推进数字化改造")
INDIVIDUAL_TITLES = ("完成个人业绩指标", "提升专业能力", "按期交付负责的项目", "改进工作质量", "支持团队协作",
                     "开拓新客户", "优化负责的流程", "完成关键技能认证")
KR_TEMPLATES = (  # kind, title, unit, start, target (numbers: a range), weight
    ("number", "新签合同金额", "万元", 0, (50, 500)), ("number", "完成需求/任务数", "件", 0, (10, 60)),
    ("number", "客户拜访次数", "次", 0, (20, 120)), ("number", "缺陷数量降至", "个", (30, 80), (5, 20)),
    ("percentage", "按时交付率", "%", (60, 80), (90, 99)), ("percentage", "客户满意度", "%", (70, 85), (90, 98)),
    ("percentage", "自动化测试覆盖率", "%", (20, 50), (70, 90)),
    ("milestone", "项目里程碑", "", 0, 0), ("yesno", "通过岗位认证考试", "", 0, 1),
    ("yesno", "完成流程文档并评审通过", "", 0, 1),
)
MILESTONES = ("需求评审", "方案设计", "开发完成", "测试通过", "上线发布", "复盘总结")
COMMENTS = ("", "", "", "按计划推进", "本周进展顺利", "有风险，需要协调资源", "客户反馈良好", "已完成阶段目标",
            "进度略有滞后", "下周重点跟进")
KR_WEIGHTS = (Decimal(1), Decimal(1), Decimal(1), Decimal(2), Decimal("0.5"))

OBJ_COLS = ["id", "cycle_id", "level", "title", "description", "owner_id", "department_id", "parent_id",
            "link_weight", "status", "created_by_id", "approved_by_id", "approved_at", "created_at", "updated_at"]
KR_COLS = ["id", "objective_id", "title", "kind", "unit", "start_value", "target_value", "current_value", "weight",
           "status", "created_by_id", "created_at", "updated_at"]
MS_COLS = ["id", "key_result_id", "title", "position", "done", "done_at", "done_by_id"]
CI_COLS = ["id", "key_result_id", "employee_id", "user_id", "month", "previous_value", "value", "progress",
           "confidence", "comment", "milestones_done", "created_at"]
TABLES = ["perf_cycles", "perf_objectives", "perf_key_results", "perf_milestones", "perf_checkins",
          "perf_monthly_completion", "perf_warnings"]


class KR:
    __slots__ = ("id", "obj", "kind", "title", "unit", "start", "target", "current", "weight", "status", "goal",
                 "milestones", "done_at", "done_by", "created")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def _quarter(d: dt.date) -> tuple[int, int]:
    return d.year, (d.month - 1) // 3 + 1


def _prev_quarter(y: int, q: int) -> tuple[int, int]:
    return (y, q - 1) if q > 1 else (y - 1, 4)


def load(ctx) -> None:
    from flask import current_app

    from portal.performance import rollup, services

    co, loader, tz = ctx.company, ctx.loader, ctx.tz
    N = num(loader)
    rng = random.Random(co.seed + 40)
    end = co.end
    now = gen_now(ctx)
    hr_users = co.hr_user_ids or [None]
    by_user = {p.user_id: p for p in co.people if p.user_id}
    cy, cq = _quarter(end)
    py_, pq = _prev_quarter(cy, cq)
    cycles = []
    for cid, (y, q, status) in enumerate(((py_, pq, "closed"), (cy, cq, "open")), start=1):
        name, s, e = services.cycle_dates("quarter", y, q)
        opened = local_dt(tz, s - dt.timedelta(days=7), 10 * 60)
        closed = local_dt(tz, e + dt.timedelta(days=10), 17 * 60) if status == "closed" else None
        if closed is not None and closed > now:
            closed = now
        cycles.append({"id": cid, "name": name, "start": s, "end": e, "status": status, "opened": opened,
                       "closed": closed})
    loader.load("perf_cycles", ["id", "name", "kind", "start_date", "end_date", "status", "checkin_day",
                                "checkin_frequency", "checkin_weekday", "response_days", "opened_at", "closed_at",
                                "created_at", "updated_at"],
                [(c["id"], c["name"], "quarter", c["start"], c["end"], c["status"], 25, "weekly", 4, 7, c["opened"],
                  c["closed"], c["opened"] - dt.timedelta(days=3), c["closed"] or c["opened"]) for c in cycles])

    # who heads what; departments by id
    depts = {d.id: d for d in co.depts}
    owners = [p for p in co.people if p.user_id and p.status != "left" and "employee" in p.roles]
    objs: list[tuple] = []
    krs: list[KR] = []
    ms_rows: list[tuple] = []
    obj_owner: dict[int, object] = {}  # objective id -> Person (None for company)
    obj_level: dict[int, str] = {}
    obj_meta: dict[int, tuple] = {}  # id -> (cycle, parent, link_weight, status)
    ids = {"obj": 0, "kr": 0, "ms": 0}

    def new_obj(cycle, level, title, owner, dept_id, parent, status, created, creator):
        ids["obj"] += 1
        oid = ids["obj"]
        lw = Decimal(1) if level != "individual" or rng.random() < 0.8 else Decimal(2)
        approved = (creator, created) if status == "active" else (None, None)
        objs.append((oid, cycle["id"], level, title, "", owner.id if owner else None, dept_id, parent, N(lw), status,
                     creator, approved[0], approved[1], created, created))
        obj_owner[oid], obj_level[oid] = owner, level
        obj_meta[oid] = (cycle["id"], parent, lw, status)
        return oid

    def new_krs(oid, created, creator, pending_share=0.0, k=None):
        for _ in range(k or rng.randint(2, 4)):
            kind, title, unit, s, t = rng.choice(KR_TEMPLATES)
            ids["kr"] += 1
            if kind == "milestone":
                n = rng.randint(3, 6)
                names = list(MILESTONES[:n])
                start, target = Decimal(0), Decimal(n)
            elif kind == "yesno":
                names, start, target = [], Decimal(0), Decimal(1)
            else:
                names = []
                start = Decimal(rng.randint(*s) if isinstance(s, tuple) else s)
                target = Decimal(rng.randint(*t))
                if target == start:
                    target += 1
            status = "pending" if rng.random() < pending_share else "active"
            krs.append(KR(id=ids["kr"], obj=oid, kind=kind, title=title, unit=unit, start=start, target=target,
                          current=start, weight=rng.choice(KR_WEIGHTS), status=status, goal=0.0,
                          milestones=names, done_at={}, done_by={}, created=(created, creator)))

    for cycle in cycles:
        current = cycle["status"] == "open"
        hr_uid = hr_users[0]
        made = local_dt(tz, cycle["start"] - dt.timedelta(days=5), 10 * 60)
        company = [new_obj(cycle, "company", t, None, None, None, "active", made, hr_uid)
                   for t in rng.sample(COMPANY_OBJECTIVES, 4)]
        for oid in company:
            new_krs(oid, made, hr_uid, k=3)
        team_of: dict[int, list[int]] = {}
        for d in co.depts:  # parents first (departments are created top-down)
            head = co.person(d.head_id) if d.head_id else None
            if head is None or not head.user_id or d.level == 0:
                continue
            parents = team_of.get(d.parent_id) or company
            when = made + dt.timedelta(days=1 + d.level, minutes=rng.randint(0, 600))
            team_of[d.id] = []
            for t in rng.sample(TEAM_TITLES, 1 if rng.random() < 0.6 else 2):
                oid = new_obj(cycle, "team", f"{d.name}：{t}", head, d.id, rng.choice(parents), "active", when,
                              head.user_id)
                team_of[d.id].append(oid)
                new_krs(oid, when, head.user_id)
        for p in owners:
            if p.hire_date > cycle["end"] - dt.timedelta(days=20):
                continue  # joined too late for this cycle
            dept_objs = team_of.get(p.dept_id) or team_of.get(depts[p.dept_id].parent_id) or company
            when = max(made + dt.timedelta(days=5, minutes=rng.randint(0, 3000)),
                       local_dt(tz, p.hire_date + dt.timedelta(days=7), 10 * 60))
            mgr = co.person(p.manager_id) if p.manager_id else None
            approver = mgr.user_id if mgr and mgr.user_id else hr_uid
            for t in rng.sample(INDIVIDUAL_TITLES, rng.choice((1, 2, 2, 3))):
                # proposed by the employee: active once the manager approved; a few still wait (open cycle)
                pending = current and rng.random() < 0.03
                oid = new_obj(cycle, "individual", t, p, p.dept_id, rng.choice(dept_objs),
                              "pending" if pending else "active", when, p.user_id)
                if not pending:  # approved later by the manager (the approver is the one recorded)
                    objs[-1] = objs[-1][:11] + (approver, when + dt.timedelta(hours=rng.randint(2, 48))) + objs[-1][13:]
                new_krs(oid, when, p.user_id, pending_share=0.03 if current and not pending else 0.0)
    kr_by_obj: dict[int, list[KR]] = {}
    for k in krs:
        kr_by_obj.setdefault(k.obj, []).append(k)

    # ---- check-ins: weekly sessions per owner (company objectives: HR)
    ci_next = [0]
    monthly: dict[tuple[int, dt.date], tuple[object, dt.datetime]] = {}
    sessions: dict[tuple[int, int], list[int]] = {}  # (cycle, owner person id or 0) -> objective ids
    for oid, (cid, _parent, _lw, status) in obj_meta.items():
        if status != "active":
            continue
        owner = obj_owner[oid]
        sessions.setdefault((cid, owner.id if owner else 0), []).append(oid)
    cycles_by_id = {c["id"]: c for c in cycles}

    def checkins():
        for (cid, pid), oids in sorted(sessions.items()):
            cycle = cycles_by_id[cid]
            srng = random.Random(co.seed * 7919 + cid * 100_003 + pid)
            p = co.person(pid) if pid else None
            uid = p.user_id if p else hr_users[0]
            diligence = srng.uniform(0.55, 1.0)
            r = srng.random()
            perf = srng.uniform(0.25, 0.6) if r < 0.1 else min(1.1, max(0.3, srng.gauss(0.85, 0.15)))
            active_krs = [k for oid in oids for k in kr_by_obj.get(oid, ()) if k.status == "active"]
            for k in active_krs:
                k.goal = max(0.0, min(1.15, perf + srng.gauss(0, 0.12)))
            # weekly periods from the Monday of the cycle's first week; the session is on Thursday/Friday
            anchor = cycle["start"] - dt.timedelta(days=cycle["start"].weekday())
            wk = 0
            weeks = ((cycle["end"] - anchor).days // 7) + 1
            last_at = None
            while True:
                day = anchor + dt.timedelta(days=7 * wk + srng.choice((3, 4, 4, 4, 5)))
                wk += 1
                if day > cycle["end"] or day > co.end or wk > weeks + 1:
                    break
                if day < cycle["start"] or srng.random() > diligence:
                    continue
                last_at = None
                at = local_dt(tz, day, 16 * 60 + srng.random() * 150)
                frac = min(1.0, (day - cycle["start"]).days / max(1, (cycle["end"] - cycle["start"]).days))
                for k in active_krs:
                    obj_created = k.created[0]
                    if at <= obj_created + dt.timedelta(hours=48):
                        continue
                    at = at + dt.timedelta(seconds=srng.randint(20, 90))
                    prev = k.current
                    target_p = max(0.0, k.goal * frac + srng.gauss(0, 0.03))
                    if k.kind == "milestone":
                        done = min(len(k.milestones), int(target_p * len(k.milestones) + 0.2))
                        done = max(done, int(prev))
                        v = Decimal(done)
                        for i in range(int(prev), done):
                            k.done_at[i], k.done_by[i] = at, uid
                    elif k.kind == "yesno":
                        v = Decimal(1) if (prev == 1 or (target_p >= 0.9 and srng.random() < 0.5)) else Decimal(0)
                    else:
                        raw = float(k.start) + min(target_p, 1.1) * float(k.target - k.start)
                        v = Decimal(round(raw, 1 if k.kind == "percentage" else 0))
                        if (k.target > k.start and v < prev) or (k.target < k.start and v > prev):
                            v = prev  # progress is not undone
                    k.current = v
                    progress = rollup.kr_progress(k.kind, k.start, k.target, v)
                    conf = max(1, min(10, int(round(10 * min(1.0, k.goal)) + srng.randint(-2, 1))))
                    ci_next[0] += 1
                    titles = json.dumps(k.milestones[:int(v)], ensure_ascii=False) if k.kind == "milestone" else ""
                    month = at.astimezone(tz).date().replace(day=1)
                    yield (ci_next[0], k.id, p.id if p else None, uid, month, N(prev), N(v),
                           N(progress) if progress is not None else None, conf, srng.choice(COMMENTS), titles, at)
                    last_at = at
                if p is not None and last_at is not None:
                    # the session's last check-in fixes the month's completion (record_month)
                    if any(obj_level[o] == "individual" for o in oids):
                        comp = _completion(rollup, [o for o in oids if obj_level[o] == "individual"], obj_meta,
                                           kr_by_obj)
                        month = last_at.astimezone(tz).date().replace(day=1)
                        key = (p.id, month)
                        if key not in monthly or monthly[key][1] <= last_at:
                            monthly[key] = (comp, last_at)

    loader.load("perf_objectives", OBJ_COLS, objs)
    log(f"  okr: {len(objs):,} objectives, {len(krs):,} key results; check-ins ...")
    # check-ins change the key results' current values: generate them first, then write the key results
    ci_rows = list(checkins())
    loader.load("perf_key_results", KR_COLS,
                [(k.id, k.obj, k.title, k.kind, k.unit, N(k.start), N(k.target), N(k.current), N(k.weight),
                  k.status, k.created[1], k.created[0], k.created[0]) for k in krs])
    for k in krs:
        for i, title in enumerate(k.milestones):
            ids["ms"] += 1
            done = i < int(k.current)
            ms_rows.append((ids["ms"], k.id, title, i, done, k.done_at.get(i) if done else None,
                            k.done_by.get(i) if done else None))
    loader.load("perf_milestones", MS_COLS, ms_rows)
    with loader.bulk_mode(["perf_checkins"]) as bulk:  # PostgreSQL: index rebuild + one FK check after
        loader.load("perf_checkins", CI_COLS, ci_rows)
    ctx.report["okr_bulk_mode"] = bulk
    mc_rows = [(i + 1, eid, month, N(comp) if comp is not None else None, at)
               for i, ((eid, month), (comp, at)) in enumerate(sorted(monthly.items()))]
    loader.load("perf_monthly_completion", ["id", "employee_id", "month", "completion", "last_checkin_at"], mc_rows)

    # ---- early warnings: services.scan_warnings for every finished month, the day after it ended
    cfg = current_app.config
    n_months = max(1, int(cfg.get("PERF_WARN_MONTHS", 2)))
    threshold = Decimal(str(cfg.get("PERF_WARN_THRESHOLD", 70)))
    drop = Decimal(str(cfg.get("PERF_WARN_DROP", 20)))
    by_emp: dict[int, dict[dt.date, object]] = {}
    for (eid, month), (comp, _at) in monthly.items():
        by_emp.setdefault(eid, {})[month] = comp
    months = sorted({m for _e, m in monthly})
    last_finished = services.add_months(co.end.replace(day=1), -1)
    if (co.end + dt.timedelta(days=1)).day == 1:
        last_finished = co.end.replace(day=1)
    warn_rows = []
    ctx.okr_warnings = []
    for month in [m for m in months if m <= last_finished]:
        first = services.add_months(month, -max(n_months - 1, 1))
        created = local_dt(tz, services.add_months(month, 1), 7 * 60 + rng.random() * 10)
        for eid in sorted(by_emp):
            ms = {m: c for m, c in by_emp[eid].items() if first <= m <= month}
            if ms.get(month) is None:
                continue
            reasons = []
            run = [ms.get(services.add_months(month, -i)) for i in range(n_months)]
            if all(c is not None and c < threshold for c in run):
                reasons.append("low")
            prev = ms.get(services.add_months(month, -1))
            if prev is not None and prev - ms[month] > drop:
                reasons.append("drop")
            if reasons:
                data = {"months": {f"{m:%Y-%m}": f"{c:.2f}" if c is not None else None for m, c in sorted(ms.items())},
                        "threshold": str(threshold), "consecutive": n_months, "drop": str(drop)}
                warn_rows.append((len(warn_rows) + 1, eid, month, ",".join(reasons),
                                  json.dumps(data, ensure_ascii=False), created))
                ctx.okr_warnings.append((len(warn_rows), eid, month, data, created))
    loader.load("perf_warnings", ["id", "employee_id", "month", "reasons", "data", "created_at"], warn_rows)
    loader.reset_sequences(TABLES)
    ctx.okr = {"cycles": cycles, "warn": (n_months, threshold, drop)}
    ctx.report["okr"] = {"objectives": len(objs), "key_results": len(krs), "checkins": len(ci_rows),
                         "monthly_completion": len(mc_rows), "warnings": len(warn_rows)}


def _completion(rollup, oids, obj_meta, kr_by_obj):
    """services.employee_completion from the values in memory (active objectives and key results)."""
    objs = [rollup.ObjIn(o, None, obj_meta[o][2]) for o in oids if obj_meta[o][3] == "active"]
    ks = [rollup.KRIn(k.id, k.obj, k.kind, k.start, k.target, k.current, k.weight)
          for o in oids for k in kr_by_obj.get(o, ()) if k.status == "active"]
    res = rollup.compute(objs, ks)
    c = rollup.percent(rollup.weighted((o.link_weight, res.objective.get(o.id)) for o in objs))
    return c


def verify(ctx, sample: int = 200) -> dict:
    """Compare stored completions and key result values with the performance service."""
    from sqlalchemy import func, select

    from portal.core.db import db
    from portal.performance import services
    from portal.performance.models import CheckIn, KeyResult, MonthlyCompletion, Objective
    rng = random.Random(ctx.company.seed + 41)
    db.session.rollback()
    checked = mismatched = 0
    examples = []
    open_cycle = next(c for c in ctx.okr["cycles"] if c["status"] == "open")
    # 1) the latest month's completion of each sampled owner = employee_completion now (no check-in since)
    rows = db.session.execute(select(MonthlyCompletion.employee_id, MonthlyCompletion.month,
                                     MonthlyCompletion.completion, MonthlyCompletion.last_checkin_at)
                              .order_by(MonthlyCompletion.id)).all()
    latest: dict[int, tuple] = {}
    for eid, month, comp, at in rows:
        if eid not in latest or latest[eid][2] < at:
            latest[eid] = (month, comp, at)
    eids = sorted(latest)
    for eid in rng.sample(eids, min(sample, len(eids))):
        month, comp, at = latest[eid]
        cyc = next((c for c in ctx.okr["cycles"] if c["start"] <= at.astimezone(ctx.tz).date() <= c["end"]), None)
        if cyc is None:
            continue
        got = services.employee_completion(eid, cyc["id"])
        checked += 1
        if (got is None) != (comp is None) or (got is not None and abs(Decimal(got) - Decimal(comp)) > Decimal("0.01")):
            mismatched += 1
            if len(examples) < 5:
                examples.append({"employee_id": eid, "month": str(month), "stored": str(comp), "module": str(got)})
    # 2) a key result's current value is its last check-in's value
    ids = db.session.scalars(select(KeyResult.id).join(Objective).where(Objective.cycle_id == open_cycle["id"])
                             .order_by(KeyResult.id)).all()
    for kid in rng.sample(list(ids), min(sample, len(ids))):
        kr = db.session.get(KeyResult, kid)
        last = db.session.scalar(select(CheckIn).where(CheckIn.key_result_id == kid)
                                 .order_by(CheckIn.created_at.desc(), CheckIn.id.desc()).limit(1))
        checked += 1
        want = last.value if last else kr.start_value
        if Decimal(kr.current_value) != Decimal(want):
            mismatched += 1
            if len(examples) < 5:
                examples.append({"key_result": kid, "current": str(kr.current_value), "last_checkin": str(want)})
    # 3) the roll-up of the whole open cycle computes (the tree page's work)
    objs, krs_, res = services.cycle_progress(open_cycle["id"])
    defined = sum(1 for v in res.objective.values() if v is not None)
    n_ci = db.session.scalar(select(func.count()).select_from(CheckIn))
    db.session.rollback()
    return {"checked": checked, "mismatched": mismatched, "examples": examples,
            "open_cycle_objectives": len(objs), "with_progress": defined, "checkins": n_ci}

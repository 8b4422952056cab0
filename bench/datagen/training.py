"""Step "training": trainers, versioned courses (lessons, question banks, exam rules, policies),
assignments to the whole company, divisions and positions, the enrollments they produced (new hires
enrolled by the sync job), and what the learners with an account did: lesson progress and learning time,
exam attempts with their frozen questions and graded answers, signed policy acknowledgements and
completions; the due-date reminders of the open enrollments.

Volumes at 10,000 employees (1,510 accounts; measured with seed 1): 40 courses (5 of them policies) with
70 versions, 325 lessons, 1,100 questions, 70 assignments, 90,600 enrollments (everyone gets the 3
company-wide policy courses; divisions and positions the rest), of which 14,300 belong to account holders
(13,100 completed, 700 in progress), 71,000 lesson-progress rows, 22,000 exam attempts with 205,000
attempt items, 14,500 completions, 5,600 signed acknowledgements (signature rows + their audit events),
43,000 reminders. Employees without an account cannot learn online: their enrollments stay "assigned"
(and show as overdue in the reports).

Consistency with the module: questions are drawn per exam rule, options shuffled and the correct answer
kept in shown terms as ``exams._freeze`` does; every item is graded with ``exams.grade_item`` and the
attempt's score / pass are ``exams.finalise``'s; an enrollment is completed only when
``learning.requirements`` are met (all lessons, a passed attempt, the acknowledgement of the exact policy
text), with the Completion row pinned to the version and the best passed attempt. A policy course's new
version (employee handbook v2, published during the history) re-opens the completed enrollments as
``assign.on_publish`` does; the earlier completions and acknowledgements stay as history.
Acknowledgement signatures are computed with ``learning.ack_content`` / ``signatures.content_hash`` and
their audit events are sealed by ``audit.seal`` (step "audit"). ``verify`` recomputes a sample with the
module (``learning.requirements``, grading, ``learning.verify_acknowledgement``).
"""
from __future__ import annotations

import datetime as dt
import json
import random
from types import SimpleNamespace

from bench.common import log
from bench.datagen import gen_now, add_roles, ip_of, js, local_dt

POLICIES = (  # title, policy name, versions
    ("员工手册学习与确认", "员工手册"), ("信息安全管理制度", "信息安全管理制度"),
    ("绩效管理制度培训", "绩效管理制度"), ("反舞弊与廉洁从业制度", "反舞弊与廉洁从业制度"),
    ("考勤与休假管理制度", "考勤与休假管理制度"),
)
TOPICS = ("新员工入职培训", "安全生产基础", "客户沟通技巧", "大客户销售方法", "项目管理实务", "Python 编程入门",
          "数据分析基础", "质量管理体系 ISO9001", "消防安全知识", "财务报销流程", "合同法律风险防范", "高效会议与协作",
          "领导力基础", "产品知识：智能仓储系统", "供应链风险管理", "客服服务规范", "代码评审规范", "云平台运维实践",
          "数据安全与个人信息保护", "时间管理", "跨部门沟通", "招聘面试技巧", "商务礼仪", "采购合规", "物流运输安全",
          "设备操作规程", "市场推广策略", "用户体验设计基础", "网络安全意识", "Excel 数据处理", "演讲与表达",
          "团队建设", "质量问题分析（8D）", "精益生产", "新产品发布培训")
CATEGORIES = ("基础知识", "制度条款", "案例分析")
LESSON_WORDS = ("概述", "基本要求", "操作流程", "常见问题", "案例讲解", "总结与自测")
EXAM_COLS = ["id", "enrollment_id", "version_id", "user_id", "number", "started_at", "deadline_at", "submitted_at",
             "closed_by", "correct", "total", "score", "passed"]
ITEM_COLS = ["id", "attempt_id", "question_id", "position", "category", "kind", "prompt", "options", "option_map",
             "correct", "exact", "explanation", "answer", "answered_at", "is_correct"]
ENR_COLS = ["id", "course_id", "employee_id", "version_id", "assignment_id", "status", "due_at", "assigned_at",
            "started_at", "completed_at", "best_score", "passed", "learning_seconds"]
LP_COLS = ["id", "enrollment_id", "lesson_id", "first_opened_at", "last_seen_at", "seconds", "completed_at"]
ACK_COLS = ["id", "enrollment_id", "employee_id", "user_id", "course_id", "version_id", "policy_name",
            "policy_version", "policy_hash", "signature_id", "signed_at"]
COMP_COLS = ["id", "enrollment_id", "employee_id", "course_id", "version_id", "completed_at", "score", "attempt_id",
             "acknowledgement_id", "learning_seconds"]
REM_COLS = ["id", "user_id", "subject_type", "subject_id", "kind", "next_at", "deadline", "repeat_seconds",
            "template_key", "context", "channels", "link", "sent_count", "created_at", "done_at"]
TABLES = ["training_courses", "training_course_versions", "training_lessons", "training_questions",
          "training_exam_rules", "training_assignments", "training_enrollments", "training_lesson_progress",
          "training_attempts", "training_attempt_items", "training_acknowledgements", "training_completions"]
GRACE = dt.timedelta(seconds=30)


def _question(rng, course_title, cat, i):
    kind = rng.choice(("single", "single", "single", "multiple", "truefalse", "fill"))
    prompt = f"【{cat}】关于“{course_title}”，第 {i} 题：下列说法{'正确的是' if kind != 'truefalse' else '是否正确？'}"
    if kind == "single":
        options = [f"选项{c}：{course_title}要点{i}-{c}" for c in "ABCD"]
        correct = [rng.randrange(4)]
    elif kind == "multiple":
        options = [f"选项{c}：{course_title}要点{i}-{c}" for c in "ABCDE"]
        correct = sorted(rng.sample(range(5), rng.randint(2, 3)))
    elif kind == "truefalse":
        options, correct = [], [rng.random() < 0.5]
        prompt = f"【{cat}】判断：{course_title}的第 {i} 条要求适用于全体员工。"
    else:
        options = [f"答案{i}", f"答案 {i}"]
        correct = []
        prompt = f"【{cat}】填空：{course_title}中规定的第 {i} 项关键词是____。"
    return kind, prompt, options, correct


def _freeze(q, rng):
    """exams._freeze: shown options, option map and the correct answer in shown terms."""
    kind, options, correct = q["kind"], q["options"], q["correct"]
    if kind in ("single", "multiple"):
        order = list(range(len(options)))
        rng.shuffle(order)
        return [options[i] for i in order], order, sorted(order.index(i) for i in correct)
    if kind == "truefalse":
        return ["true", "false"], [0, 1], [0 if correct and correct[0] else 1]
    return [], [], list(options)


def _answer(kind, shown, correct, right, rng):
    if kind == "fill":
        return correct[0] if right else "不记得"
    n = len(shown)
    if right:
        return list(correct)
    if kind == "multiple":
        wrong = sorted(rng.sample(range(n), rng.randint(1, 3)))
        return wrong if wrong != correct else sorted(set(range(n)) - set(correct))[:1]
    others = [i for i in range(n) if i not in correct]
    return [rng.choice(others)]


def load(ctx) -> None:
    from portal.training import exams, learning
    from portal.training.models import CourseVersion
    from portal.training.services import policy_hash

    co, loader, tz, ev = ctx.company, ctx.loader, ctx.tz, ctx.evidence
    J = js(loader)
    rng = random.Random(co.seed + 50)
    now = gen_now(ctx)
    start, end = co.start, co.end

    # ---- trainers: two account holders of the HR division without the HR role (else other employees)
    hr_div = co.division_index("人力资源中心")
    cands = [p for p in co.people if p.user_id and "hr" not in p.roles and "admin" not in p.roles
             and p.status == "active" and not p.head_level]
    cands.sort(key=lambda p: (p.division != hr_div, p.id))
    trainers = cands[:2] or [p for p in co.people if p.user_id][:1]
    add_roles(ctx, [(p.user_id, "trainer") for p in trainers if "trainer" not in p.roles])
    trainer_uids = [p.user_id for p in trainers]
    hr_uid = co.hr_user_ids[0] if co.hr_user_ids else trainer_uids[0]

    # ---- courses, versions, lessons, questions, rules
    n_courses = max(8, min(40, len(co.people) // 250))
    titles = [("policy", t, pn) for t, pn in POLICIES] + [("course", t, "") for t in TOPICS]
    titles = titles[:n_courses]
    courses, versions, lessons, questions, rules = [], [], [], [], []
    course_info = []
    vid = lid = qid = rid = 0
    for cid, (ctype, title, pname) in enumerate(titles, start=1):
        author = rng.choice(trainer_uids)
        made = local_dt(tz, start - dt.timedelta(days=rng.randint(60, 400)), 10 * 60)
        n_versions = 2 if cid == 1 else rng.choice((1, 1, 2, 3))
        bank: dict[str, list[dict]] = {}
        cats = CATEGORIES[:rng.choice((2, 3))]
        for cat in cats:
            for i in range(rng.randint(8, 14)):
                qid += 1
                kind, prompt, options, correct = _question(rng, title, cat, i + 1)
                q = {"id": qid, "kind": kind, "options": options, "correct": correct, "category": cat,
                     "prompt": prompt, "exact": False, "explanation": "参见课程第 2 课。"}
                bank.setdefault(cat, []).append(q)
                questions.append((qid, cid, cat, kind, prompt, J(options), J(correct), False, q["explanation"], True,
                                  made, made))
        vlist = []
        for number in range(1, n_versions + 1):
            vid += 1
            if cid == 1 and number == 2:  # the handbook's new version, published during the history
                published = local_dt(tz, start + dt.timedelta(days=(end - start).days // 2), 11 * 60)
            else:
                published = made + dt.timedelta(days=7 + 30 * (number - 1))
            status = "published" if number == n_versions else "retired"
            policy = (pname, f"{2024 + number - 1}版", f"# {pname}\n\n第一条 为规范公司管理，制定本制度（{number} 版）。\n\n"
                      f"第二条 本制度适用于公司全体员工。\n\n第三条 违反本制度的，按《员工奖惩办法》处理。") \
                if ctype == "policy" else ("", "", "")
            pass_mark = rng.choice((60, 70, 80))
            v = {"id": vid, "course_id": cid, "number": number, "published": published, "pass_mark": pass_mark,
                 "time_limit": rng.choice((0, 900, 1200, 1800)), "max_attempts": rng.choice((0, 3, 3, 5)),
                 "cooloff": rng.choice((0, 600, 3600)), "policy": policy, "lessons": [], "rules": {}}
            versions.append((vid, cid, number, status, title,
                             f"{title}：课程说明。", *policy, pass_mark, v["time_limit"], v["max_attempts"],
                             v["cooloff"], "when_done", author, published - dt.timedelta(days=2), published, author))
            for pos, word in enumerate(LESSON_WORDS[:rng.randint(3, 6)]):
                lid += 1
                v["lessons"].append(lid)
                lessons.append((lid, vid, pos, f"第{pos + 1}课 {word}",
                                f"## {word}\n\n本课介绍{title}的{word}。\n\n- 要点一\n- 要点二\n- 要点三\n"))
            for cat in cats:
                count = min(len(bank[cat]), rng.choice((3, 4, 5)))
                rid += 1
                v["rules"][cat] = count
                rules.append((rid, vid, cat, count))
            obj = CourseVersion(id=vid, course_id=cid, number=number, policy_name=policy[0],
                                policy_version=policy[1], policy_text=policy[2])
            v["obj"], v["hash"] = obj, policy_hash(obj)
            vlist.append(v)
        courses.append((cid, f"C{cid:03d}", title, author, False, None, made, vlist[-1]["published"]))
        course_info.append({"id": cid, "type": ctype, "title": title, "versions": vlist, "bank": bank})
    loader.load("training_courses", ["id", "code", "title", "created_by_id", "archived", "current_version_id",
                                     "created_at", "updated_at"], courses)
    loader.load("training_course_versions", ["id", "course_id", "number", "status", "title", "description",
                                             "policy_name", "policy_version", "policy_text", "pass_mark",
                                             "time_limit_seconds", "max_attempts", "cooloff_seconds", "show_answers",
                                             "created_by_id", "created_at", "published_at", "published_by_id"],
                versions)
    from sqlalchemy import bindparam, update

    from portal.training.models import Course
    with loader.engine.begin() as conn:
        conn.execute(update(Course).where(Course.id == bindparam("cid")).values(current_version_id=bindparam("vid")),
                     [{"cid": c["id"], "vid": c["versions"][-1]["id"]} for c in course_info])
    loader.load("training_lessons", ["id", "version_id", "position", "title", "body_md"], lessons)
    loader.load("training_questions", ["id", "course_id", "category", "kind", "prompt", "options", "correct",
                                       "exact", "explanation", "active", "created_at", "updated_at"], questions)
    loader.load("training_exam_rules", ["id", "version_id", "category", "count"], rules)

    # ---- assignments: 3 policies for everyone, the rest to divisions / positions
    depts_by_parent: dict = {}
    for d in co.depts:
        depts_by_parent.setdefault(d.parent_id, []).append(d.id)

    def subtree(did):
        out, todo = [], [did]
        while todo:
            x = todo.pop()
            out.append(x)
            todo.extend(depts_by_parent.get(x, ()))
        return set(out)

    divisions = [d for d in co.depts if d.level == 1]
    assignments = []
    span = max(1, (end - start).days - 10)
    for c in course_info:
        cid = c["id"]
        first_pub = c["versions"][0]["published"] if cid == 1 else c["versions"][-1]["published"]
        if c["type"] == "policy" and cid <= 3:
            targets = [("department", co.depts[0].id, None)]
        elif c["type"] == "policy":
            targets = [("department", rng.choice(divisions).id, None)]
        else:
            targets = [("department", d.id, None) for d in rng.sample(divisions, rng.choice((1, 1, 2)))]
            if rng.random() < 0.2:
                targets.append(("position", rng.randint(1, len(co.positions)), None))
        for tt, tid, _ in targets:
            day = start + dt.timedelta(days=rng.randint(0, span // 3 if cid == 1 else span))
            created = max(local_dt(tz, day, 10 * 60), first_pub + dt.timedelta(days=1))
            due = created.astimezone(tz).date() + dt.timedelta(days=rng.choice((14, 30, 30, 45)))
            assignments.append({"id": len(assignments) + 1, "course": c, "type": tt, "target": tid,
                                "created": created, "due": due, "new_hire_days": 30,
                                "by": rng.choice(trainer_uids + [hr_uid])})
    loader.load("training_assignments", ["id", "course_id", "target_type", "target_id", "include_subdepartments",
                                         "due_date", "new_hire_days", "active", "created_by_id", "created_at",
                                         "revoked_at"],
                [(a["id"], a["course"]["id"], a["type"], a["target"], True, a["due"], a["new_hire_days"], True,
                  a["by"], a["created"], None) for a in assignments])

    # ---- enrollments and learning
    ctx.training_notes = []  # (at, user_id, template, context, related, link, dedupe)
    ids = {k: 0 for k in ("enr", "lp", "att", "item", "ack", "comp", "rem")}
    enrolled: set[tuple[int, int]] = set()

    def due_at_for(day):
        return dt.datetime.combine(day, dt.time(23, 59, 59), tz).astimezone(dt.timezone.utc)

    def learn(out, e, v, p, t0, rng_, finish_by):
        """One pass through version ``v`` from ``t0``: lessons, exam attempts, acknowledgement. Returns
        (completed_at or None, started_at, seconds, best attempt (id, score) or None, ack id)."""
        secs = 0
        t = t0
        n_lessons = len(v["lessons"])
        goal = n_lessons if finish_by else rng_.randint(0, n_lessons)
        for i, lesson_id in enumerate(v["lessons"][:goal]):
            s = rng_.randint(240, 1500)
            ids["lp"] += 1
            opened = t + dt.timedelta(minutes=rng_.randint(1, 60))
            e["first"] = e.get("first") or opened
            done_at = opened + dt.timedelta(seconds=s + rng_.randint(5, 60))
            if done_at > now - dt.timedelta(minutes=1):  # not done yet: the rest is the future
                goal = i
                break
            out["lp"].append((ids["lp"], e["id"], lesson_id, opened, done_at, s, done_at))
            secs += s
            t = done_at + (dt.timedelta(hours=rng_.randint(1, 30)) if rng_.random() < 0.4 else dt.timedelta(0))
        if goal < n_lessons:
            if goal and t < now - dt.timedelta(minutes=10):  # opened the next lesson, not finished
                ids["lp"] += 1
                s = rng_.randint(30, 400)
                s = min(s, int((now - t).total_seconds()) - 60)
                out["lp"].append((ids["lp"], e["id"], v["lessons"][goal], t, t + dt.timedelta(seconds=s), s, None))
                e["first"] = e.get("first") or t
                secs += s
            return None, secs, None, None, t
        best = None
        has_exam = any(v["rules"].values())
        if has_exam:
            skill = rng_.uniform(0.55, 0.98)
            tries = 0
            while True:
                tries += 1
                if v["max_attempts"] and tries > v["max_attempts"]:
                    return None, secs, None, None, t
                started = t + dt.timedelta(minutes=rng_.randint(2, 90))
                if tries > 1 and v["cooloff"]:
                    started = max(started, t + dt.timedelta(seconds=v["cooloff"] + rng_.randint(60, 7200)))
                if started > now - dt.timedelta(minutes=5):
                    return None, secs, None, None, t
                ids["att"] += 1
                aid = ids["att"]
                deadline = started + dt.timedelta(seconds=v["time_limit"]) if v["time_limit"] else None
                drawn = []
                for cat in sorted(v["rules"]):
                    drawn.extend(rng_.sample(course_bank[cat], v["rules"][cat]))
                rng_.shuffle(drawn)
                timeout = deadline is not None and rng_.random() < 0.04
                took = (v["time_limit"] * rng_.uniform(0.3, 0.9)) if v["time_limit"] else rng_.randint(300, 1500)
                at = started
                correct = 0
                for pos, q in enumerate(drawn, start=1):
                    shown, omap, corr = _freeze(q, rng_)
                    at = at + dt.timedelta(seconds=took / len(drawn))
                    answered = not (timeout and pos > len(drawn) * 0.7)
                    ans = _answer(q["kind"], shown, corr, rng_.random() < skill, rng_) if answered else None
                    item = SimpleNamespace(kind=q["kind"], correct=corr, exact=q["exact"], answer=ans)
                    ok = exams.grade_item(item)
                    correct += ok
                    ids["item"] += 1
                    out["items"].append((ids["item"], aid, q["id"], pos, q["category"], q["kind"], q["prompt"],
                                         J(shown), J(omap), J(corr), q["exact"], q["explanation"], J(ans),
                                         at if answered else None, ok))
                total = len(drawn)
                score = round(100 * correct / total) if total else 0
                passed = score >= v["pass_mark"]
                submitted = deadline + GRACE if timeout else at + dt.timedelta(seconds=rng_.randint(5, 60))
                out["att"].append((aid, e["id"], v["id"], p.user_id, e["attempts"] + 1, started, deadline, submitted,
                                   "timeout" if timeout else "submit", correct, total, score, passed))
                e["attempts"] += 1
                e["best"] = score if e["best"] is None else max(e["best"], score)
                e["passed"] = e["passed"] or passed
                t = submitted
                if passed and (best is None or score > best[1]):
                    best = (aid, score)
                if passed:
                    break
                skill = min(0.99, skill + 0.1)  # studied again before the next attempt
                if rng_.random() < (0.15 if not finish_by else 0.03):  # gave up for now
                    return None, secs, None, None, t
        ack = None
        if v["policy"][0]:
            signed = t + dt.timedelta(minutes=rng_.randint(1, 30))
            if signed > now - dt.timedelta(minutes=5):
                return None, secs, best, None, t
            ids["ack"] += 1
            content = learning.ack_content(None, v["obj"], p.id, p.user_id)
            sid, h = ev.sign(p.user_id, p.emp_no.lower(), p.name, "training.policy_ack",
                             ("training_enrollments", e["id"]), content, signed, ip_of(p))
            out["ack"].append((ids["ack"], e["id"], p.id, p.user_id, v["course_id"], v["id"], v["policy"][0],
                               v["policy"][1], v["hash"], sid, signed))
            ev.event(signed, p.user_id, p.emp_no.lower(), "training.policy_acknowledged",
                     ("training_acknowledgements", ids["ack"]),
                     {"enrollment_id": e["id"], "version_id": v["id"], "policy_hash": v["hash"], "signature_id": sid,
                      "content_hash": h}, ip_of(p))
            ack = ids["ack"]
            t = signed
        return t, secs, best, ack, t

    out = {"enr": [], "lp": [], "att": [], "items": [], "ack": [], "comp": [], "rem": []}
    people = [p for p in co.people]
    for a in assignments:
        c = a["course"]
        course_bank = c["bank"]
        if a["type"] == "department":
            group = subtree(a["target"])
            members = [p for p in people if p.dept_id in group]
        else:
            members = [p for p in people if p.position_id == a["target"]]
        a_day = a["created"].astimezone(tz).date()
        for p in members:
            if (c["id"], p.id) in enrolled:
                continue
            if p.exit_date is not None and p.exit_date < a_day:
                continue
            if p.hire_date > end:
                continue
            if p.hire_date > a_day:  # enrolled by the sync job when they joined
                assigned = local_dt(tz, p.hire_date, 6 * 60 + 5)
                due = due_at_for(max(a["due"], p.hire_date + dt.timedelta(days=a["new_hire_days"])))
            else:
                assigned = a["created"] + dt.timedelta(seconds=1)
                due = due_at_for(a["due"])
            enrolled.add((c["id"], p.id))
            erng = random.Random(co.seed * 1_000_003 + c["id"] * 100_003 + p.id)
            vs = c["versions"]
            # the version current at enrolment (course 1: v1 until the handbook v2 is published)
            v = next((x for x in reversed(vs) if x["published"] <= assigned), vs[0])
            ids["enr"] += 1
            e = {"id": ids["enr"], "attempts": 0, "best": None, "passed": False}
            status, started, completed, secs = "assigned", None, None, 0
            if p.user_id and (p.exit_date is None or p.status != "left"):
                window = max(1.0, (due - assigned).total_seconds())
                elapsed = (now - assigned).total_seconds()
                f = elapsed / window
                r = erng.random()
                # the reminders every 3 days work: the longer overdue, the fewer still open
                overdue_days = (elapsed - window) / 86400
                p_done = (0.88 + 0.11 * min(1.0, overdue_days / 45)) if f >= 1 else 0.15 + 0.6 * f
                p_start = min(0.995, p_done + (0.05 if f >= 1 else 0.2))
                if r < p_start:
                    finish = r < p_done
                    t0 = assigned + dt.timedelta(seconds=erng.random() * min(window, max(60.0, elapsed)) * 0.8)
                    # not started before a newer version came out: on_publish moved it there
                    v = next((x for x in reversed(vs) if x["published"] <= t0), v)
                    e["first"] = None
                    done_at, secs, best, ack, _t = learn(out, e, v, p, t0, erng, finish)
                    started = e["first"]
                    status = "in_progress"
                    if done_at is not None:
                        status, completed = "completed", done_at
                        ids["comp"] += 1
                        out["comp"].append((ids["comp"], e["id"], p.id, c["id"], v["id"], done_at,
                                            best[1] if best else None, best[0] if best else None, ack, secs))
                    # course 1: the handbook v2 re-opens completed enrollments on v2 (new acknowledgement due)
                    v2 = vs[-1]
                    if c["id"] == 1 and v is not v2 and v2["published"] < now:
                        if status == "completed" and completed < v2["published"]:
                            v = v2
                            e.update(best=None, passed=False)
                            reopen = v2["published"]
                            due = due_at_for(reopen.astimezone(tz).date() + dt.timedelta(days=a["new_hire_days"]))
                            status, started, completed, secs = "assigned", None, None, 0
                            ctx.training_notes.append((reopen, p.user_id, "training.new_policy",
                                                       {"title": c["title"], "due": due.astimezone(tz).strftime("%Y-%m-%d")},
                                                       ("training_enrollments", e["id"]),
                                                       f"/training/learn/{e['id']}",
                                                       f"training:training.new_policy:{e['id']}:{v2['id']}"))
                            if erng.random() < 0.8:
                                t1 = reopen + dt.timedelta(hours=erng.randint(2, 200))
                                if t1 < now:
                                    e["first"] = None
                                    done_at, secs, best, ack, _t = learn(out, e, v2, p, t1, erng, erng.random() < 0.85)
                                    started, status = e["first"], "in_progress"
                                    if done_at is not None:
                                        status, completed = "completed", done_at
                                        ids["comp"] += 1
                                        out["comp"].append((ids["comp"], e["id"], p.id, c["id"], v2["id"], done_at,
                                                            best[1] if best else None, best[0] if best else None, ack,
                                                            secs))
                        elif status == "assigned":
                            v = v2  # not started: moved to the new version
                if status == "in_progress" and started is None:
                    status = "assigned"  # nothing was opened after all
                if status == "completed" and started is None:
                    started = completed
                ctx.training_notes.append((assigned, p.user_id, "training.assigned",
                                           {"title": c["title"], "due": due.astimezone(tz).strftime("%Y-%m-%d")},
                                           ("training_enrollments", e["id"]), f"/training/learn/{e['id']}",
                                           f"training:training.assigned:{e['id']}:{v['id']}"))
                _reminders(out, ids, e["id"], p.user_id, c["title"], due, assigned, completed, now, tz,
                           ctx.training_notes)
            elif v is not vs[-1] and vs[-1]["published"] < now:
                v = vs[-1]  # never started: on_publish moved it to the new version
            out["enr"].append((e["id"], c["id"], p.id, v["id"], a["id"], status, due, assigned, started, completed,
                               e["best"], e["passed"], secs))
    log(f"  training: {len(out['enr']):,} enrollments, {len(out['att']):,} attempts, {len(out['items']):,} items")
    ev.write_signatures()
    big = ["training_enrollments", "training_lesson_progress", "training_attempts", "training_attempt_items"]
    with loader.bulk_mode(big) as bulk:  # PostgreSQL: index rebuild + one FK check per key after the load
        loader.load("training_enrollments", ENR_COLS, out["enr"])
        loader.load("training_lesson_progress", LP_COLS, out["lp"])
        with loader.streams({"training_attempts": EXAM_COLS, "training_attempt_items": ITEM_COLS}) as s:
            for r in out["att"]:
                s["training_attempts"].write(r)
            for r in out["items"]:
                s["training_attempt_items"].write(r)
    ctx.report["training_bulk_mode"] = bulk
    loader.load("training_acknowledgements", ACK_COLS, out["ack"])
    loader.load("training_completions", COMP_COLS, out["comp"])
    from bench.datagen import next_id
    start_rem = next_id(loader, "reminders")
    loader.load("reminders", REM_COLS, [(start_rem + i, *r) for i, r in enumerate(out["rem"])])
    loader.reset_sequences(TABLES + ["reminders"])
    ctx.training = {"trainers": trainer_uids}
    ctx.report["training"] = {"courses": len(courses), "versions": len(versions), "questions": len(questions),
                              "assignments": len(assignments), "enrollments": len(out["enr"]),
                              "attempts": len(out["att"]), "acknowledgements": len(out["ack"])}


def _reminders(out, ids, enr_id, uid, title, due, assigned, completed, now, tz, notes):
    """assign._schedule: 3 and 1 day before the due time, then every 3 days while overdue; what the
    dispatch job already sent is marked (and its notification recorded), the rest waits or was
    completed with the enrollment."""
    link = f"/training/learn/{enr_id}"
    ctx_json = json.dumps({"title": title}, ensure_ascii=False)
    plan = [("training.due", due - dt.timedelta(days=3), 0), ("training.due", due - dt.timedelta(days=1), 0),
            ("training.due.overdue", due, 3 * 86400)]
    for kind, at, repeat in plan:
        stop = completed or now
        sent = 0
        next_at = at
        done = None
        while next_at <= stop and next_at <= now:
            sent += 1
            day = next_at.astimezone(tz).date().isoformat()
            notes.append((next_at + dt.timedelta(minutes=1), uid, "reminder",
                          {"title": title, "due": due.astimezone(tz).strftime("%Y-%m-%d %H:%M")},
                          ("training_enrollments", enr_id), link,
                          f"rem:{uid}:training_enrollments:{enr_id}:training.due:{day}"))
            if not repeat:
                done = next_at + dt.timedelta(minutes=1)
                break
            next_at += dt.timedelta(seconds=repeat)
        if done is None and completed is not None and completed <= now:
            done = completed
        ids["rem"] += 1
        out["rem"].append((uid, "training_enrollments", str(enr_id), kind, next_at, due, repeat, "reminder", ctx_json,
                           "inapp,email", link, sent, assigned, done))


def verify(ctx, sample: int = 150) -> dict:
    """learning.requirements vs the stored status, grading of sampled attempts, acknowledgement signatures."""
    from sqlalchemy import select

    from portal.core.db import db
    from portal.training import exams, learning
    from portal.training.models import Attempt, AttemptItem, CourseVersion, Enrollment
    rng = random.Random(ctx.company.seed + 51)
    db.session.rollback()
    checked = mismatched = 0
    examples = []
    ids = db.session.scalars(select(Enrollment.id).where(Enrollment.status != "assigned").order_by(Enrollment.id)).all()
    for eid in rng.sample(list(ids), min(sample, len(ids))):
        e = db.session.get(Enrollment, eid)
        req = learning.requirements(e)
        checked += 1
        if req.met != (e.status == "completed"):
            mismatched += 1
            if len(examples) < 5:
                examples.append({"enrollment": eid, "status": e.status, "requirements_met": req.met})
    aids = db.session.scalars(select(Attempt.id).order_by(Attempt.id)).all()
    for aid in rng.sample(list(aids), min(sample, len(aids))):
        a = db.session.get(Attempt, aid)
        items = db.session.scalars(select(AttemptItem).where(AttemptItem.attempt_id == aid)).all()
        v = db.session.get(CourseVersion, a.version_id)
        correct = sum(1 for i in items if exams.grade_item(i))
        score = round(100 * correct / len(items)) if items else 0
        checked += 1
        if (correct, len(items), score, score >= v.pass_mark) != (a.correct, a.total, a.score, a.passed):
            mismatched += 1
            if len(examples) < 5:
                examples.append({"attempt": aid, "stored": [a.correct, a.total, a.score, a.passed],
                                 "module": [correct, len(items), score]})
    db.session.rollback()
    return {"checked": checked, "mismatched": mismatched, "examples": examples}


def verify_acknowledgements(ctx, sample: int = 50) -> dict:
    """learning.verify_acknowledgement (after the audit events are sealed)."""
    from sqlalchemy import select

    from portal.core.db import db
    from portal.training import learning
    from portal.training.models import Acknowledgement
    rng = random.Random(ctx.company.seed + 52)
    db.session.rollback()
    ids = db.session.scalars(select(Acknowledgement.id).order_by(Acknowledgement.id)).all()
    bad, examples = 0, []
    picked = rng.sample(list(ids), min(sample, len(ids)))
    for aid in picked:
        res = learning.verify_acknowledgement(db.session.get(Acknowledgement, aid))
        if not res.ok:
            bad += 1
            if len(examples) < 3:
                examples.append({"acknowledgement": aid, "reason": res.reason})
    db.session.rollback()
    return {"checked": len(picked), "mismatched": bad, "examples": examples}

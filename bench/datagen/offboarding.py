"""Step "offboarding": client records (contacts, orders, receivables, contact history) owned by the sales
staff, checklist templates, an offboarding for every employee on notice (all stages in progress) and a
completed one for every leaver of the history, with checklists, sign-off steps, permission freezes, client
transfers, waivers with their evidence files, final signatures, and the item reminders.

Volumes at 10,000 employees (measured with seed 1): 20,000 clients (about 10 per salesperson), 36,000
contacts, 100,000 orders (5 per client; the recent ones partly open), 12,000 receivables, 60,000
contact-history entries; 4 checklist templates; 100 offboardings in progress (the org step's ~1 % "notice"
employees: 15 on notice, 53 in handover, 19 in sign-off, 13 at the final signatures) and 266 completed
(the leavers of the year who had a colleague with an account to take over), 2,700 checklist items,
1,400 sign-off steps, 670 client transfers, 333 waiver evidence files, 14,000 item reminders.

Who can do what follows the services: a leaver without an account (most production and service staff)
cannot fill their own items nor sign, so HR waives those items with a scanned paper form as evidence
(``waive_item``: reason + uploaded file; the files are written under ``UPLOAD_DIR`` like ``store_bytes``
does) and records why the leaver's signature is missing (``waive_leaver_signature``); HR records their
departure as a termination (mutual agreement), since only the employee can submit a resignation. The
successor is a colleague with an account who is not the department head (one sign-off step per person).
A leaver with an account gets the freeze of ``freeze_permissions_for`` (deny overrides). Items move
open -> submitted -> done as ``submit_item`` / ``confirm_item`` do; a stage is reached only when its
conditions hold (``_after_item_closed``, ``approve_step``). The final signatures are computed over
``services.handover_content`` with the portal's hashing (audit events sealed in step "audit").
``verify`` rebuilds the handover content with the module and checks the signatures and stages.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from pathlib import Path

from bench.common import log
from bench.datagen import gen_now, add_roles, ip_of, local_dt, next_id

CITIES = ("上海", "苏州", "杭州", "南京", "宁波", "无锡", "合肥", "武汉", "成都", "重庆", "广州", "深圳", "东莞", "佛山",
          "厦门", "福州", "青岛", "济南", "天津", "北京", "郑州", "长沙", "西安", "昆明")
WORDS = ("华瑞", "恒通", "金桥", "鑫达", "远航", "中联", "宏图", "天成", "博远", "安捷", "众诚", "永盛", "新元", "嘉禾",
         "瑞丰", "聚力", "捷达", "海纳", "东方", "长江", "锦程", "华信", "德邦", "优选", "卓越", "启明", "凯盛", "润泽")
TRADES = ("物流", "贸易", "电子", "机械", "医药", "食品", "科技", "供应链", "化工", "汽车配件", "服饰", "家居")
SUFFIX = ("有限公司", "股份有限公司", "集团有限公司")
CHANNELS = ("phone", "phone", "visit", "wechat", "email", "meeting")
SUMMARIES = ("电话沟通下季度运输需求", "拜访客户，洽谈年度合同续签", "确认订单交付时间", "处理客户投诉并回访",
             "微信沟通报价", "客户提出新的仓储需求", "对账并确认应收款", "介绍新产品方案")
PREFS = ("", "", "偏好月结，每月25日对账", "只接受上午送货", "重要客户，需专人对接", "价格敏感，注重时效",
         "要求提供电子发票")

GENERAL_ITEMS = (  # title, responsible, due offset days (relative to the last day)
    ("交接工作文档与在办事项清单", "leaver", -5), ("确认工作内容已交接", "successor", -3),
    ("归还电脑、工牌等公司财物", "it", -1), ("关闭系统账号与权限确认", "it", 0),
    ("费用报销与借款结清", "finance", -2), ("离职面谈", "hr", -2), ("考勤与假期结算确认", "hr", 0),
)
SALES_ITEMS = (("客户资料与联系人交接", "leaver", -7), ("在途订单逐单交接", "successor", -5),
               ("应收账款核对", "finance", -3))
TEMPLATES = (  # name, positions (codes) or None, items
    ("通用离职交接清单", None, GENERAL_ITEMS),
    ("销售岗位交接清单", "销售代表", SALES_ITEMS + GENERAL_ITEMS),
    ("高级销售岗位交接清单", "高级销售代表", SALES_ITEMS + GENERAL_ITEMS),
    ("研发岗位交接清单", "高级工程师", (("代码仓库与文档权限交接", "leaver", -5), ("在研项目交接评审", "head", -3))
     + GENERAL_ITEMS),
)
NOTES = ("已交接，详见共享文件夹", "已当面交接并确认", "资料已整理移交", "已完成")
OB_COLS = ["id", "employee_id", "user_id", "kind", "reason", "submitted_at", "notice_days", "last_day", "stage",
           "successor_id", "template_id", "revoke_on", "signoff_round", "started_at", "completed_at",
           "leaver_signature_id", "successor_signature_id", "leaver_signature_waiver", "created_by_id", "created_at",
           "updated_at"]
ITEM_COLS = ["id", "offboarding_id", "sort", "title", "description", "responsible", "requires_upload", "due_date",
             "status", "note", "file_id", "submitted_by_id", "submitted_at", "confirmed_by_id", "confirmed_at",
             "waiver_reason", "waiver_file_id", "waived_by_id", "waived_at", "rejection_reason", "rejected_by_id",
             "rejected_at"]
STEP_COLS = ["id", "offboarding_id", "round", "seq", "role", "status", "decided_by_id", "decided_at", "comment"]
TABLES = ["clients", "client_contacts", "client_orders", "client_receivables", "client_interactions",
          "checklist_templates", "checklist_template_items", "offboardings", "checklist_items",
          "offboarding_signoffs", "client_transfers", "permission_overrides", "stored_files", "reminders"]
WAIVER = "员工无系统账号，已线下签署纸质交接单（扫描件见附件）"
SIG_WAIVER = "离职员工无系统账号，已在纸质交接单上签字确认"


def _company(rng) -> str:
    return f"{rng.choice(CITIES)}{rng.choice(WORDS)}{rng.choice(TRADES)}{rng.choice(SUFFIX)}"


def load(ctx) -> None:
    from flask import current_app

    from portal.offboarding.labels import KIND_LABELS, RESPONSIBLE_LABELS, label
    from portal.offboarding.perms import BUSINESS_PERMISSIONS, FREEZE_SOURCE
    from flask_babel import lazy_gettext as _l

    co, loader, tz, ev = ctx.company, ctx.loader, ctx.tz, ctx.evidence
    rng = random.Random(co.seed + 60)
    now = gen_now(ctx)
    today = now.astimezone(tz).date()
    ctx.offboarding_notes = []
    notes = ctx.offboarding_notes
    people = co.people
    by_user = {p.user_id: p for p in people if p.user_id}

    # ---- finance and IT roles (an administrator gives them; the sign-off chain needs them)
    grants = []
    for div_name, role in (("财务中心", "finance"), ("信息技术中心", "it")):
        di = co.division_index(div_name)
        cands = [p for p in people if p.division == di and p.user_id and p.status == "active" and "hr" not in p.roles]
        cands.sort(key=lambda p: (-p.head_level, p.id))
        grants += [(p.user_id, role) for p in cands[:2] if role not in p.roles]
    add_roles(ctx, grants)
    finance_uids = sorted(p.user_id for p in people if p.user_id and "finance" in p.roles)
    it_uids = sorted(p.user_id for p in people if p.user_id and "it" in p.roles)
    hr_uids = sorted(co.hr_user_ids)
    if not hr_uids:
        raise RuntimeError("no HR account: the org step always makes some")

    # ---- clients of the sales staff
    sales_div = co.division_index("销售中心")
    # the sales staff of the year, leavers included (their clients move to a successor at the handover)
    sellers = [p for p in people if p.division == sales_div and p.head_level <= 1]
    if not sellers:
        sellers = [p for p in people if p.status == "active" and not p.head_level][:20]
    n_clients = max(50, len(people) * 2)
    clients, contacts, orders, recvs, inters = [], [], [], [], []
    orders_of: dict[int, list[int]] = {}
    owner_of: dict[int, int] = {}
    span = (co.end - co.start).days
    for cid in range(1, n_clients + 1):
        owner = sellers[(cid * 7919) % len(sellers)] if rng.random() < 0.7 else rng.choice(sellers)
        made = local_dt(tz, co.start - dt.timedelta(days=rng.randint(0, 365 * 6)), 9 * 60 + rng.random() * 540)
        owner_of[cid] = owner.id
        creator = owner.user_id
        c_end = co.end + dt.timedelta(days=rng.randint(-60, 700))
        clients.append([cid, _company(rng), owner.id, f"HT{made.year}{cid:06d}", c_end, rng.choice(PREFS), creator,
                        made, made])
        for k in range(rng.choice((1, 1, 2, 2, 3))):
            contacts.append((len(contacts) + 1, cid, rng.choice("王李张刘陈杨黄赵吴周") + rng.choice(("经理", "总", "主管", "先生", "女士")),
                             rng.choice(("采购经理", "物流主管", "总经理", "财务", "仓储经理")),
                             f"13{rng.randint(0, 9)}{rng.randrange(10 ** 8):08d}", f"contact{cid}.{k}@client.example.com"))
        o_end = min(co.end, owner.exit_date) if owner.exit_date else co.end
        o_span = max(0, (o_end - co.start).days)
        for k in range(rng.choice((3, 4, 5, 5, 6, 7))):
            at = local_dt(tz, co.start + dt.timedelta(days=rng.randint(0, o_span)), 9 * 60 + rng.random() * 540)
            status = "open" if at.date() > co.end - dt.timedelta(days=45) and rng.random() < 0.7 else "closed"
            orders_of.setdefault(cid, []).append(len(orders))
            orders.append([len(orders) + 1, cid, f"SO{at.astimezone(tz):%Y%m%d}{len(orders) + 1:07d}",
                           rng.choice(("整车运输", "零担运输", "仓储服务", "冷链配送", "城市配送", "国际货运代理")),
                           rng.randint(5_000, 2_000_000) * 100, status, owner.user_id, at])
        if rng.random() < 0.6:
            due = co.end + dt.timedelta(days=rng.randint(-90, 60))
            recvs.append((len(recvs) + 1, cid, f"AR{cid:06d}", rng.randint(1_000, 500_000) * 100, due,
                          "paid" if due < co.end - dt.timedelta(days=10) and rng.random() < 0.8 else "open"))
        for k in range(rng.choice((1, 2, 3, 3, 4, 5))):
            at = local_dt(tz, co.start + dt.timedelta(days=rng.randint(0, o_span)), 9 * 60 + rng.random() * 540)
            inters.append((len(inters) + 1, cid, at, owner.user_id, rng.choice(CHANNELS), rng.choice(SUMMARIES)))
    clients_of: dict[int, list[int]] = {}
    for cid, eid in owner_of.items():
        clients_of.setdefault(eid, []).append(cid)

    # ---- templates
    pos_id = {name: i + 1 for i, name in enumerate(co.positions)}
    role_fallback = {"finance": "finance" if finance_uids else "hr", "it": "it" if it_uids else "hr"}
    tpl_rows, tpl_items, templates = [], [], []
    made = local_dt(tz, co.start - dt.timedelta(days=90), 10 * 60)
    for tid, (name, pos, items) in enumerate(TEMPLATES, start=1):
        tpl_rows.append((tid, name, None, pos_id.get(pos) if pos else None, True, made, made))
        its = []
        for sort, (title, resp, off) in enumerate(items, start=1):
            resp = role_fallback.get(resp, resp)
            iid = len(tpl_items) + 1
            tpl_items.append((iid, tid, sort * 10, title, "", resp, False, off))
            its.append((sort * 10, title, resp, off))
        templates.append({"id": tid, "position": pos_id.get(pos) if pos else None, "items": its})

    def pick_template(p):
        specific = [t for t in templates if t["position"] == p.position_id]
        return specific[0] if specific else templates[0]

    # ---- offboardings: every employee on notice (in progress) and every leaver of the history (completed)
    in_dept: dict[int, list] = {}
    for p in people:
        if p.user_id and p.status == "active":
            in_dept.setdefault(p.dept_id, []).append(p)
    depts = {d.id: d for d in co.depts}

    def head_of(p):
        d = depts.get(p.dept_id)
        while d is not None:
            if d.head_id and d.head_id != p.id:
                return co.person(d.head_id)
            d = depts.get(d.parent_id)
        return co.person(p.manager_id) if p.manager_id else None

    def successor_for(p, head):
        d = depts.get(p.dept_id)
        while d is not None:
            cands = [x for x in in_dept.get(d.id, ()) if x.id != p.id and (head is None or x.id != head.id)
                     and x.status == "active"]
            if cands:
                return cands[(p.id * 31) % len(cands)]
            # the sibling teams of the department
            for sib in sorted(x.id for x in co.depts if x.parent_id == d.parent_id and x.id != d.id):
                cands = [x for x in in_dept.get(sib, ()) if x.id != p.id and (head is None or x.id != head.id)]
                if cands:
                    return cands[(p.id * 31) % len(cands)]
            d = depts.get(d.parent_id)
        return None

    obs, items, steps, transfers, overrides, files, reminders = [], [], [], [], [], [], []
    upload_root = Path(current_app.config["UPLOAD_DIR"])
    file_next = next_id(loader, "stored_files")
    ov_next = next_id(loader, "permission_overrides")
    leavers = [(p, "notice") for p in people if p.status == "notice"] + \
              [(p, "left") for p in people if p.status == "left" and p.exit_date]
    stages_pick = ("notice",) * 2 + ("handover",) * 5 + ("signoff",) * 2 + ("signing",) * 2
    for p, kind_ in leavers:
        orng = random.Random(co.seed * 1_000_003 + 60_000 + p.id)
        head = head_of(p)
        head_user = head.user_id if head else None
        succ = successor_for(p, head)
        hr = hr_uids[p.id % len(hr_uids)]
        if hr == p.user_id:
            hr = hr_uids[(p.id + 1) % len(hr_uids)]
        if kind_ == "left":
            last_day = p.exit_date
            probation = p.hire_date + dt.timedelta(days=180)
            days = 3 if (last_day - dt.timedelta(days=30)) <= probation else 30
            submitted_day = last_day - dt.timedelta(days=days)
            stage = "completed"
        else:
            stage = orng.choice(stages_pick)
            probation = p.hire_date + dt.timedelta(days=180)
            back = {"notice": orng.randint(0, 3), "handover": orng.randint(4, 22), "signoff": orng.randint(15, 28),
                    "signing": orng.randint(20, 30)}[stage]
            submitted_day = today - dt.timedelta(days=back)
            days = 3 if submitted_day <= probation else 30
            if days == 3:
                back = min(back, 2)
                submitted_day = today - dt.timedelta(days=back)
            last_day = submitted_day + dt.timedelta(days=days)
        if stage != "notice" and (succ is None or succ.user_id is None):
            stage = "notice" if kind_ == "notice" else stage
            if kind_ == "left" and succ is None:
                continue  # nobody could take over in this small company: no record
        resign = p.user_id is not None and orng.random() < 0.9
        kind = "resignation" if resign else "termination"
        reason = orng.choice(("个人职业发展", "家庭原因", "回老家发展", "继续深造")) if resign else "协商一致解除劳动合同"
        submitted = local_dt(tz, submitted_day, 9 * 60 + orng.random() * 480)
        creator = p.user_id if resign else hr
        oid = len(obs) + 1
        ob = {"id": oid, "stage": stage, "items": [], "steps": [], "transfers": []}
        started = None
        if stage != "notice":
            started = submitted + dt.timedelta(days=orng.randint(1, 3), hours=orng.randint(0, 6))
        # notifications: HR and the head learn of it
        for uid in sorted({*hr_uids, *( [head_user] if head_user else [])} - {p.user_id}):
            notes.append((submitted, uid, "offboarding",
                          {"title": p.name, "body": _l("%(name)s (%(emp_no)s): %(kind)s, last working day %(day)s",
                                                       name=p.name, emp_no=p.emp_no, kind=label(KIND_LABELS, kind),
                                                       day=last_day.isoformat())},
                          ("offboardings", oid), f"/offboarding/{oid}", f"offb:{oid}:started:{uid}"))
        if p.user_id and kind_ == "notice":  # freeze at once: no order of theirs after it
            for cid in clients_of.get(p.id, ()):
                for oi in orders_of.get(cid, ()):
                    if orders[oi][6] == p.user_id and orders[oi][7] > submitted:
                        orders[oi][7] = submitted - dt.timedelta(days=orng.randint(1, 60), minutes=orng.randint(0, 600))
            for perm in BUSINESS_PERMISSIONS:
                overrides.append((ov_next, p.user_id, perm, "deny", None, f"offboarding #{oid}: frozen", FREEZE_SOURCE,
                                  creator, submitted, None))
                ov_next += 1
        leaver_sig = succ_sig = None
        waiver = ""
        completed_at = None
        if stage != "notice":
            tpl = pick_template(p)
            t = started
            closed_all = stage in ("signoff", "signing", "completed")
            evidence_file = None
            for sort, title, resp, off in tpl["items"]:
                due = last_day + dt.timedelta(days=off)
                iid = len(items) + 1
                row = {"id": iid, "sort": sort, "title": title, "resp": resp, "due": due, "status": "open", "note": "",
                       "sub_by": None, "sub_at": None, "conf_by": None, "conf_at": None, "waiver": "",
                       "wfile": None, "w_by": None, "w_at": None}
                responsible_uid = {"leaver": p.user_id, "successor": succ.user_id, "head": head_user,
                                   "finance": next((u for u in finance_uids if u != p.user_id), None),
                                   "it": next((u for u in it_uids if u != p.user_id), None), "hr": hr}[resp]
                r = orng.random()
                done_by = min(now, local_dt(tz, min(due, today), 10 * 60 + orng.random() * 420))
                when = t + (done_by - t) * orng.random() if done_by > t else t + dt.timedelta(minutes=5)
                if closed_all or r < 0.5:
                    if resp == "leaver" and p.user_id is None or responsible_uid is None:
                        if evidence_file is None:  # HR scans the paper form once per offboarding
                            evidence_file = _evidence_file(files, upload_root, file_next, hr, when, oid, p)
                            file_next += 1
                        row.update(status="waived", waiver=WAIVER, wfile=evidence_file, w_by=hr, w_at=when)
                    elif resp == "leaver" or responsible_uid == p.user_id:
                        row.update(status="done", note=orng.choice(NOTES), sub_by=p.user_id, sub_at=when,
                                   conf_by=p.user_id, conf_at=when)
                    elif p.user_id and orng.random() < 0.6:  # the leaver fills, the responsible confirms
                        row.update(status="done", note=orng.choice(NOTES), sub_by=p.user_id, sub_at=when,
                                   conf_by=responsible_uid, conf_at=when + dt.timedelta(hours=orng.randint(1, 20)))
                        if row["conf_at"] > now:
                            row["conf_at"] = now - dt.timedelta(minutes=1)
                    else:
                        row.update(status="done", note=orng.choice(NOTES), sub_by=responsible_uid, sub_at=when,
                                   conf_by=responsible_uid, conf_at=when)
                elif r < 0.65 and p.user_id and resp != "leaver" and responsible_uid not in (None, p.user_id):
                    row.update(status="submitted", note=orng.choice(NOTES), sub_by=p.user_id, sub_at=when)
                ob["items"].append(row)
                items.append(row | {"ob": oid})
            if stage == "handover" and all(r["status"] in ("done", "waived") for r in ob["items"]):
                last = ob["items"][-1]  # still one open item (else the stage would have moved on)
                last.update(status="open", note="", sub_by=None, sub_at=None, conf_by=None, conf_at=None,
                            waiver="", wfile=None, w_by=None, w_at=None)
                items[-1] = last | {"ob": oid}
            last_closed = max([r["conf_at"] or r["w_at"] or started for r in ob["items"]])
            # client transfer to the successor (all of the leaver's clients)
            if clients_of.get(p.id) and (closed_all or orng.random() < 0.6):
                at = started + (last_closed - started) * 0.5
                by = hr if orng.random() < 0.5 or not head_user else head_user
                for cid in sorted(clients_of[p.id]):
                    transfers.append((len(transfers) + 1, cid, oid, p.id, succ.id, by, at))
                    ob["transfers"].append({"client_id": cid, "from": p.id, "to": succ.id})
                    clients[cid - 1][2] = succ.id
                    clients[cid - 1][8] = at
                clients_of.setdefault(succ.id, []).extend(clients_of.pop(p.id))
            roles = ["successor", "head"] + (["finance"] if any(r["resp"] == "finance" for r in ob["items"]) else []) \
                + ["hr"]
            # one step per person, never the leaver (_check_decider)
            used = {succ.user_id, head_user, p.user_id}
            fin = next((u for u in finance_uids if u not in used), None)
            used.add(fin)
            hr_step = next((u for u in [hr] + hr_uids if u not in used), None)
            deciders = {"successor": succ.user_id, "head": head_user, "finance": fin, "hr": hr_step}
            t = last_closed
            n_approved = len(roles) if stage in ("signing", "completed") else (
                orng.randint(0, len(roles) - 1) if stage == "signoff" else 0)
            for seq, role in enumerate(roles, start=1):
                sid = len(steps) + 1
                st = {"id": sid, "seq": seq, "role": role, "status": "pending", "by": None, "at": None}
                if seq <= n_approved and deciders[role]:
                    t = t + dt.timedelta(hours=orng.randint(1, 30))
                    t = min(t, now - dt.timedelta(minutes=10 * (len(roles) - seq + 1)))
                    st.update(status="approved", by=deciders[role], at=t)
                elif seq <= n_approved:
                    n_approved = seq - 1
                ob["steps"].append(st)
                steps.append((sid, oid, 1, seq, role, st["status"], st["by"], st["at"], ""))
            if stage in ("signing", "completed") and n_approved < len(roles):
                stage = ob["stage"] = "signoff"
            if stage == "signoff":
                cur = next((s for s in ob["steps"] if s["status"] == "pending"), None)
                if cur is not None and deciders[cur["role"]]:
                    uid = deciders[cur["role"]]
                    notes.append((last_closed if cur["seq"] == 1 else ob["steps"][cur["seq"] - 2]["at"], uid,
                                  "offboarding",
                                  {"title": p.name, "body": _l("The offboarding of %(name)s waits for your sign-off "
                                                               "(as %(role)s).", name=p.name,
                                                               role=label(RESPONSIBLE_LABELS, cur["role"]))},
                                  ("offboarding_signoffs", cur["id"]), f"/offboarding/{oid}",
                                  f"offb:{oid}:step:{cur['id']}:{uid}"))
            if stage in ("signing", "completed"):
                ready = ob["steps"][-1]["at"]
                for uid in filter(None, (p.user_id, succ.user_id)):
                    notes.append((ready, uid, "offboarding",
                                  {"title": p.name, "body": _l("The handover of %(name)s is approved and ready for "
                                                               "your signature.", name=p.name)},
                                  ("offboardings", oid), f"/offboarding/{oid}", f"offb:{oid}:sign:1:{uid}"))
                content = _handover_content(oid, p, succ, last_day, ob)
                at = ready + dt.timedelta(hours=orng.randint(1, 20))
                at = min(at, now - dt.timedelta(minutes=3))
                if stage == "completed" or orng.random() < 0.6:
                    succ_sig, h = ev.sign(succ.user_id, succ.emp_no.lower(), succ.name, "offboarding.handover.successor",
                                          ("offboardings", oid), content, at, ip_of(succ))
                    ev.event(at, succ.user_id, succ.emp_no.lower(), "offboarding.handover_signed", ("offboardings", oid),
                             {"as": "successor", "signature_id": succ_sig, "content_hash": h}, ip_of(succ))
                if p.user_id and (stage == "completed" or orng.random() < 0.5):
                    at2 = min(at + dt.timedelta(minutes=orng.randint(5, 300)), now - dt.timedelta(minutes=2))
                    leaver_sig, h = ev.sign(p.user_id, p.emp_no.lower(), p.name, "offboarding.handover.leaver",
                                            ("offboardings", oid), content, at2, ip_of(p))
                    ev.event(at2, p.user_id, p.emp_no.lower(), "offboarding.handover_signed", ("offboardings", oid),
                             {"as": "leaver", "signature_id": leaver_sig, "content_hash": h}, ip_of(p))
                elif not p.user_id and (stage == "completed" or orng.random() < 0.5):
                    waiver = SIG_WAIVER
                if stage == "completed":
                    completed_at = max(at, local_dt(tz, last_day, 17 * 60)) + dt.timedelta(hours=orng.randint(1, 40))
                    completed_at = min(completed_at, now - dt.timedelta(minutes=1))
                    for uid in sorted(set(hr_uids) | set(it_uids)):
                        notes.append((completed_at, uid, "offboarding",
                                      {"title": p.name, "body": _l("The offboarding of %(name)s is completed.",
                                                                   name=p.name)},
                                      ("offboardings", oid), f"/offboarding/{oid}", f"offb:{oid}:completed:{uid}"))
            # item reminders (services._remind_item): 3 days before 18:00 on the due day, then daily
            for row in ob["items"]:
                people_ = {uid for uid in ({"leaver": p.user_id, "successor": succ.user_id, "head": head_user,
                                            "hr": None}.get(row["resp"]),) if uid}
                if row["resp"] in ("finance", "it", "hr"):
                    people_ |= set({"finance": finance_uids, "it": it_uids, "hr": hr_uids}[row["resp"]]) - {p.user_id}
                if row["resp"] != "leaver" and p.user_id:
                    people_.add(p.user_id)
                closed_at = row["conf_at"] or row["w_at"]
                deadline = local_dt(tz, row["due"], 18 * 60)
                for uid in sorted(people_):
                    for rkind, first, repeat in (("offboarding.item", deadline - dt.timedelta(days=3), 0),
                                                ("offboarding.item.overdue", deadline, 86400)):
                        sent, nxt, done = 0, first, None
                        stop = min(x for x in (closed_at, completed_at, now) if x is not None)
                        while nxt <= stop:
                            sent += 1
                            day = nxt.astimezone(tz).date().isoformat()
                            notes.append((nxt + dt.timedelta(minutes=1), uid, "reminder",
                                          {"title": f"{p.name}: {row['title']}",
                                           "due": deadline.astimezone(tz).strftime("%Y-%m-%d %H:%M")},
                                          ("checklist_items", row["id"]), f"/offboarding/{oid}",
                                          f"rem:{uid}:checklist_items:{row['id']}:offboarding.item:{day}"))
                            if not repeat:
                                done = nxt + dt.timedelta(minutes=1)
                                break
                            nxt += dt.timedelta(seconds=repeat)
                        if done is None and (closed_at or completed_at) and stop <= now:
                            done = stop
                        reminders.append((uid, "checklist_items", str(row["id"]), rkind, nxt, deadline, repeat,
                                          "reminder",
                                          json.dumps({"title": f"{p.name}: {row['title']}"}, ensure_ascii=False),
                                          "inapp,email,sms", f"/offboarding/{oid}", sent, started, done))
        obs.append((oid, p.id, p.user_id, kind, reason, submitted, days, last_day, stage,
                    succ.id if succ and stage != "notice" else None,
                    pick_template(p)["id"] if stage != "notice" else None, "completion", 1, started, completed_at,
                    leaver_sig, succ_sig, waiver, creator, submitted,
                    completed_at or max([submitted] + [s["at"] for s in ob["steps"] if s["at"]])))

    log(f"  offboarding: {len(clients):,} clients, {len(orders):,} orders, {len(obs)} offboardings, "
        f"{len(items):,} items")
    loader.load("clients", ["id", "name", "owner_id", "contract_no", "contract_end", "preferences", "created_by_id",
                            "created_at", "updated_at"], clients)
    with loader.bulk_mode(["client_contacts", "client_orders", "client_receivables", "client_interactions"]) as bulk, \
            loader.streams({"client_contacts": ["id", "client_id", "name", "title", "phone", "email"],
                         "client_orders": ["id", "client_id", "order_no", "description", "amount_fen", "status",
                                           "created_by_id", "created_at"],
                         "client_receivables": ["id", "client_id", "reference", "amount_fen", "due_date", "status"],
                         "client_interactions": ["id", "client_id", "at", "by_id", "channel", "summary"]}) as s:
        for r in contacts:
            s["client_contacts"].write(r)
        for r in orders:
            s["client_orders"].write(r)
        for r in recvs:
            s["client_receivables"].write(r)
        for r in inters:
            s["client_interactions"].write(r)
    ctx.report["clients_bulk_mode"] = bulk
    loader.load("checklist_templates", ["id", "name", "department_id", "position_id", "active", "created_at",
                                        "updated_at"], tpl_rows)
    loader.load("checklist_template_items", ["id", "template_id", "sort", "title", "description", "responsible",
                                             "requires_upload", "due_offset_days"], tpl_items)
    loader.load("stored_files", ["id", "purpose", "original_name", "kind", "content_type", "size", "sha256", "path",
                                 "uploaded_by_id", "uploaded_at"], files)
    ev.write_signatures()
    loader.load("offboardings", OB_COLS, obs)
    loader.load("checklist_items", ITEM_COLS,
                [(r["id"], r["ob"], r["sort"], r["title"], "", r["resp"], False, r["due"], r["status"], r["note"], None,
                  r["sub_by"], r["sub_at"], r["conf_by"], r["conf_at"], r["waiver"], r["wfile"], r["w_by"], r["w_at"],
                  "", None, None) for r in items])
    loader.load("offboarding_signoffs", STEP_COLS, steps)
    loader.load("client_transfers", ["id", "client_id", "offboarding_id", "from_employee_id", "to_employee_id",
                                     "by_id", "at"], transfers)
    loader.load("permission_overrides", ["id", "user_id", "permission", "effect", "expires_at", "reason", "source",
                                         "created_by_id", "created_at", "revoked_at"], overrides)
    rem_start = next_id(loader, "reminders")
    loader.load("reminders", ["id", "user_id", "subject_type", "subject_id", "kind", "next_at", "deadline",
                              "repeat_seconds", "template_key", "context", "channels", "link", "sent_count",
                              "created_at", "done_at"], [(rem_start + i, *r) for i, r in enumerate(reminders)])
    loader.reset_sequences(TABLES)
    ctx.report["offboarding"] = {"clients": len(clients), "orders": len(orders), "offboardings": len(obs),
                                 "by_stage": {s: sum(1 for o in obs if o[8] == s) for s in
                                              ("notice", "handover", "signoff", "signing", "completed")},
                                 "items": len(items), "evidence_files": len(files)}


def _evidence_file(files, root: Path, fid: int, hr_uid: int, at: dt.datetime, oid: int, p) -> int:
    """The scanned paper handover form HR uploads with a waiver (stored like uploads.store_bytes)."""
    data = (f"%PDF-1.4\n% bench evidence: paper handover form of {p.emp_no}, offboarding #{oid}\n%%EOF\n").encode()
    digest = hashlib.sha256(data).hexdigest()
    rel = Path("offboarding_waiver") / f"{at:%Y}" / f"{at:%m}" / f"{hashlib.sha256(f'{oid}:{p.id}'.encode()).hexdigest()[:32]}.pdf"
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    files.append((fid, "offboarding_waiver", f"离职交接单-{p.emp_no}.pdf", "pdf", "application/pdf", len(data), digest,
                  str(rel), hr_uid, at))
    return fid


def _handover_content(oid, p, succ, last_day, ob) -> dict:
    """services.handover_content from the rows about to be written."""
    return {
        "offboarding_id": oid, "employee": p.emp_no, "successor": succ.emp_no if succ else None,
        "last_day": last_day.isoformat(),
        "items": [{"id": r["id"], "title": r["title"], "status": r["status"], "note": r["note"], "file_id": None,
                   "waiver": r["waiver"]} for r in sorted(ob["items"], key=lambda r: (r["sort"], r["id"]))],
        "transfers": [{"client_id": t["client_id"], "from": t["from"], "to": t["to"]} for t in ob["transfers"]],
        "approvals": [{"seq": s["seq"], "role": s["role"], "by": s["by"],
                       "at": s["at"].isoformat() if s["at"] else None} for s in ob["steps"]],
    }


def verify(ctx, sample: int = 40) -> dict:
    """Stage rules (services.missing) and the handover content the module rebuilds (signatures checked
    against it in verify_signatures, after the audit events are sealed)."""
    from sqlalchemy import select

    from portal.core.db import db
    from portal.offboarding import services
    from portal.offboarding.models import Offboarding
    rng = random.Random(ctx.company.seed + 61)
    db.session.rollback()
    ids = db.session.scalars(select(Offboarding.id).order_by(Offboarding.id)).all()
    checked = mismatched = 0
    examples = []
    for oid in rng.sample(list(ids), min(sample, len(ids))):
        ob = db.session.get(Offboarding, oid)
        gaps = services.missing(ob)
        codes = {g["code"] for g in gaps}
        ok = True
        if ob.stage == "completed":
            ok = not gaps
        elif ob.stage == "signing":
            ok = codes <= {"leaver_signature", "successor_signature"}
        elif ob.stage == "signoff":
            ok = "item_open" not in codes and "step_pending" in codes
        elif ob.stage == "handover":
            ok = "item_open" in codes or not ob.items
        checked += 1
        if not ok:
            mismatched += 1
            if len(examples) < 5:
                examples.append({"offboarding": oid, "stage": ob.stage, "missing": sorted(codes)})
    board = services.board()
    db.session.rollback()
    return {"checked": checked, "mismatched": mismatched, "examples": examples,
            "board_rows": sum(len(s["rows"]) for s in board)}


def verify_signatures(ctx, sample: int = 40) -> dict:
    from sqlalchemy import select

    from portal.core import signatures
    from portal.core.db import db
    from portal.offboarding import services
    from portal.offboarding.models import Offboarding
    rng = random.Random(ctx.company.seed + 62)
    db.session.rollback()
    ids = db.session.scalars(select(Offboarding.id).where(Offboarding.successor_signature_id.is_not(None))
                             .order_by(Offboarding.id)).all()
    bad, examples, n = 0, [], 0
    for oid in rng.sample(list(ids), min(sample, len(ids))):
        ob = db.session.get(Offboarding, oid)
        content = services.handover_content(ob)
        for sid in filter(None, (ob.successor_signature_id, ob.leaver_signature_id)):
            n += 1
            res = signatures.verify(db.session.get(signatures.Signature, sid), content)
            if not res.ok:
                bad += 1
                if len(examples) < 3:
                    examples.append({"offboarding": oid, "signature": sid, "reason": res.reason})
    db.session.rollback()
    return {"checked": n, "mismatched": bad, "examples": examples}

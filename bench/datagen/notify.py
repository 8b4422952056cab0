"""Step "notify": the outbox / in-app inbox the other steps' events produced, and formal notices.

Every message comes from an event in the generated data, rendered the way ``notify.send`` /
``send_many`` render it (the template's subject and body translated into the recipient's language, lazy
context values rendered there, one row per channel of the template or of the reminder, the dedupe keys
the services use):

* attendance: the alerts of every anomaly row (``scan.notify_pending``: the manager or department head
  and the HR accounts; the configured alert / escalation channels);
* OKR early warnings (``scan_warnings``: HR/admin and the manager);
* training: "new course" at enrolment, the due-date reminders the dispatcher sent, "new policy version";
* offboarding: started (HR + head), sign-off turns, ready to sign, completed (HR + IT), item reminders;
* formal notices (``notices.send``): a policy-change notice to every account, with read times and signed
  acknowledgements for most, and two individual warnings; in-app + email + SMS each.

Delivery states are what the worker leaves: in-app rows are "sent" when written and most older ones
were read (read_at; formal ones with the "notification.read" audit event of ``mark_read``); email / SMS
rows were handed to the relay / gateway seconds later ("sent" with a provider id), ~0.3 % were refused
("failed" after 5 attempts, with the error), a few of the last hours' failed once and wait for their
retry ("pending", attempts 1, due after the backoff), and those of the last minutes are still "pending".
Messages are not generated for OKR check-in reminders (the reminder rows of the current period are not
written either).

Volumes at 10,000 employees (1,510 accounts; measured with seed 1): 387,000 outbox rows (192,000 in-app,
192,000 email, 2,800 SMS). In-app per account: ordinary employees median 51 a year (training reminders,
attendance and OKR messages), managers median 68 (their team's attendance alerts), HR / admin ~15,000 each
(every attendance alert and early warning of the company goes to every HR account, as the scans send them).
3 formal notices (a policy change to every account: 1,510 recipients, ~90 % read and ~77 % signed; two
individual warnings).

``verify`` renders a sample again with ``notify._compose`` and compares subject/body/channel;
``verify_audit`` (after step "audit") runs ``audit.verify`` and checks sampled signatures with the
modules (training acknowledgements, handover signatures, notice acknowledgements).
"""
from __future__ import annotations

import datetime as dt
import json
import random

from bench.common import log
from bench.datagen import gen_now, ip_of, local_dt, next_id

N_COLS = ["id", "user_id", "channel", "address", "template_key", "subject", "body", "sms_template", "params",
          "locale", "formal", "status", "attempts", "last_error", "dedupe_key", "related_type", "related_id", "link",
          "provider_id", "created_at", "due_at", "claimed_at", "sent_at", "failed_at", "read_at"]
POLICY_NOTICE = ("policy_change", "关于修订《员工手册》的通知",
                 "各位同事：\n\n公司已完成《员工手册》的修订，新版自下月起施行。请登录门户阅读全文并在线确认。\n\n人力资源中心")
WARNING_NOTICE = ("warning", "书面警告通知书",
                  "经核查，你存在连续旷工的情况，违反了《员工手册》考勤管理相关规定。现予以书面警告，请于收到本通知后三日内"
                  "与人力资源中心联系说明情况。")


def load(ctx) -> None:
    from flask import current_app
    from flask_babel import force_locale
    from flask_babel import gettext as _
    from flask_babel.speaklater import LazyString
    from sqlalchemy import text

    from portal.attendance.labels import ANOMALY_LABELS
    from portal.core import notify
    from portal.core.signatures import content_hash
    from portal.offboarding.labels import label

    co, loader, tz = ctx.company, ctx.loader, ctx.tz
    rng = random.Random(co.seed + 70)
    now = gen_now(ctx)
    cfg = current_app.config
    people_by_user = {p.user_id: p for p in co.people if p.user_id}
    notes: list[tuple] = []  # (at, user_id, template, context, related, link, dedupe, channels, formal)

    def add(at, uid, template, context, related, link, dedupe, channels=None, formal=False):
        notes.append((at, uid, template, context, related, link, dedupe, channels, formal))

    for n in getattr(ctx, "training_notes", []) + getattr(ctx, "offboarding_notes", []):
        at, uid, template, context, related, link, dedupe = n
        channels = ("inapp", "email", "sms") if related[0] == "checklist_items" else (
            ("inapp", "email") if template == "reminder" else None)
        add(at, uid, template, context, related, link, dedupe, channels)

    # ---- OKR early warnings
    n_months, threshold, drop = ctx.okr["warn"] if getattr(ctx, "okr", None) else (2, 70, 20)
    perf_view_all = [p.user_id for p in co.people if p.user_id and ({"hr", "admin"} & set(p.roles))]
    for wid, eid, month, data, created in getattr(ctx, "okr_warnings", []):
        emp = co.person(eid)
        numbers = ", ".join(f"{k}: {v if v is not None else '—'}%" for k, v in data["months"].items())
        rec = set(perf_view_all)
        mgr_id = emp.manager_id or next((d.head_id for d in co.depts if d.id == emp.dept_id), None)
        if mgr_id and mgr_id != emp.id and co.person(mgr_id).user_id:
            rec.add(co.person(mgr_id).user_id)
        for uid in sorted(rec):
            if uid == emp.user_id:
                continue
            add(created, uid, "perf.warning", {"name": emp.name, "numbers": numbers, "months": n_months,
                                               "threshold": threshold, "drop": drop},
                ("perf_warnings", wid), "/performance/warnings", f"perfwarn:{eid}:{month:%Y-%m}:{uid}")

    # ---- attendance alerts of the anomalies the scans raised
    alert = [c for c in "inapp,email".split(",")]
    escal = ["inapp", "email", "sms"]
    with loader.engine.connect() as conn:
        try:
            row = conn.execute(text("SELECT alert_channels, escalation_channels FROM attendance_settings LIMIT 1")).first()
            if row:
                alert, escal = [c for c in row[0].split(",") if c], [c for c in row[1].split(",") if c]
            anomalies = conn.execute(text("SELECT id, employee_id, kind, key_date, detected_on, days, notified_at "
                                          "FROM attendance_anomalies WHERE notified_at IS NOT NULL ORDER BY id")).all()
        except Exception:  # noqa: BLE001 - no attendance step
            anomalies = []
    hr_alert = sorted(co.hr_user_ids)
    for aid, eid, kind, key_date, detected_on, days, notified_at in anomalies:
        emp = co.person(eid)
        key_date = _date(key_date)
        detected_on = _date(detected_on)
        notified_at = _aware(notified_at)
        appr = None
        if emp.manager_id:
            appr = co.person(emp.manager_id).user_id
        else:
            d = next((x for x in co.depts if x.id == emp.dept_id), None)
            if d and d.head_id and d.head_id != emp.id:
                appr = co.person(d.head_id).user_id
        context = {"name": emp.name, "emp_no": emp.emp_no, "date": detected_on.isoformat(),
                   "start": key_date.isoformat(), "days": days, "month": key_date.strftime("%Y-%m"),
                   "detail": label(ANOMALY_LABELS, kind), "title": emp.name}
        if kind == "absent":
            template, channels, rec = "attendance.absent", alert, [appr] + hr_alert
            context["date"] = key_date.isoformat()
        elif kind == "escalation":
            template, channels, rec = "attendance.escalation", escal, hr_alert + [appr]
        else:
            template, channels, rec = "attendance.late", alert, [appr] + hr_alert
        seen = set()
        for uid in rec:
            if not uid or uid in seen or uid == emp.user_id:
                continue
            seen.add(uid)
            # the scan runs as a job (no request): services._link gives no link
            add(notified_at, uid, template, context, ("attendance_anomalies", aid), "", f"att:{aid}:{uid}", channels)

    # ---- formal notices (notices.send) with reads and signed acknowledgements
    ev = getattr(ctx, "evidence", None)
    notice_rows, rec_rows = [], []
    hr_uid = co.hr_user_ids[0]
    accounts = sorted(u for u, p in people_by_user.items() if p.status != "left")
    rid = next_id(loader, "notice_recipients")
    nid0 = next_id(loader, "notices")
    plan = [(POLICY_NOTICE, accounts, co.end - dt.timedelta(days=min(20, (co.end - co.start).days // 2)))]
    vanished = [p for p in co.people if p.vanish_date and p.user_id]
    for p in (vanished or [people_by_user[u] for u in accounts if not people_by_user[u].head_level])[:2]:
        plan.append((WARNING_NOTICE, [p.user_id], co.end - dt.timedelta(days=2)))
    for k, ((kind, title, body), users, day) in enumerate(plan):
        nid = nid0 + k
        sent = local_dt(tz, day, 10 * 60 + k)
        content = {"notice_id": nid, "kind": kind, "title": title, "body": body, "requires_ack": True}
        chash = content_hash(content)
        notice_rows.append((nid, kind, title, body, True, "sent", chash, hr_uid, sent, hr_uid,
                            sent - dt.timedelta(hours=2), sent))
        if ev is not None:
            ev.event(sent, hr_uid, people_by_user[hr_uid].emp_no.lower(), "notice.sent", ("notices", nid),
                     {"content_hash": chash, "recipients": users}, ip_of(people_by_user[hr_uid]))
        for uid in users:
            p = people_by_user[uid]
            read = ack = sig = None
            ip = ""
            nrng = random.Random(co.seed * 31 + nid * 100_003 + uid)
            if nrng.random() < (0.9 if kind == "policy_change" else 0.3):
                read = min(sent + dt.timedelta(minutes=nrng.expovariate(1 / 600)), now - dt.timedelta(minutes=5))
                ip = ip_of(p)
                if ev is not None:
                    ev.event(read, uid, p.emp_no.lower(), "notice.read", ("notice_recipients", rid), {"notice_id": nid},
                             ip)
                if ev is not None and nrng.random() < 0.85:
                    ack = min(read + dt.timedelta(minutes=nrng.randint(1, 120)), now - dt.timedelta(minutes=4))
                    sig, h = ev.sign(uid, p.emp_no.lower(), p.name, "notice.ack", ("notice_recipients", rid),
                                     {**content, "content_hash": chash, "recipient_user_id": uid}, ack, ip)
                    ev.event(ack, uid, p.emp_no.lower(), "notice.acknowledged", ("notice_recipients", rid),
                             {"notice_id": nid, "signature_id": sig, "content_hash": h}, ip)
            rec_rows.append((rid, nid, uid, read, ip, ack, sig))
            add(sent, uid, "formal_notice", {"title": title, "body": body}, ("notice_recipients", rid),
                f"/notices/{nid}", f"notice:{nid}:{uid}", None, True)
            if read is not None:
                ctx_read = ctx.__dict__.setdefault("_notice_reads", {})
                ctx_read[("notice_recipients", rid, uid)] = read
            rid += 1
    if ev is not None:
        ev.write_signatures()
    loader.load("notices", ["id", "kind", "title", "body", "requires_ack", "status", "content_hash", "created_by_id",
                            "sent_at", "sent_by_id", "created_at", "updated_at"], notice_rows)
    loader.load("notice_recipients", ["id", "notice_id", "user_id", "read_at", "read_ip", "acknowledged_at",
                                      "signature_id"], rec_rows)
    notice_reads = ctx.__dict__.get("_notice_reads", {})

    # ---- render and write the outbox, oldest first
    notes.sort(key=lambda n: (n[0], n[1], n[2], n[6] or ""))
    locale = cfg.get("BABEL_DEFAULT_LOCALE", "zh_Hans_CN")
    addresses: dict[int, tuple] = {}

    def address(uid):
        a = addresses.get(uid)
        if a is None:
            p = people_by_user[uid]
            email = mobile = err_e = err_m = ""
            try:
                email = notify.normalise_email(f"{_email(ctx, p)}")
            except notify.NotifyError as exc:
                err_e = str(exc)
            try:
                mobile = notify.normalise_cn_mobile(_mobile(ctx, p))
            except notify.NotifyError as exc:
                err_m = str(exc)
            a = addresses[uid] = (email, err_e, mobile, err_m)
        return a

    start = next_id(loader, "notifications")
    counts = {"inapp": 0, "email": 0, "sms": 0, "failed": 0, "pending": 0, "read": 0}
    recent = now - dt.timedelta(minutes=3)
    with force_locale(locale):
        tmpl = {k: (_(t.subject), _(t.body)) for k, t in notify.TEMPLATES.items()}

        def rows():
            nid = start
            for at, uid, template, context, related, link, dedupe, channels, formal in notes:
                if at > now:
                    continue
                t = notify.TEMPLATES[template]
                c = {k: str(v) if isinstance(v, LazyString) else v for k, v in context.items()}
                subject = (tmpl[template][0] % notify._Fill(c))[:300]
                body = tmpl[template][1] % notify._Fill(c)
                nrng = random.Random(nid)
                for ch in (channels or t.channels):
                    key = f"{dedupe}:{ch}" if dedupe else None
                    rel_t, rel_i = (str(related[0]), str(related[1])) if related else ("", "")
                    addr = sms_t = ""
                    params = "{}"
                    status, attempts, err, claimed, sent_at, failed_at, provider, read_at = \
                        "pending", 0, "", None, None, None, "", None
                    due_next = at
                    if ch == "inapp":
                        status, sent_at = "sent", at
                        r = notice_reads.get((rel_t, int(rel_i) if rel_i.isdigit() else rel_i, uid))
                        if r is not None:
                            read_at = r
                        elif not formal:
                            age = (now - at).total_seconds() / 86400
                            if nrng.random() < (0.92 if age > 14 else 0.7 if age > 3 else 0.35):
                                read_at = min(at + dt.timedelta(minutes=nrng.expovariate(1 / 240)), now)
                        counts["read"] += read_at is not None
                        if formal and read_at is not None and ev is not None:  # notify.mark_read
                            ev.event(read_at, uid, people_by_user[uid].emp_no.lower(), "notification.read",
                                     ("notifications", nid), {"related": f"{rel_t}:{rel_i}"},
                                     ip_of(people_by_user[uid]))
                    else:
                        email, err_e, mobile, err_m = address(uid)
                        if ch == "email":
                            addr, bad = email, err_e
                        else:
                            addr, bad = mobile, err_m
                            sms_t = cfg.get(t.sms_setting, "") or template
                            params = json.dumps({"title": str(c.get("title", subject))[:20], "link": link},
                                                ensure_ascii=False)
                        if bad:
                            status, err, failed_at = "failed", bad, at
                        elif at > recent:
                            pass  # still pending: the worker has not picked it up yet
                        elif at > now - dt.timedelta(hours=6) and nrng.random() < 0.02:
                            # the relay / gateway failed once: back to pending until the backoff is over
                            status, attempts = "pending", 1
                            claimed = at + dt.timedelta(seconds=nrng.uniform(0.5, 8))
                            err = ("SMTPServerDisconnected: Connection unexpectedly closed" if ch == "email"
                                   else "DeliveryError: gateway answered 503: busy")
                            due_next = now + dt.timedelta(seconds=nrng.randint(30, 600))
                        elif nrng.random() < 0.003:
                            status, attempts, failed_at = "failed", 5, at + dt.timedelta(seconds=2580)
                            claimed = failed_at
                            err = ("SMTPRecipientsRefused: {'%s': (550, b'5.1.1 mailbox unavailable')}" % addr
                                   if ch == "email" else "DeliveryError: gateway answered 429: rate limited")
                        else:
                            claimed = at + dt.timedelta(seconds=nrng.uniform(0.5, 8))
                            sent_at = claimed + dt.timedelta(seconds=nrng.uniform(0.2, 3))
                            status, attempts = "sent", 1
                            provider = (f"<{int(sent_at.timestamp() * 100)}.{nid}.{nrng.randrange(10 ** 9)}.n{nid}"
                                        f"@{(cfg.get('MAIL_FROM') or 'portal').rpartition('@')[2] or 'portal'}>"
                                        if ch == "email" else f"console-{nrng.randrange(16 ** 12):012x}")
                        counts["failed"] += status == "failed"
                        counts["pending"] += status == "pending"
                    counts[ch] += 1
                    due = due_next if status == "pending" and attempts else at
                    yield (nid, uid, ch, addr, template, subject, body, sms_t, params, locale, formal, status,
                           attempts, err, key, rel_t, rel_i, link, provider, at, due, claimed, sent_at, failed_at,
                           read_at)
                    nid += 1
        with loader.bulk_mode(["notifications"]) as bulk:  # the unique dedupe keys are checked by the rebuild
            loader.load("notifications", N_COLS, rows())
        ctx.report["notify_bulk_mode"] = bulk
    loader.reset_sequences(["notifications", "notices", "notice_recipients"])
    accounts_n = max(1, len(people_by_user))
    ctx.report["notify"] = {**counts, "per_account_inapp": round(counts["inapp"] / accounts_n, 1),
                            "notices": len(notice_rows), "notice_recipients": len(rec_rows)}
    log(f"  notify: {counts['inapp']:,} in-app ({counts['inapp'] / accounts_n:.1f} per account), "
        f"{counts['email']:,} email, {counts['sms']:,} SMS; {counts['pending']} pending, {counts['failed']} failed")


def _date(v):
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10])


def _aware(v):
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v)
    return v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)


def _email(ctx, p):
    return _contact(ctx)[p.id][0]


def _mobile(ctx, p):
    return _contact(ctx)[p.id][1]


def _contact(ctx):
    """Email and mobile of the employees with an account, as stored by the org step."""
    if getattr(ctx, "_contacts", None) is None:
        from sqlalchemy import text
        with ctx.loader.engine.connect() as conn:
            ctx._contacts = {r[0]: (r[1], r[2]) for r in conn.execute(text(
                "SELECT e.id, e.email, e.mobile FROM employees e JOIN users u ON u.employee_id = e.id"))}
    return ctx._contacts


def verify(ctx, sample: int = 100) -> dict:
    """Render sampled outbox rows again with the portal's notify._compose and compare."""
    from sqlalchemy import select

    from portal.core import notify
    from portal.core.db import db
    from portal.core.models import User
    rng = random.Random(ctx.company.seed + 71)
    db.session.rollback()
    ids = db.session.scalars(select(notify.Notification.id).where(notify.Notification.template_key == "formal_notice")
                             .order_by(notify.Notification.id)).all()
    checked = mismatched = 0
    examples = []
    for nid in rng.sample(list(ids), min(sample, len(ids))):
        n = db.session.get(notify.Notification, nid)
        if n.template_key not in ("reminder", "training.assigned", "formal_notice", "perf.warning"):
            continue  # lazy (translated) context values are not stored: compare where the context is plain
        user = db.session.get(User, n.user_id)
        ctx_ = {}
        if n.template_key == "formal_notice":
            from portal.notices.models import Notice, NoticeRecipient
            r = db.session.get(NoticeRecipient, int(n.related_id))
            nt = db.session.get(Notice, r.notice_id)
            ctx_ = {"title": nt.title, "body": nt.body}
        else:
            continue
        msg = notify.Message(user, n.template_key, ctx_, [n.channel], (n.related_type, n.related_id), n.formal,
                             None, None, n.link)
        rows = notify._compose(msg, set(notify.CHANNELS), set())
        checked += 1
        got = (rows[0].subject, rows[0].body, rows[0].address or "", rows[0].channel) if rows else None
        if got != (n.subject, n.body, n.address or "", n.channel):
            mismatched += 1
            if len(examples) < 3:
                examples.append({"notification": nid, "stored": [n.subject, n.address], "module": got and got[::2]})
    # the inbox page's own count query
    uid = db.session.scalar(select(notify.Notification.user_id).where(notify.Notification.channel == "inapp")
                            .order_by(notify.Notification.user_id).limit(1))
    unread = notify.unread_count(uid) if uid else 0
    db.session.rollback()
    return {"checked": checked, "mismatched": mismatched, "examples": examples, "unread_of_first_user": unread}


def verify_audit(ctx) -> dict:
    """audit.verify over the whole chain, then sampled signatures against the modules' content."""
    from portal.core import audit
    from portal.core.db import db
    db.session.rollback()
    res = audit.verify()
    out = {"chain_ok": res.ok, "chain_checked": res.checked, "unsealed": res.unsealed, "reason": res.reason,
           "checked": 0, "mismatched": 0 if res.ok else 1, "examples": []}
    from bench.datagen import offboarding, training
    for name, fn in (("acknowledgements", training.verify_acknowledgements),
                     ("handover_signatures", offboarding.verify_signatures), ("notice_acks", _verify_notice_acks)):
        r = fn(ctx)
        out["checked"] += r["checked"]
        out["mismatched"] += r["mismatched"]
        out["examples"] += [{name: e} for e in r["examples"]]
        out[name] = r["checked"]
    return out


def _verify_notice_acks(ctx, sample: int = 30) -> dict:
    from sqlalchemy import select

    from portal.core import signatures
    from portal.core.db import db
    from portal.notices import services
    from portal.notices.models import Notice, NoticeRecipient
    rng = random.Random(ctx.company.seed + 72)
    ids = db.session.scalars(select(NoticeRecipient.id).where(NoticeRecipient.signature_id.is_not(None))
                             .order_by(NoticeRecipient.id)).all()
    bad, examples = 0, []
    picked = rng.sample(list(ids), min(sample, len(ids)))
    for rid in picked:
        r = db.session.get(NoticeRecipient, rid)
        notice = db.session.get(Notice, r.notice_id)
        res = signatures.verify(db.session.get(signatures.Signature, r.signature_id), services.ack_content(notice, r))
        ok = res.ok and services.content_intact(notice)
        if not ok:
            bad += 1
            if len(examples) < 3:
                examples.append({"notice_recipient": rid, "reason": res.reason})
    db.session.rollback()
    return {"checked": len(picked), "mismatched": bad, "examples": examples}

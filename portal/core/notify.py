"""Transactional outbox and delivery channels (in-app, email over SMTP, SMS over an HTTP gateway).

A message is first a ``Notification`` row written in the same transaction as the business change. After
commit a delivery job is queued. ``deliver`` claims the row with a conditional UPDATE (pending -> sending),
so two runs of the same job send once; a failure goes back to pending with a backoff and is retried (RQ
Retry + the sweep), and after ``MAX_ATTEMPTS`` it is marked failed with the error for HR to see. The
periodic ``sweep`` re-queues what is still pending (e.g. Redis was down at submit time) and what a killed
worker left in ``sending``.

States are honest: ``sent`` means our SMTP relay / SMS gateway accepted the message (or, in-app, that it
is in the recipient's inbox); ``read_at`` is set when the recipient opens it in the portal. Nothing here
claims delivery to the person.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any, Iterable, Optional

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel.speaklater import LazyString
from sqlalchemy import (Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, and_, or_,
                        select, update)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import Base, UTCDateTime, db, utcnow
from portal.core.security import N_

log = logging.getLogger("portal.notify")

CHANNELS = ("inapp", "email", "sms")
MAX_ATTEMPTS = 5
BACKOFF = (30, 120, 600, 1800)  # seconds before attempts 2..5
DELIVERY_BATCH = 50  # rows per deliver_many job (send_many, sweep)
# deliver_many records accepted messages in groups: a worker killed in between leaves at most this many
# already-sent rows in 'sending', which the sweep sends again after the lease (delivery is at least once).
SENT_MARKS_PER_COMMIT = 10
STUCK_AFTER_SECONDS = 300  # a 'sending' row older than this was left by a dead worker (OUTBOX_LEASE_SECONDS)


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_channel_created", "user_id", "channel", "created_at"),
        Index("ix_notifications_status_due", "status", "due_at"),
        Index("ix_notifications_related", "related_type", "related_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(200), default="")
    template_key: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    sms_template: Mapped[str] = mapped_column(String(60), default="")
    params: Mapped[str] = mapped_column(Text, default="{}")
    locale: Mapped[str] = mapped_column(String(16), default="zh_Hans_CN")
    formal: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|sending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    dedupe_key: Mapped[Optional[str]] = mapped_column(String(200), unique=True)
    related_type: Mapped[str] = mapped_column(String(60), default="")
    related_id: Mapped[str] = mapped_column(String(60), default="")
    link: Mapped[str] = mapped_column(String(300), default="")
    provider_id: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    claimed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    sent_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    failed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    read_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class NotificationPreference(Base):
    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


# ---------------------------------------------------------------- templates

@dataclass(frozen=True)
class Template:
    subject: str  # msgid, %(name)s placeholders
    body: str  # msgid
    sms_setting: str = "SMS_TEMPLATE_GENERIC"  # config key holding the gateway's pre-approved template id
    channels: tuple[str, ...] = ("inapp", "email")


TEMPLATES: dict[str, Template] = {
    "generic": Template(N_("%(subject)s"), N_("%(body)s")),
    "reminder": Template(N_("Reminder: %(title)s"),
                         N_("Reminder: %(title)s is due on %(due)s. Open the portal to complete it."),
                         channels=("inapp", "email", "sms")),
    "formal_notice": Template(N_("Formal notice: %(title)s"), N_("%(body)s"), "SMS_TEMPLATE_NOTICE",
                              ("inapp", "email", "sms")),
}


def register_template(key: str, template: Template) -> None:
    TEMPLATES[key] = template


class NotifyError(ValueError):
    pass


def normalise_cn_mobile(value: str) -> str:
    """E.164 form of a Chinese mobile number, or NotifyError with a user-facing message."""
    raw = (value or "").strip().replace(" ", "").replace("-", "")
    if not raw:
        raise NotifyError(_("No mobile number on file."))
    try:
        num = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        raise NotifyError(_("%(value)s is not a phone number.", value=value))
    if (not phonenumbers.is_valid_number(num)
            or phonenumbers.number_type(num) not in (phonenumbers.PhoneNumberType.MOBILE,
                                                     phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)):
        raise NotifyError(_("%(value)s is not a valid mobile number.", value=value))
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(value: str) -> str:
    try:
        return validate_email((value or "").strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise NotifyError(_("%(value)s is not a valid email address.", value=value or "—"))


def enabled_channels(user_id: int) -> set[str]:
    prefs = {p.channel: p.enabled for p in db.session.scalars(
        select(NotificationPreference).where(NotificationPreference.user_id == user_id))}
    return {c for c in CHANNELS if c == "inapp" or prefs.get(c, True)}


def set_preference(user_id: int, channel: str, enabled: bool) -> None:
    if channel not in ("email", "sms"):
        raise NotifyError(_("In-app messages cannot be turned off."))
    pref = db.session.scalar(select(NotificationPreference).where(
        NotificationPreference.user_id == user_id, NotificationPreference.channel == channel))
    if pref is None:
        db.session.add(NotificationPreference(user_id=user_id, channel=channel, enabled=enabled))
    else:
        pref.enabled = enabled


# ---------------------------------------------------------------- writing to the outbox

@dataclass
class Message:
    """One message for ``send_many``: the arguments of ``send``."""
    user: Any
    template_key: str
    context: dict = field(default_factory=dict)
    channels: Optional[Iterable[str]] = None
    related: Optional[tuple[str, Any]] = None
    formal: bool = False
    dedupe_key: Optional[str] = None
    due_at: Optional[dt.datetime] = None
    link: str = ""


def send(user, template_key: str, context: dict | None = None, channels: Iterable[str] | None = None,
         related: tuple[str, Any] | None = None, formal: bool = False, dedupe_key: str | None = None,
         due_at: dt.datetime | None = None, link: str = "") -> list[Notification]:
    """Write outbox rows for ``user`` (a User) in the current transaction; delivery is queued after commit.

    Formal messages ignore the user's channel preferences. With ``dedupe_key`` a second call with the same
    key (e.g. the scheduler ran twice) adds nothing. Context values that are lazy strings (a label of a
    stored code, or ``_l("...", name=...)``) are rendered in the recipient's language; pass those instead
    of raw codes or text translated for the sender.
    """
    msg = Message(user, template_key, dict(context or {}), channels, related, formal, dedupe_key, due_at, link)
    allowed = set(CHANNELS) if formal else enabled_channels(user.id)
    rows: list[Notification] = []
    for n in _compose(msg, allowed, _existing_keys(_candidate_keys([msg]))):
        try:
            with db.session.begin_nested():
                db.session.add(n)
        except IntegrityError:  # the same dedupe key committed concurrently
            continue
        rows.append(n)
    _queue(rows)
    return rows


def send_many(messages: list[Message]) -> list[Notification]:
    """``send`` for many messages at once (a daily scan, a notice to the whole company): preferences and
    dedupe keys are read with one query each and the rows are inserted with one flush, instead of several
    statements per message. Same results as calling ``send`` for each message in order. If a dedupe key
    was committed concurrently (the bulk insert fails on the unique index), it falls back to ``send`` one
    by one, which skips the duplicates."""
    if not messages:
        return []
    prefs: dict[int, set[str]] = {}
    user_ids = sorted({m.user.id for m in messages if not m.formal})
    for chunk in _chunks(user_ids, 500):
        for p in db.session.scalars(select(NotificationPreference).where(
                NotificationPreference.user_id.in_(chunk))):
            if not p.enabled and p.channel != "inapp":  # in-app cannot be turned off (set_preference)
                prefs.setdefault(p.user_id, set())
                prefs[p.user_id].add(p.channel)
    existing = _existing_keys(_candidate_keys(messages))
    # Load the recipients' employee rows (addresses) at once; user.employee then comes from the identity map.
    from portal.org.models import Employee
    emp_ids = sorted({m.user.employee_id for m in messages if m.user.employee_id})
    for chunk in _chunks(emp_ids, 500):
        db.session.scalars(select(Employee).where(Employee.id.in_(chunk))).all()
    rows: list[Notification] = []
    for m in messages:
        allowed = {c for c in CHANNELS if c not in prefs.get(m.user.id, set())}
        for n in _compose(m, allowed, existing):
            if n.dedupe_key:
                existing.add(n.dedupe_key)  # the same key twice in one batch: the first wins, as with send
            rows.append(n)
    # Rows with the same columns set are inserted in one batch: group them (in-app rows carry sent_at,
    # email/SMS rows an address ...), else the flush alternates shapes and inserts row by row.
    rows.sort(key=lambda n: (n.channel, n.status))
    try:
        with db.session.begin_nested():
            db.session.add_all(rows)
            db.session.flush()
    except IntegrityError:
        for n in rows:  # detached by the rollback of the savepoint: start again, one by one
            if n in db.session:
                db.session.expunge(n)
        out: list[Notification] = []
        for m in messages:
            out.extend(send(m.user, m.template_key, m.context, m.channels, m.related, m.formal, m.dedupe_key,
                            m.due_at, m.link))
        return out
    _queue(rows, batch=DELIVERY_BATCH)
    return rows


def _chunks(seq: list, n: int):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _candidate_keys(messages: list[Message]) -> list[str]:
    return [f"{m.dedupe_key}:{c}" for m in messages if m.dedupe_key
            for c in (m.channels or TEMPLATES[m.template_key].channels)]


def _existing_keys(keys: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(sorted(set(keys)), 500):
        found.update(db.session.scalars(select(Notification.dedupe_key).where(
            Notification.dedupe_key.in_(chunk))))
    return found


def _compose(m: Message, allowed: set[str], existing: set[str]) -> list[Notification]:
    """The outbox rows of one message (not yet added to the session)."""
    template = TEMPLATES[m.template_key]
    user = m.user
    wanted = list(m.channels or template.channels)
    if not m.formal:
        wanted = [c for c in wanted if c in allowed]
    locale = user.locale or current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_Hans_CN")
    with force_locale(locale):
        # Lazy values (labels from lazy_gettext, or _l("...", x=...) sentences) become text in the
        # recipient's language here; everything else is interpolated as given.
        context = {k: str(v) if isinstance(v, LazyString) else v for k, v in m.context.items()}
        subject = _(template.subject) % _Fill(context)
        body = _(template.body) % _Fill(context)
    now = utcnow()
    rows: list[Notification] = []
    employee = user.employee
    for channel in wanted:
        key = f"{m.dedupe_key}:{channel}" if m.dedupe_key else None
        if key and key in existing:
            continue
        n = Notification(user_id=user.id, channel=channel, template_key=m.template_key, subject=subject[:300],
                         body=body, locale=locale, formal=m.formal, dedupe_key=key, link=m.link,
                         related_type=str(m.related[0]) if m.related else "",
                         related_id=str(m.related[1]) if m.related else "", created_at=now,
                         due_at=m.due_at or now, status="pending", attempts=0)
        if channel == "inapp":
            n.status, n.sent_at = "sent", now  # it is in the recipient's inbox once committed
        else:
            try:
                if channel == "email":
                    n.address = normalise_email(employee.email if employee else "")
                else:
                    n.address = normalise_cn_mobile(employee.mobile if employee else "")
                    n.sms_template = current_app.config.get(template.sms_setting, "") or m.template_key
                    n.params = json.dumps(_sms_params(context, subject, m.link), ensure_ascii=False)
            except NotifyError as exc:
                n.status, n.last_error, n.failed_at = "failed", str(exc), now
        rows.append(n)
    return rows


def _queue(rows: list[Notification], batch: int = 1) -> None:
    """Queue delivery of the pending rows once the transaction commits: one ``deliver`` job per row, or
    with ``batch`` > 1 one ``deliver_many`` job per ``batch`` rows that are due now (a notice to the whole
    company, a daily scan: fewer jobs, one SMTP connection per job)."""
    from portal.core import jobs
    now = utcnow()
    due_now: list[int] = []
    for n in rows:
        if n.status != "pending":
            continue
        delay = (n.due_at - now) if n.due_at and n.due_at > now else None
        if batch > 1 and delay is None:
            due_now.append(n.id)
        else:
            jobs.enqueue_after_commit("portal.core.notify.deliver", n.id, queue="notify",
                                      delay=delay, retry=_retry())
    for chunk in _chunks(due_now, batch):
        jobs.enqueue_after_commit("portal.core.notify.deliver_many", chunk, queue="notify")


class _Fill(dict):
    """Template values; a placeholder without a value shows as a dash instead of failing."""

    def __missing__(self, key):
        return "—"


def _sms_params(context: dict, subject: str, link: str) -> dict:
    """SMS gateways in China send only pre-approved templates: short parameters, never the full text."""
    return {"title": str(context.get("title", subject))[:20], "link": link}


def _retry():
    from rq import Retry
    return Retry(max=MAX_ATTEMPTS - 1, interval=list(BACKOFF))


# ---------------------------------------------------------------- delivery

class DeliveryError(Exception):
    pass


def deliver(notification_id: int) -> str:
    """Deliver one outbox row. Idempotent: a row that is not pending (or not yet due) is left alone.
    A failed attempt raises, so RQ retries the job with its backoff (the sweep is the safety net)."""
    with _Mailer() as mailer:
        result = _deliver(notification_id, mailer)
    if isinstance(result, Exception):
        raise DeliveryError(str(result)) from result
    return result


def deliver_many(notification_ids: list[int]) -> dict[str, int]:
    """Deliver several outbox rows in one job over one SMTP connection. The due pending rows of the batch
    are claimed with one conditional UPDATE (a row another worker holds is skipped, so twice = once);
    then each is sent and recorded on its own commit, so a failure of one affects no other: the failed
    row goes back to pending with its backoff and the periodic sweep queues it again when it is due."""
    now = utcnow()
    claimed = set(db.session.scalars(
        update(Notification)
        .where(Notification.id.in_(notification_ids), Notification.status == "pending",
               or_(Notification.due_at.is_(None), Notification.due_at <= now))
        .values(status="sending", claimed_at=now, attempts=Notification.attempts + 1)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)))
    db.session.commit()
    counts: dict[str, int] = {}
    if len(claimed) < len(notification_ids):
        counts["skipped"] = len(notification_ids) - len(claimed)
    if not claimed:
        return counts
    rows = db.session.scalars(select(Notification).where(Notification.id.in_(claimed))
                              .order_by(Notification.id).execution_options(populate_existing=True)).all()
    for n in rows:  # read-only from here: a commit per row must not expire (and reload) the others
        db.session.expunge(n)
    sent: list[dict] = []
    try:
        with _Mailer() as mailer:
            for n in rows:
                result = _attempt(n, mailer, sent)
                key = "retry" if isinstance(result, Exception) else result
                counts[key] = counts.get(key, 0) + 1
                if len(sent) >= SENT_MARKS_PER_COMMIT:
                    _mark_sent(sent)
    finally:
        _mark_sent(sent)
    return counts


def _mark_sent(sent: list[dict]) -> None:
    """Record a group of accepted messages: one executemany UPDATE by primary key and one commit."""
    if sent:
        db.session.execute(update(Notification), sent)
        db.session.commit()
        sent.clear()


def _deliver(notification_id: int, mailer: "_Mailer") -> str | Exception:
    now = utcnow()
    claimed = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == "pending",
               or_(Notification.due_at.is_(None), Notification.due_at <= now))
        .values(status="sending", claimed_at=now, attempts=Notification.attempts + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    if claimed.rowcount == 0:
        return "skipped"
    return _attempt(db.session.get(Notification, notification_id, populate_existing=True), mailer)


def _attempt(n: Notification, mailer: "_Mailer", sent: list[dict] | None = None) -> str | Exception:
    """Send a claimed row and record the outcome (sent / back to pending with a backoff / failed) with one
    UPDATE and a commit; with ``sent``, a success is appended there for the caller to record in a group.
    ``n`` may be detached (deliver_many): it is only read."""
    nid, attempts = n.id, n.attempts
    try:
        provider_id = _send(n, mailer)
    except Exception as exc:  # any gateway/SMTP problem: record it, back off, retry
        mailer.reset()  # the connection may be in any state after a failure
        error = f"{type(exc).__name__}: {exc}"[:1000]
        if attempts >= MAX_ATTEMPTS:
            _record(nid, status="failed", failed_at=utcnow(), last_error=error)
            log.error("notification %s failed for good: %s", nid, error)
            return "failed"
        due = utcnow() + dt.timedelta(seconds=BACKOFF[min(attempts, len(BACKOFF)) - 1])
        _record(nid, status="pending", due_at=due, last_error=error)
        return exc
    values = dict(status="sent", sent_at=utcnow(), provider_id=provider_id[:200], last_error="")
    if sent is None:
        _record(nid, **values)
    else:
        sent.append({"id": nid, **values})
    return "sent"


def _record(nid: int, **values) -> None:
    db.session.execute(update(Notification).where(Notification.id == nid).values(**values)
                       .execution_options(synchronize_session=False))
    db.session.commit()


class _Mailer:
    """An SMTP connection opened on first use and reused for the messages of one job."""

    def __init__(self):
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.reset()

    def connection(self) -> smtplib.SMTP:
        if self.smtp is None:
            cfg = current_app.config
            mode = cfg.get("SMTP_TLS", "none")
            timeout = cfg.get("SMTP_TIMEOUT", 30)
            if mode == "ssl":
                smtp = smtplib.SMTP_SSL(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=timeout,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=timeout)
            try:
                if mode == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.get("SMTP_USER"):
                    smtp.login(cfg["SMTP_USER"], cfg["SMTP_PASSWORD"])
            except Exception:
                smtp.close()
                raise
            self.smtp = smtp
        return self.smtp

    def reset(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except Exception:  # already gone
                self.smtp.close()
            self.smtp = None


def _send(n: Notification, mailer: "_Mailer | None" = None) -> str:
    if n.channel == "email":
        return send_email(n, mailer)
    if n.channel == "sms":
        return send_sms(n)
    return "inapp"


def send_email(n: Notification, mailer: "_Mailer | None" = None) -> str:
    cfg = current_app.config
    msg = EmailMessage()
    msg["From"] = cfg["MAIL_FROM"]
    msg["To"] = n.address
    msg["Subject"] = n.subject
    msg_id = make_msgid(idstring=f"n{n.id}", domain=cfg["MAIL_FROM"].rpartition("@")[2] or "portal")
    msg["Message-ID"] = msg_id
    msg["X-Portal-Notification"] = str(n.id)
    msg.set_content(n.body + (f"\n\n{n.link}" if n.link else ""))
    if mailer is None:
        with _Mailer() as own:
            own.connection().send_message(msg)
    else:
        mailer.connection().send_message(msg)
    return msg_id


def send_sms(n: Notification) -> str:
    cfg = current_app.config
    backend = cfg.get("SMS_BACKEND", "console")
    payload = {"to": n.address, "template_id": n.sms_template, "params": json.loads(n.params or "{}"),
               "reference": f"n{n.id}"}
    if backend == "console":
        log.warning("SMS (console backend) to %s: %s", n.address, json.dumps(payload, ensure_ascii=False))
        return f"console-{uuid.uuid4().hex[:12]}"
    if backend != "http" or not cfg.get("SMS_URL"):
        raise DeliveryError("SMS gateway is not configured (SMS_BACKEND=http and SMS_URL)")
    req = urllib.request.Request(cfg["SMS_URL"], data=json.dumps(payload).encode("utf-8"), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {cfg.get('SMS_TOKEN', '')}",
                                          "Idempotency-Key": f"portal-notification-{n.id}"})
    try:
        with urllib.request.urlopen(req, timeout=cfg.get("SMS_TIMEOUT", 10)) as resp:
            body = resp.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"gateway answered {exc.code}: {exc.read(300).decode('utf-8', 'replace')}")
    try:
        return str(json.loads(body).get("id", "accepted"))
    except ValueError:
        return "accepted"


def sweep(now: dt.datetime | None = None, batch: int = 2000) -> int:
    """Re-queue due pending rows and rows a dead worker left in 'sending'. Returns how many."""
    from portal.core import jobs
    now = now or utcnow()
    lease = dt.timedelta(seconds=current_app.config.get("OUTBOX_LEASE_SECONDS", STUCK_AFTER_SECONDS))
    db.session.execute(
        update(Notification)
        .where(Notification.status == "sending", Notification.claimed_at < now - lease)
        .values(status="pending").execution_options(synchronize_session=False))
    db.session.commit()
    ids = db.session.scalars(
        select(Notification.id).where(Notification.status == "pending",
                                      or_(Notification.due_at.is_(None), Notification.due_at <= now))
        .order_by(Notification.id).limit(batch)).all()
    for chunk in _chunks(list(ids), DELIVERY_BATCH):
        jobs.enqueue("portal.core.notify.deliver_many", chunk, queue="notify")
    return len(ids)


# ---------------------------------------------------------------- in-app inbox

def unread_count(user_id: int) -> int:
    from sqlalchemy import func
    return db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.channel == "inapp",
        Notification.read_at.is_(None))) or 0


def mark_read(n: Notification, user) -> bool:
    """First open of an in-app message records the read time (and an audit event for formal ones)."""
    if n.read_at is not None or n.user_id != user.id:
        return False
    n.read_at = utcnow()
    if n.formal:
        from portal.core import audit
        audit.record("notification.read", n, {"related": f"{n.related_type}:{n.related_id}"}, actor=user)
    return True

"""Formal notices: HR composes and sends; recipients read and sign; HR exports the delivery record."""
from __future__ import annotations

import re

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.core import audit, signatures
from portal.core.db import db, get_or_404
from portal.core.security import can, login_only, register_permissions, require
from portal.core.ui import local, page_arg, paginate, register_nav, render
from portal.home.views import register_card
from portal.notices import bp, services
from portal.notices.forms import KIND_LABELS, AckForm, NoticeForm
from portal.notices.models import Notice, NoticeRecipient

register_permissions(
    {"notices.manage": _l("Compose and send formal notices"),
     "notices.view_all": _l("See every formal notice and its delivery record")},
    {"hr": ["notices.manage", "notices.view_all"], "legal": ["notices.view_all"]})
register_nav("notices.index", _l("Notices"), None, order=60)
register_card(None, _l("Formal notices"), _l("Notices addressed to you, to read and acknowledge."),
              "notices.index")
register_card("notices.manage", _l("Send a formal notice"),
              _l("Warnings, termination, policy changes: portal + email + SMS with a delivery record."),
              "notices.compose")

ERRORS = {
    "bad_kind": _l("Choose a kind of notice."),
    "empty": _l("Title and text are required."),
    "unknown_recipients": _l("Unknown or inactive recipients: %(names)s"),
    "no_recipients": _l("Add at least one recipient."),
    "already_sent": _l("This notice was already sent and cannot change."),
    "not_sent": _l("This notice has not been sent."),
    "already_acknowledged": _l("You already acknowledged this notice."),
}


def _msg(exc: services.NoticeError) -> str:
    return str(ERRORS.get(exc.code, exc.code)) % exc.params if exc.params else str(ERRORS.get(exc.code, exc.code))


def _fmt(value) -> str:
    """Company time, as format_datetime(value, "yyyy-MM-dd HH:mm:ss") but without Babel per cell (CSV of
    thousands of rows)."""
    return local(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


@bp.route("/notices")
@login_only
def index():
    page, per_page = page_arg()
    if can(current_user, "notices.view_all"):
        stmt = select(Notice).order_by(Notice.created_at.desc(), Notice.id.desc())
        mine = False
    else:
        stmt = (select(Notice).join(NoticeRecipient).where(NoticeRecipient.user_id == current_user.id,
                                                           Notice.status == "sent")
                .order_by(Notice.sent_at.desc()))
        mine = True
    return render("notices/index.html", "notices/_list.html", page=paginate(stmt, page, per_page), mine=mine,
                  kinds=KIND_LABELS)


def _tokens(raw: str) -> list[str]:
    return [t for t in re.split(r"[\s,，;；]+", raw or "") if t]


@bp.route("/notices/new", methods=["GET", "POST"])
@require("notices.manage")
def compose():
    form = NoticeForm()
    status = 200
    if form.validate_on_submit():
        try:
            notice = services.save_draft(current_user, form.kind.data, form.title.data, form.body.data,
                                         form.requires_ack.data, _tokens(form.recipients.data))
        except services.NoticeError as exc:
            form.recipients.errors = list(form.recipients.errors) + [_msg(exc)]
            status = 422
        else:
            db.session.commit()
            flash(_("Draft saved. Check it, then send."), "success")
            return redirect(url_for("notices.show", notice_id=notice.id), code=303)
    elif request.method == "POST":
        status = 422
    return render("notices/form.html", form=form, notice=None, status=status)


@bp.route("/notices/<int:notice_id>/edit", methods=["GET", "POST"])
@require("notices.manage")
def edit(notice_id: int):
    notice = get_or_404(Notice, notice_id)
    if notice.status != "draft":
        flash(_msg(services.NoticeError("already_sent")), "error")
        return redirect(url_for("notices.show", notice_id=notice.id), code=303)
    form = NoticeForm(obj=notice) if request.method == "GET" else NoticeForm()
    if request.method == "GET":
        form.recipients.data = "\n".join(r.user.employee.emp_no if r.user.employee else r.user.username
                                         for r in notice.recipients)
    status = 200
    if form.validate_on_submit():
        try:
            services.save_draft(current_user, form.kind.data, form.title.data, form.body.data,
                                form.requires_ack.data, _tokens(form.recipients.data), notice)
        except services.NoticeError as exc:
            form.recipients.errors = list(form.recipients.errors) + [_msg(exc)]
            status = 422
        else:
            db.session.commit()
            flash(_("Draft saved."), "success")
            return redirect(url_for("notices.show", notice_id=notice.id), code=303)
    elif request.method == "POST":
        status = 422
    return render("notices/form.html", form=form, notice=notice, status=status)


@bp.route("/notices/<int:notice_id>/send", methods=["POST"])
@require("notices.manage")
def send(notice_id: int):
    notice = db.session.scalar(select(Notice).where(Notice.id == notice_id).with_for_update())
    if notice is None:
        abort(404)
    try:
        services.send(notice, current_user)
    except services.NoticeError as exc:
        flash(_msg(exc), "error")
        return redirect(url_for("notices.show", notice_id=notice.id), code=303)
    db.session.commit()
    flash(_("Sent to %(n)s recipient(s) in the portal, by email and by SMS.", n=len(notice.recipients)),
          "success")
    return redirect(url_for("notices.show", notice_id=notice.id), code=303)


@bp.route("/notices/<int:notice_id>")
@login_only
def show(notice_id: int):
    notice = get_or_404(Notice, notice_id)
    recipient = services.recipient_for(notice, current_user)
    if can(current_user, "notices.view_all"):
        if recipient is not None and notice.status == "sent" and services.record_read(
                notice, recipient, current_user, request.remote_addr or ""):
            db.session.commit()
        page, per_page = page_arg(50)
        q = request.args.get("q", "").strip()[:100]
        result, rows, summary = None, [], None
        if notice.status == "sent":
            result, rows = services.delivery_page(notice, page, per_page, q)
            summary = services.delivery_summary(notice)
        return render("notices/detail.html", "notices/_delivery.html", notice=notice, rows=rows, page=result,
                      summary=summary, q=q, recipient=recipient, form=AckForm(), kinds=KIND_LABELS,
                      intact=services.content_intact(notice))
    if recipient is None or notice.status != "sent":
        abort(404)
    if services.record_read(notice, recipient, current_user, request.remote_addr or ""):
        db.session.commit()
    return render("notices/read.html", notice=notice, recipient=recipient, form=AckForm(), kinds=KIND_LABELS)


@bp.route("/notices/<int:notice_id>/ack", methods=["POST"])
@login_only
def acknowledge(notice_id: int):
    notice = get_or_404(Notice, notice_id)
    recipient = db.session.scalar(select(NoticeRecipient).where(
        NoticeRecipient.notice_id == notice.id, NoticeRecipient.user_id == current_user.id)
        .with_for_update(of=NoticeRecipient))
    if recipient is None or notice.status != "sent":
        abort(404)
    form = AckForm()
    if not form.validate_on_submit():
        form.password.errors = [_("Enter your password to sign.")]
        return render("notices/read.html", notice=notice, recipient=recipient, form=form, kinds=KIND_LABELS,
                      status=422)
    try:
        services.acknowledge(notice, recipient, current_user, form.password.data)
    except signatures.SignatureError:
        db.session.commit()  # keep the audit record of the failed re-authentication
        form.password.errors = [_("The password is not correct. Nothing was signed.")]
        return render("notices/read.html", notice=notice, recipient=recipient, form=form, kinds=KIND_LABELS,
                      status=422)
    except services.NoticeError as exc:
        flash(_msg(exc), "error")
        return redirect(url_for("notices.show", notice_id=notice.id), code=303)
    db.session.commit()
    flash(_("Signed. Your acknowledgement is recorded."), "success")
    return redirect(url_for("notices.show", notice_id=notice.id), code=303)


@bp.route("/notices/<int:notice_id>/record.csv")
@require("notices.view_all")
def record_csv(notice_id: int):
    notice = get_or_404(Notice, notice_id)
    audit.record("notice.record_exported", notice, {"format": "csv"})
    db.session.commit()
    body = services.delivery_csv(notice, _fmt)
    return Response(body, content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="notice-{notice.id}-delivery.csv"'})


@bp.route("/notices/<int:notice_id>/evidence")
@require("notices.view_all")
def evidence(notice_id: int):
    notice = get_or_404(Notice, notice_id)
    audit.record("notice.evidence_viewed", notice, {})
    db.session.commit()
    from portal.core.audit import verify
    return render("notices/evidence.html", notice=notice, rows=services.delivery_rows(notice),
                  kinds=KIND_LABELS, intact=services.content_intact(notice),
                  canonical=services.canonical(notice), chain=verify())

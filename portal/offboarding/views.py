"""Offboarding pages: resignation and termination, the offboarding page (checklist, transfers, sign-off,
signatures, unfreezes, revocation), queues, HR board, checklist templates, evidence pack."""
from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.core import audit, signatures, tasks
from portal.core.db import db, get_or_404
from portal.core.security import PERMISSIONS, effective_permissions, is_manager_of, login_only, require
from portal.core.ui import company_tz, register_nav, render
from portal.core.uploads import DOCUMENTS, StoredFile, UploadError, download, save_upload, upload_error_message
from portal.home.views import register_card
from portal.offboarding import bp, evidence, revocation, services
from portal.offboarding.clients import owned_by
from portal.offboarding.forms import (ITEM_STATUS_LABELS, KIND_LABELS, RESPONSIBLE_LABELS, REVOKE_LABELS,
                                      STAGE_LABELS, STEP_STATUS_LABELS, DatesForm, ItemForm, ReasonForm,
                                      RejectForm, ResignationForm, SignForm, StartForm, TemplateForm,
                                      TemplateItemForm, TerminationForm, UnfreezeForm, WaiveForm)
from portal.offboarding.labels import template_labels
from portal.offboarding.models import (ChecklistItem, ChecklistTemplate, Offboarding, RevocationRun,
                                       TemplateItem, UnfreezeRequest)
from portal.offboarding.services import OffboardingError
from portal.org.models import Department, Employee, Position

register_nav("offboarding.index", _l("Offboarding"), None, order=80)
register_card("offboarding.manage", _l("Offboarding board"),
              _l("Resignations, handover checklists, sign-off and account revocation."), "offboarding.index")

tasks.register_kind("offboarding.evidence", _l("Offboarding evidence pack"))

ERRORS = {
    "no_employee": _l("Your account is not linked to an employee record."),
    "already_left": _l("This employee has already left."),
    "already_open": _l("An offboarding is already in progress for this employee."),
    "reason_required": _l("A reason is required."),
    "last_day_required": _l("The last working day is required."),
    "completed": _l("This offboarding is completed and cannot change."),
    "bad_revoke_on": _l("Choose when the account is revoked."),
    "name_required": _l("A name is required."),
    "title_required": _l("A title is required."),
    "bad_responsible": _l("Choose who is responsible."),
    "bad_offset": _l("The due offset must be between -365 and 365 days."),
    "already_started": _l("The handover has already started."),
    "successor_required": _l("Name the successor (employee number)."),
    "successor_is_leaver": _l("The successor cannot be the leaver."),
    "successor_inactive": _l("The successor must be an active employee."),
    "no_template": _l("No checklist template with items fits this employee. Create one first."),
    "not_yours": _l("This item is not yours to fill."),
    "upload_required": _l("This item requires an uploaded document."),
    "note_required": _l("Write what was handed over or upload a document."),
    "not_responsible": _l("Only the person responsible for this item can confirm it."),
    "conflict": _l("Someone else changed this first. Reload and try again."),
    "hr_only": _l("Only HR can do this (and never for their own offboarding)."),
    "not_in_handover": _l("Items can only be waived during the handover."),
    "evidence_required": _l("Upload the evidence for the waiver."),
    "not_allowed": _l("You are not allowed to do this."),
    "no_clients_chosen": _l("Choose at least one client."),
    "already_decided": _l("This step was already decided by someone else. Nothing was changed."),
    "items_open": _l("Sign-off starts when every checklist item is done or waived."),
    "not_in_signoff": _l("This offboarding is not waiting for sign-off."),
    "self_approval": _l("You cannot approve your own offboarding."),
    "out_of_order": _l("Sign-off goes in order: the step of %(role)s comes first."),
    "not_your_step": _l("This sign-off step belongs to someone else."),
    "one_step_per_person": _l("You already approved another step of this sign-off; a second person must approve this one."),
    "item_required": _l("Choose the item to send back."),
    "not_ready_to_sign": _l("The handover can be signed once every sign-off step is approved."),
    "not_a_signer": _l("Only the leaver and the successor sign the handover."),
    "already_signed": _l("Already signed."),
    "incomplete": _l("The offboarding cannot be completed yet: see what is missing below."),
    "not_frozen": _l("This permission is not frozen."),
    "until_in_past": _l("The end time must be in the future."),
}


def _msg(exc: OffboardingError) -> str:
    text = ERRORS.get(exc.code, exc.code)
    if exc.code == "out_of_order":
        return str(text) % {"role": str(RESPONSIBLE_LABELS.get(exc.params.get("role"), exc.params.get("role")))}
    return str(text)


def _labels() -> dict:
    return template_labels()


def _ob_or_404(offboarding_id: int) -> Offboarding:
    ob = get_or_404(Offboarding, offboarding_id)
    if not services.involved(current_user, ob):
        abort(404)
    return ob


def _employee_by_no(no: str):
    return db.session.scalar(select(Employee).where(Employee.emp_no == (no or "").strip()))


# ---------------------------------------------------------------- lists

@bp.route("/offboarding")
@login_only
def index():
    if "offboarding.view_all" in effective_permissions(current_user):
        return render("offboarding/board.html", columns=services.board(), today=services._today(), **_labels())
    return render("offboarding/queue.html", q=services.queue_for(current_user), **_labels())


@bp.route("/offboarding/queue")
@login_only
def queue():
    return render("offboarding/queue.html", q=services.queue_for(current_user), **_labels())


# ---------------------------------------------------------------- resignation / termination

@bp.route("/offboarding/resign")
@require("offboarding.resign")
def resignation():
    ob = services.open_offboarding_of(current_user.employee_id) if current_user.employee_id else None
    emp = current_user.employee
    days = services.notice_days_for(emp, services._today()) if emp else None
    return render("offboarding/resign.html", form=ResignationForm(), ob=ob, days=days,
                  last_day=services._today() + dt.timedelta(days=days) if days is not None else None)


@bp.route("/offboarding/resign", methods=["POST"])
@require("offboarding.resign")
def resignation_submit():
    form = ResignationForm()
    emp = current_user.employee
    days = services.notice_days_for(emp, services._today()) if emp else None
    ctx = dict(ob=None, days=days, last_day=services._today() + dt.timedelta(days=days) if days is not None else None)
    if not form.validate_on_submit():
        return render("offboarding/resign.html", form=form, status=422, **ctx)
    db.session.commit()  # end the read transaction: the lock in services._begin is then its first statement
    try:
        ob = services.submit_resignation(current_user, form.reason.data or "")
    except OffboardingError as exc:
        db.session.rollback()
        form.reason.errors = [_msg(exc)]
        return render("offboarding/resign.html", form=form, status=exc.status, **ctx)
    db.session.commit()
    flash(_("Your resignation is recorded. Your last working day is %(d)s.", d=ob.last_day.isoformat()), "success")
    return redirect(url_for("offboarding.show", offboarding_id=ob.id), code=303)


@bp.route("/offboarding/terminate")
@require("offboarding.manage")
def termination():
    return render("offboarding/terminate.html", form=TerminationForm())


@bp.route("/offboarding/terminate", methods=["POST"])
@require("offboarding.manage")
def termination_create():
    form = TerminationForm()
    if not form.validate_on_submit():
        return render("offboarding/terminate.html", form=form, status=422)
    emp = _employee_by_no(form.employee.data)
    if emp is None:
        form.employee.errors = [_("No employee with this number.")]
        return render("offboarding/terminate.html", form=form, status=422)
    db.session.commit()  # end the read transaction (see resignation_submit)
    try:
        ob = services.record_termination(current_user, emp, form.last_day.data, form.reason.data)
    except OffboardingError as exc:
        db.session.rollback()
        form.reason.errors = [_msg(exc)]
        return render("offboarding/terminate.html", form=form, status=exc.status)
    db.session.commit()
    flash(_("Termination recorded."), "success")
    return redirect(url_for("offboarding.show", offboarding_id=ob.id), code=303)


# ---------------------------------------------------------------- the offboarding page

def _show(ob: Offboarding, status: int = 200, problem: str | None = None, **forms):
    user = current_user
    perms = effective_permissions(user)
    is_hr = "offboarding.manage" in perms and user.id != ob.user_id
    templates = db.session.scalars(select(ChecklistTemplate).where(ChecklistTemplate.active.is_(True))
                                   .order_by(ChecklistTemplate.name)).all()
    start_form = forms.pop("start_form", None) or StartForm()
    start_form.template.choices = [(t.id, t.name) for t in templates]
    if request.method == "GET" and ob.stage == "notice":
        suggested = services.pick_template(ob.employee)
        if suggested is not None:
            start_form.template.data = suggested.id
    reject_form = forms.pop("reject_form", None) or RejectForm()
    reject_form.item_id.choices = [(i.id, i.title) for i in ob.items]
    unfreeze_form = forms.pop("unfreeze_form", None) or UnfreezeForm()
    frozen = services.frozen_permissions(ob)
    unfreeze_form.permission.choices = [(p, str(PERMISSIONS.get(p, p))) for p in frozen]
    dates_form = forms.pop("dates_form", None) or DatesForm(obj=ob)
    step = services.current_step(ob)
    ctx = dict(
        ob=ob, problem=problem, is_hr=is_hr, is_leaver=user.id == ob.user_id,
        is_successor=bool(ob.successor_id) and user.employee_id == ob.successor_id,
        item_form=forms.pop("item_form", None) or ItemForm(), item_form_for=forms.pop("item_form_for", None),
        waive_form=forms.pop("waive_form", None) or WaiveForm(), waive_form_for=forms.pop("waive_form_for", None),
        start_form=start_form, reject_form=reject_form, unfreeze_form=unfreeze_form, dates_form=dates_form,
        sign_form=forms.pop("sign_form", None) or SignForm(), reason_form=ReasonForm(),
        can_fill={i.id: services.can_fill(user, i) for i in ob.items},
        can_confirm={i.id: services.can_confirm(user, i) for i in ob.items},
        step=step, can_decide=(step is not None and ob.stage == "signoff" and user.id != ob.user_id
                               and services.is_responsible(user, ob, step.role)),
        missing=services.missing(ob) if ob.stage != "completed" else [],
        frozen=frozen, clients=owned_by(ob.employee_id) if ob.stage != "completed" else [],
        may_transfer=ob.successor_id is not None and ob.stage != "completed" and (
            user.id == ob.user_id or is_hr or services.is_responsible(user, ob, "head")),
        transfers=services.transfers_of(ob),
        unfreezes=db.session.scalars(select(UnfreezeRequest).where(UnfreezeRequest.offboarding_id == ob.id)
                                     .order_by(UnfreezeRequest.id.desc())).all(),
        unfreeze_roles=lambda r: services.unfreeze_roles_for(user, r),
        may_request_unfreeze=bool(frozen) and ob.stage != "completed" and (
            user.id == ob.user_id or is_hr or services.is_responsible(user, ob, "head")
            or is_manager_of(user, ob.employee)),
        run=db.session.scalar(select(RevocationRun).where(RevocationRun.offboarding_id == ob.id)),
        sigs={s.id: s for s in signatures.signatures_for("offboardings", ob.id)},
        may_evidence="offboarding.view_all" in perms,
        **_labels(),
    )
    return render("offboarding/detail.html", status=status, **ctx)


def _fail(ob: Offboarding, exc: OffboardingError, **forms):
    db.session.rollback()
    db.session.refresh(ob)
    return _show(ob, exc.status, _msg(exc), **forms)


def _done(ob: Offboarding, message: str):
    flash(message, "success")
    return redirect(url_for("offboarding.show", offboarding_id=ob.id), code=303)


@bp.route("/offboarding/<int:offboarding_id>")
@login_only
def show(offboarding_id: int):
    return _show(_ob_or_404(offboarding_id))


@bp.route("/offboarding/<int:offboarding_id>/dates", methods=["POST"])
@require("offboarding.manage")
def dates_update(offboarding_id: int):
    ob = _ob_or_404(offboarding_id)
    form = DatesForm()
    if not form.validate_on_submit():
        return _show(ob, 422, _("Check the dates."), dates_form=form)
    try:
        services.update_dates(ob, current_user, form.last_day.data, form.revoke_on.data)
    except OffboardingError as exc:
        return _fail(ob, exc, dates_form=form)
    db.session.commit()
    return _done(ob, _("Saved."))


@bp.route("/offboarding/<int:offboarding_id>/start", methods=["POST"])
@require("offboarding.manage")
def handover_start(offboarding_id: int):
    ob = _ob_or_404(offboarding_id)
    form = StartForm()
    form.template.choices = [(t.id, t.name) for t in db.session.scalars(select(ChecklistTemplate))]
    if not form.validate_on_submit():
        return _show(ob, 422, _("Name the successor and choose a template."), start_form=form)
    successor = _employee_by_no(form.successor.data)
    if successor is None:
        form.successor.errors = [_("No employee with this number.")]
        return _show(ob, 422, _("No employee with this number."), start_form=form)
    try:
        services.start_handover(ob, current_user, successor, db.session.get(ChecklistTemplate, form.template.data))
    except OffboardingError as exc:
        return _fail(ob, exc, start_form=form)
    db.session.commit()
    return _done(ob, _("Handover started: the checklist was created."))


# ---------------------------------------------------------------- items

def _item_or_404(item_id: int) -> ChecklistItem:
    item = get_or_404(ChecklistItem, item_id)
    if not services.involved(current_user, item.offboarding):
        abort(404)
    return item


@bp.route("/offboarding/items/<int:item_id>/fill", methods=["POST"])
@login_only
def item_submit(item_id: int):
    item = _item_or_404(item_id)
    ob = item.offboarding
    form = ItemForm()
    if not form.validate_on_submit():
        return _show(ob, 422, _("Check the item."), item_form=form, item_form_for=item.id)
    stored = None
    upload = request.files.get("file")
    try:
        if not services.can_fill(current_user, item):
            raise OffboardingError("not_yours", status=403)
        if upload is not None and upload.filename:
            try:
                stored = save_upload(upload, "offboarding", DOCUMENTS, actor=current_user)
            except UploadError as exc:
                form.file.errors = [upload_error_message(exc)]
                db.session.rollback()
                return _show(ob, 422, upload_error_message(exc), item_form=form, item_form_for=item.id)
        services.submit_item(item, current_user, form.note.data or "", stored)
    except OffboardingError as exc:
        if exc.field == "file":
            form.file.errors = [_msg(exc)]
        elif exc.field == "note":
            form.note.errors = [_msg(exc)]
        return _fail(ob, exc, item_form=form, item_form_for=item.id)
    db.session.commit()
    return _done(ob, _("Item saved: %(t)s", t=item.title))


@bp.route("/offboarding/items/<int:item_id>/confirm", methods=["POST"])
@login_only
def item_confirm(item_id: int):
    item = _item_or_404(item_id)
    try:
        services.confirm_item(item, current_user)
    except OffboardingError as exc:
        return _fail(item.offboarding, exc)
    db.session.commit()
    return _done(item.offboarding, _("Item confirmed: %(t)s", t=item.title))


@bp.route("/offboarding/items/<int:item_id>/waive", methods=["POST"])
@require("offboarding.manage")
def item_waive(item_id: int):
    item = _item_or_404(item_id)
    ob = item.offboarding
    form = WaiveForm()
    if not form.validate_on_submit():
        return _show(ob, 422, _("A reason is required."), waive_form=form, waive_form_for=item.id)
    upload = request.files.get("evidence")
    stored = None
    if upload is not None and upload.filename:
        try:
            stored = save_upload(upload, "offboarding_waiver", DOCUMENTS, actor=current_user)
        except UploadError as exc:
            db.session.rollback()
            form.evidence.errors = [upload_error_message(exc)]
            return _show(ob, 422, upload_error_message(exc), waive_form=form, waive_form_for=item.id)
    try:
        services.waive_item(item, current_user, form.reason.data, stored)
    except OffboardingError as exc:
        if exc.field == "evidence":
            form.evidence.errors = [_msg(exc)]
        return _fail(ob, exc, waive_form=form, waive_form_for=item.id)
    db.session.commit()
    return _done(ob, _("Item waived: %(t)s", t=item.title))


@bp.route("/offboarding/items/<int:item_id>/file/<which>")
@login_only
def item_file(item_id: int, which: str):
    item = _item_or_404(item_id)
    file_id = item.file_id if which == "document" else item.waiver_file_id if which == "evidence" else None
    stored = db.session.get(StoredFile, file_id) if file_id else None
    if stored is None:
        abort(404)
    audit.record("offboarding.file_downloaded", item, {"file_id": stored.id, "which": which})
    db.session.commit()
    return download(stored)


# ---------------------------------------------------------------- client transfer

@bp.route("/offboarding/<int:offboarding_id>/transfer", methods=["POST"])
@login_only
def clients_transfer(offboarding_id: int):
    ob = _ob_or_404(offboarding_id)
    bulk = request.form.get("all") == "1"
    try:
        ids = None if bulk else [int(x) for x in request.form.getlist("client_ids")]
    except ValueError:
        abort(400)
    try:
        if not bulk and not ids:
            raise OffboardingError("no_clients_chosen", field="client_ids")
        moved = services.transfer_clients(ob, current_user, ids)
    except OffboardingError as exc:
        return _fail(ob, exc)
    db.session.commit()
    return _done(ob, _("%(n)s client(s) transferred to the successor.", n=len(moved)))


# ---------------------------------------------------------------- sign-off

@bp.route("/offboarding/<int:offboarding_id>/steps/<int:step_id>/approve", methods=["POST"])
@login_only
def step_approve(offboarding_id: int, step_id: int):
    ob = _ob_or_404(offboarding_id)
    # End the read transaction: the conditional claim is then the first statement of a new one, so a
    # concurrent approval waits for the write lock and sees the other's result (SQLite and PostgreSQL).
    db.session.commit()
    try:
        services.approve_step(ob, step_id, current_user, request.form.get("comment", "")[:2000])
    except OffboardingError as exc:
        return _fail(ob, exc)
    db.session.commit()
    return _done(ob, _("Approved."))


@bp.route("/offboarding/<int:offboarding_id>/steps/<int:step_id>/reject", methods=["POST"])
@login_only
def step_reject(offboarding_id: int, step_id: int):
    ob = _ob_or_404(offboarding_id)
    form = RejectForm()
    form.item_id.choices = [(i.id, i.title) for i in ob.items]
    if not form.validate_on_submit():
        return _show(ob, 422, _("Choose the item and give a reason."), reject_form=form)
    db.session.commit()
    try:
        services.reject_step(ob, step_id, current_user, form.item_id.data, form.reason.data)
    except OffboardingError as exc:
        return _fail(ob, exc, reject_form=form)
    db.session.commit()
    return _done(ob, _("Sent back with your reason."))


@bp.route("/offboarding/<int:offboarding_id>/sign", methods=["POST"])
@login_only
def handover_sign(offboarding_id: int):
    ob = _ob_or_404(offboarding_id)
    form = SignForm()
    if not form.validate_on_submit():
        form.password.errors = [_("Enter your password to sign.")]
        return _show(ob, 422, _("Enter your password to sign."), sign_form=form)
    try:
        services.sign_handover(ob, current_user, form.password.data)
    except signatures.SignatureError:
        db.session.commit()  # keep the audit record of the failed re-authentication
        form.password.errors = [_("The password is not correct. Nothing was signed.")]
        return _show(ob, 422, _("The password is not correct. Nothing was signed."), sign_form=form)
    except OffboardingError as exc:
        return _fail(ob, exc)
    db.session.commit()
    return _done(ob, _("Signed."))


@bp.route("/offboarding/<int:offboarding_id>/signature-waiver", methods=["POST"])
@require("offboarding.manage")
def leaver_signature_waive(offboarding_id: int):
    ob = _ob_or_404(offboarding_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        return _show(ob, 422, _msg(OffboardingError("reason_required")))
    try:
        services.waive_leaver_signature(ob, current_user, form.reason.data)
    except OffboardingError as exc:
        return _fail(ob, exc)
    db.session.commit()
    return _done(ob, _("The leaver's signature is waived with your reason."))


@bp.route("/offboarding/<int:offboarding_id>/complete", methods=["POST"])
@require("offboarding.manage")
def complete(offboarding_id: int):
    ob = _ob_or_404(offboarding_id)
    try:
        services.complete(ob, current_user)
    except OffboardingError as exc:
        return _fail(ob, exc)
    db.session.commit()
    return _done(ob, _("Offboarding completed."))


# ---------------------------------------------------------------- unfreeze

@bp.route("/offboarding/<int:offboarding_id>/unfreeze", methods=["POST"])
@login_only
def unfreeze_create(offboarding_id: int):
    ob = _ob_or_404(offboarding_id)
    form = UnfreezeForm()
    form.permission.choices = [(p, p) for p in services.frozen_permissions(ob)]
    if not form.validate_on_submit():
        return _show(ob, 422, _("Choose a permission, an end time and a reason."), unfreeze_form=form)
    until = form.until.data.replace(tzinfo=company_tz()).astimezone(dt.timezone.utc)
    try:
        services.request_unfreeze(ob, current_user, form.permission.data, until, form.reason.data)
    except OffboardingError as exc:
        return _fail(ob, exc, unfreeze_form=form)
    db.session.commit()
    return _done(ob, _("Unfreeze requested: a manager and HR must approve it."))


def _unfreeze_or_404(req_id: int) -> UnfreezeRequest:
    req = get_or_404(UnfreezeRequest, req_id)
    if not services.involved(current_user, req.offboarding):
        abort(404)
    return req


@bp.route("/offboarding/unfreeze/<int:req_id>/approve", methods=["POST"])
@login_only
def unfreeze_approve(req_id: int):
    req = _unfreeze_or_404(req_id)
    as_role = request.form.get("as", "")
    try:
        services.approve_unfreeze(req, current_user, as_role)
    except OffboardingError as exc:
        return _fail(req.offboarding, exc)
    db.session.commit()
    return _done(req.offboarding, _("Approved."))


@bp.route("/offboarding/unfreeze/<int:req_id>/reject", methods=["POST"])
@login_only
def unfreeze_reject(req_id: int):
    req = _unfreeze_or_404(req_id)
    try:
        services.reject_unfreeze(req, current_user, request.form.get("reason", ""))
    except OffboardingError as exc:
        return _fail(req.offboarding, exc)
    db.session.commit()
    return _done(req.offboarding, _("Rejected."))


# ---------------------------------------------------------------- revocation and evidence

@bp.route("/offboarding/<int:offboarding_id>/revocation/retry", methods=["POST"])
@require("offboarding.manage")
def revocation_retry(offboarding_id: int):
    ob = _ob_or_404(offboarding_id)
    run = revocation.retry_failed(ob, current_user)
    db.session.commit()
    if run is None:
        flash(_("Nothing to retry."), "warning")
        return redirect(url_for("offboarding.show", offboarding_id=ob.id), code=303)
    return _done(ob, _("The failed steps are queued again."))


@bp.route("/offboarding/<int:offboarding_id>/evidence")
@require("offboarding.view_all")
def evidence_page(offboarding_id: int):
    ob = get_or_404(Offboarding, offboarding_id)
    audit.record("offboarding.evidence_viewed", ob, {})
    db.session.commit()
    return render("offboarding/evidence.html", archive=False, **evidence.collect(ob), **_labels())


@bp.route("/offboarding/<int:offboarding_id>/evidence/archive", methods=["POST"])
@require("offboarding.view_all")
def evidence_archive(offboarding_id: int):
    ob = get_or_404(Offboarding, offboarding_id)
    task = tasks.start("offboarding.evidence", current_user, "portal.offboarding.evidence.build_archive", ob.id,
                       current_user.id)
    audit.record("offboarding.evidence_requested", ob, {"task_id": task.id})
    db.session.commit()
    return redirect(url_for("notify.task", task_id=task.id), code=303)


# ---------------------------------------------------------------- checklist templates

def _template_form(form: TemplateForm) -> TemplateForm:
    form.department_id.choices = [(0, "—")] + [(d.id, d.name) for d in db.session.scalars(
        select(Department).order_by(Department.name))]
    form.position_id.choices = [(0, "—")] + [(p.id, p.name) for p in db.session.scalars(
        select(Position).order_by(Position.name))]
    return form


@bp.route("/offboarding/templates")
@require("offboarding.manage")
def templates():
    rows = db.session.scalars(select(ChecklistTemplate).order_by(ChecklistTemplate.name)).all()
    return render("offboarding/templates.html", templates=rows)


@bp.route("/offboarding/templates/new")
@require("offboarding.manage")
def template_new():
    return render("offboarding/template_form.html", form=_template_form(TemplateForm()), template=None)


@bp.route("/offboarding/templates", methods=["POST"])
@require("offboarding.manage")
def template_create():
    form = _template_form(TemplateForm())
    if not form.validate_on_submit():
        return render("offboarding/template_form.html", form=form, template=None, status=422)
    t = services.save_template(current_user, form.name.data, form.department_id.data or None,
                               form.position_id.data or None, form.active.data)
    db.session.commit()
    flash(_("Template created. Add its items."), "success")
    return redirect(url_for("offboarding.template_edit", template_id=t.id), code=303)


def _template_page(t: ChecklistTemplate, status: int = 200, form=None, item_form=None):
    if form is None:
        form = TemplateForm(obj=t)
        form.department_id.data = t.department_id or 0
        form.position_id.data = t.position_id or 0
    return render("offboarding/template_edit.html", template=t, form=_template_form(form),
                  item_form=item_form or TemplateItemForm(), responsible=RESPONSIBLE_LABELS, status=status)


@bp.route("/offboarding/templates/<int:template_id>")
@require("offboarding.manage")
def template_edit(template_id: int):
    return _template_page(get_or_404(ChecklistTemplate, template_id))


@bp.route("/offboarding/templates/<int:template_id>", methods=["POST"])
@require("offboarding.manage")
def template_update(template_id: int):
    t = get_or_404(ChecklistTemplate, template_id)
    form = _template_form(TemplateForm())
    if not form.validate_on_submit():
        return _template_page(t, 422, form=form)
    services.save_template(current_user, form.name.data, form.department_id.data or None,
                           form.position_id.data or None, form.active.data, template=t)
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect(url_for("offboarding.template_edit", template_id=t.id), code=303)


@bp.route("/offboarding/templates/<int:template_id>/items", methods=["POST"])
@require("offboarding.manage")
def template_item_create(template_id: int):
    t = get_or_404(ChecklistTemplate, template_id)
    form = TemplateItemForm()
    if not form.validate_on_submit():
        return _template_page(t, 422, item_form=form)
    try:
        services.add_template_item(current_user, t, form.title.data, form.description.data, form.responsible.data,
                                   form.requires_upload.data, form.due_offset_days.data)
    except OffboardingError as exc:
        db.session.rollback()
        getattr(form, exc.field or "title").errors = [_msg(exc)]
        return _template_page(t, 422, item_form=form)
    db.session.commit()
    flash(_("Item added."), "success")
    return redirect(url_for("offboarding.template_edit", template_id=t.id), code=303)


@bp.route("/offboarding/templates/<int:template_id>/items/<int:item_id>/delete", methods=["POST"])
@require("offboarding.manage")
def template_item_delete(template_id: int, item_id: int):
    item = get_or_404(TemplateItem, item_id)
    if item.template_id != template_id:
        abort(404)
    services.delete_template_item(current_user, item)
    db.session.commit()
    flash(_("Item removed."), "success")
    return redirect(url_for("offboarding.template_edit", template_id=template_id), code=303)

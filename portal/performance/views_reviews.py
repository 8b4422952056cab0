"""Performance review pages: list, detail (sensitive: every view is audited), self-assessment, manager
score, signed confirmation, appeal and answer, HR calibration/revision and approval, templates, ratings."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.core import audit, signatures
from portal.core.db import db, get_or_404
from portal.core.forms import add_field_error
from portal.core.security import can, login_only, require
from portal.core.ui import render
from portal.performance import bp, reviews, services
from portal.performance.forms import (AppealForm, CalibrateForm, ConfirmForm, LaunchForm, RatingsForm,
                                      RespondForm, SelfForm, TemplateForm, UnsignedApprovalForm)
from portal.performance.models import Cycle, Review, ReviewTemplate
from portal.performance.views import ERRORS

ERRORS.update({
    "bad_formula": _l("The formula is not valid. Use numbers, + - * / ( ), min(), max(), round() and the "
                      "names okr, manager, self and the criterion codes."),
    "bad_code": _l("The code %(name)s is not valid: lower-case letters, digits and _, starting with a letter, "
                   "not okr, manager or self."),
    "code_duplicate": _l("The code %(name)s is used twice."),
    "not_overdue": _l("The employee still has time to sign or appeal."),
    "template_exists": _l("A template with this name exists."),
    "no_criteria": _l("Add at least one criterion."),
    "criteria_weights": _l("The criteria weights must not all be zero."),
    "score_range": _l("A score is a number from 0 to 100."),
    "score_missing": _l("Score the criterion %(name)s."),
    "bad_band": _l("Check the rating %(rating)s (unique, at most 10 characters)."),
    "no_bands": _l("Add at least one rating."),
    "bands_need_zero": _l("One rating must start at 0 so that every score has a rating."),
    "tampered": _l("The signed result does not match the current record. It cannot be approved."),
})

STATUS_LABELS = {"self": _l("Self-assessment"), "manager": _l("Manager scoring"),
                 "employee": _l("Waiting for the employee"), "appealed": _l("Appealed"),
                 "confirmed": _l("Confirmed by signature"), "approved": _l("Approved by HR")}


def _msg(exc) -> str:
    from portal.performance.views import msg
    return msg(exc)


def _review_or_404(review_id: int) -> Review:
    review = db.session.get(Review, review_id)
    if review is None or not can(current_user, "perf.review_view", review):
        abort(404)
    return review


@bp.route("/performance/reviews", endpoint="reviews")
@login_only
def reviews_index():
    cycle_id = request.args.get("cycle", type=int)
    cycle = db.session.get(Cycle, cycle_id) if cycle_id else None
    lists = reviews.reviews_for(current_user, cycle)
    launch = None
    if can(current_user, "perf.manage"):
        launch = LaunchForm()
        launch.template_id.choices = [(t.id, t.name) for t in db.session.scalars(
            select(ReviewTemplate).order_by(ReviewTemplate.name))]
    return render("performance/reviews.html", lists=lists, cycles=services.cycles(), cycle=cycle,
                  labels=STATUS_LABELS, launch=launch)


def _render_review(review: Review, status: int = 200, **forms):
    revs, appeals, events = reviews.history(review)
    scores = {s.criterion_id: s for s in review.scores}
    unsigned = UnsignedApprovalForm(formdata=None)
    unsigned.reason.data = _("Employee did not respond")
    ctx = {"self_form": SelfForm(), "confirm_form": ConfirmForm(), "appeal_form": AppealForm(),
           "respond_form": RespondForm(), "calibrate_form": CalibrateForm(), "unsigned_form": unsigned,
           **forms}
    return render("performance/review.html", review=review, revs=revs, appeals=appeals, events=events,
                  scores=scores, integrity=reviews.verify(review), labels=STATUS_LABELS,
                  is_employee=review.employee_id == current_user.employee_id,
                  may_score=can(current_user, "perf.review_score", review),
                  may_manage=can(current_user, "perf.manage"), overdue=reviews.response_overdue(review),
                  status=status, **ctx)


@bp.route("/performance/reviews/<int:review_id>")
@login_only
def review(review_id: int):
    r = _review_or_404(review_id)
    audit.record("perf.review_viewed", r, {"status": r.status, "revision": r.revision})
    db.session.commit()
    return _render_review(r)


def _done(r: Review, text: str):
    db.session.commit()
    flash(text, "success")
    return redirect(url_for("performance.review", review_id=r.id), code=303)


def _conflict(exc):
    db.session.rollback()
    return render("errors/error.html", code=409, message=_msg(exc), status=409)


# The states in which templates/performance/review.html shows each form. A form posted from a stale page
# in another state answers like the service would (409), instead of a 422 whose errors nobody can see.
_FORM_SHOWN = {"self_form": ("self",), "confirm_form": ("employee",), "appeal_form": ("employee",),
               "respond_form": ("appealed",), "calibrate_form": ("employee", "appealed", "confirmed", "approved")}


def _invalid(r: Review, form_name: str, form, exc=None):
    db.session.rollback()
    shown = (reviews.response_overdue(r) if form_name == "unsigned_form"
             else r.status in _FORM_SHOWN.get(form_name, (r.status,)))
    if exc is None and not shown:
        return _conflict(services.Conflict("conflict"))
    if exc is not None:
        target = getattr(form, exc.field, None) if exc.field and hasattr(form, exc.field) else None
        if target is None:
            flash(_msg(exc), "error")
        else:
            target.errors = list(target.errors) + [_msg(exc)]
    r = db.session.get(Review, r.id)
    return _render_review(r, 422, **{form_name: form})


@bp.route("/performance/reviews/<int:review_id>/self", methods=["POST"])
@login_only
def submit_self(review_id: int):
    r = _review_or_404(review_id)
    if r.employee_id != current_user.employee_id:
        abort(403)
    form = SelfForm()
    if not form.validate_on_submit():
        return _invalid(r, "self_form", form)
    try:
        reviews.submit_self(current_user, r, form.self_score.data, form.self_comment.data or "")
    except services.Conflict as exc:
        return _conflict(exc)
    except services.PerfError as exc:
        return _invalid(r, "self_form", form, exc)
    return _done(r, _("Self-assessment submitted to your manager."))


@bp.route("/performance/reviews/<int:review_id>/score", methods=["POST"])
@login_only
def submit_score(review_id: int):
    r = _review_or_404(review_id)
    if not can(current_user, "perf.review_score", r):
        abort(403)
    scores = {c.id: (request.form.get(f"score_{c.id}", "").strip(), request.form.get(f"comment_{c.id}", ""))
              for c in r.template.criteria}
    try:
        reviews.submit_score(current_user, r, scores, request.form.get("manager_comment", ""))
    except services.Conflict as exc:
        return _conflict(exc)
    except services.PerfError as exc:
        db.session.rollback()
        r = db.session.get(Review, review_id)
        return _render_review(r, 422, score_error=_msg(exc), score_values=request.form)
    return _done(r, _("Score submitted. The employee can now see the result."))


@bp.route("/performance/reviews/<int:review_id>/confirm", methods=["POST"])
@login_only
def sign_result(review_id: int):
    r = _review_or_404(review_id)
    if r.employee_id != current_user.employee_id:
        abort(403)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return _invalid(r, "confirm_form", form)
    try:
        reviews.confirm(current_user, r, form.password.data)
    except signatures.SignatureError:
        db.session.commit()  # keep the audit record of the failed re-authentication
        form.password.errors = [_("The password is not correct. Nothing was signed.")]
        return _render_review(db.session.get(Review, review_id), 422, confirm_form=form)
    except services.Conflict as exc:
        return _conflict(exc)
    except services.PerfError as exc:
        return _invalid(r, "confirm_form", form, exc)
    return _done(r, _("Signed. Your confirmation is recorded; HR will approve the result."))


@bp.route("/performance/reviews/<int:review_id>/appeal", methods=["POST"])
@login_only
def create_appeal(review_id: int):
    r = _review_or_404(review_id)
    if r.employee_id != current_user.employee_id:
        abort(403)
    form = AppealForm()
    if not form.validate_on_submit():
        return _invalid(r, "appeal_form", form)
    try:
        reviews.appeal(current_user, r, form.reason.data)
    except services.Conflict as exc:
        return _conflict(exc)
    except services.PerfError as exc:
        return _invalid(r, "appeal_form", form, exc)
    return _done(r, _("Your appeal was sent to your manager and HR."))


@bp.route("/performance/reviews/<int:review_id>/respond", methods=["POST"])
@login_only
def respond_appeal(review_id: int):
    r = _review_or_404(review_id)
    if not (can(current_user, "perf.review_score", r) or can(current_user, "perf.manage")):
        abort(403)
    form = RespondForm()
    if not form.validate_on_submit():
        return _invalid(r, "respond_form", form)
    try:
        reviews.respond(current_user, r, form.response.data, form.new_score.data)
    except services.Conflict as exc:
        return _conflict(exc)
    except services.PerfError as exc:
        return _invalid(r, "respond_form", form, exc)
    return _done(r, _("Answer recorded. The employee can confirm or appeal again."))


@bp.route("/performance/reviews/<int:review_id>/calibrate", methods=["POST"])
@require("perf.manage")
def calibrate(review_id: int):
    r = _review_or_404(review_id)
    form = CalibrateForm()
    if not form.validate_on_submit():
        return _invalid(r, "calibrate_form", form)
    try:
        reviews.calibrate(current_user, r, form.final_score.data, form.note.data)
    except services.Conflict as exc:
        return _conflict(exc)
    except services.PerfError as exc:
        return _invalid(r, "calibrate_form", form, exc)
    return _done(r, _("New revision issued. The employee must confirm it again."))


@bp.route("/performance/reviews/<int:review_id>/approve", methods=["POST"])
@require("perf.manage")
def approve_review(review_id: int):
    r = _review_or_404(review_id)
    try:
        reviews.approve(current_user, r)
    except services.Conflict as exc:
        return _conflict(exc)
    except services.PerfError as exc:
        db.session.rollback()
        flash(_msg(exc), "error")
        return _render_review(db.session.get(Review, review_id), 409)
    return _done(r, _("Result approved."))


@bp.route("/performance/reviews/<int:review_id>/approve-unsigned", methods=["POST"])
@require("perf.manage")
def approve_unsigned(review_id: int):
    """HR approves after the employee neither signed nor appealed in time, with a recorded reason."""
    r = _review_or_404(review_id)
    form = UnsignedApprovalForm()
    if not form.validate_on_submit():
        return _invalid(r, "unsigned_form", form)
    try:
        reviews.approve_unsigned(current_user, r, form.reason.data)
    except services.Conflict as exc:
        return _conflict(exc)
    except services.PerfError as exc:
        return _invalid(r, "unsigned_form", form, exc)
    return _done(r, _("Result approved without the employee's signature; the reason is recorded."))


@bp.route("/performance/cycles/<int:cycle_id>/reviews", methods=["POST"])
@require("perf.manage")
def create_reviews(cycle_id: int):
    cycle = get_or_404(Cycle, cycle_id)
    form = LaunchForm()
    form.template_id.choices = [(t.id, t.name) for t in db.session.scalars(select(ReviewTemplate))]
    if not form.validate_on_submit():
        flash(_("Choose a review template."), "error")
        return redirect(url_for("performance.reviews"), code=303)
    n = reviews.launch(current_user, cycle, db.session.get(ReviewTemplate, form.template_id.data))
    db.session.commit()
    flash(_("%(n)s review(s) started for %(cycle)s.", n=n, cycle=cycle.name), "success")
    return redirect(url_for("performance.reviews", cycle=cycle.id), code=303)


# ---------------------------------------------------------------- templates and ratings (HR)

def _parse_lines(raw: str, parts: int) -> list[list[str]]:
    out = []
    for line in (raw or "").splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.replace("｜", "|").split("|")]
        out.append((cells + [""] * parts)[:parts])
    return out


@bp.route("/performance/templates")
@require("perf.manage")
def templates():
    return render("performance/templates.html", templates=db.session.scalars(
        select(ReviewTemplate).order_by(ReviewTemplate.name)).all(), form=TemplateForm())


@bp.route("/performance/templates", methods=["POST"])
@require("perf.manage")
def create_template():
    form = TemplateForm()
    if form.validate_on_submit():
        try:
            reviews.create_template(current_user, form.name.data, form.formula.data,
                                    [tuple(r) for r in _parse_lines(form.criteria.data, 3)])
        except services.PerfError as exc:
            db.session.rollback()
            add_field_error(form, exc.field, "name", _msg(exc))
        else:
            db.session.commit()
            flash(_("Template saved."), "success")
            return redirect(url_for("performance.templates"), code=303)
    return render("performance/templates.html", templates=db.session.scalars(
        select(ReviewTemplate).order_by(ReviewTemplate.name)).all(), form=form, status=422)


@bp.route("/performance/ratings")
@require("perf.manage")
def ratings():
    rows = reviews.bands()
    db.session.commit()
    form = RatingsForm()
    form.bands.data = "\n".join(f"{b.rating} | {b.min_score:f} | {b.coefficient:f}" for b in rows)
    return render("performance/ratings.html", bands=rows, form=form)


@bp.route("/performance/ratings", methods=["POST"])
@require("perf.manage")
def save_ratings():
    form = RatingsForm()
    if form.validate_on_submit():
        try:
            reviews.save_bands(current_user, [tuple(r) for r in _parse_lines(form.bands.data, 3)])
        except services.PerfError as exc:
            db.session.rollback()
            form.bands.errors = list(form.bands.errors) + [_msg(exc)]
        else:
            db.session.commit()
            flash(_("Rating table saved."), "success")
            return redirect(url_for("performance.ratings"), code=303)
    return render("performance/ratings.html", bands=reviews.bands(), form=form, status=422)

"""Training pages for learners (my learning, lesson reader, exam, acknowledgement), reports and the HR
compliance view. The trainer studio is in ``studio.py``."""
from __future__ import annotations

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from portal.core import audit, signatures, uploads
from portal.core.db import db, get_or_404, utcnow
from portal.core.security import can, effective_permissions, is_manager_of, login_only, register_permissions, require
from portal.core.ui import page_arg, paginate, register_nav, render
from portal.home.views import register_card
from portal.org.models import Employee
from portal.training import bp, exams, learning, reports, services
from portal.training.forms import KIND_LABELS, STATUS_LABELS, AckForm
from portal.training.models import (Acknowledgement, Attempt, AttemptItem, Completion, Course, CourseVersion,
                                    Enrollment, Lesson, LessonAttachment)

register_permissions(
    {"training.author": _l("Write courses, lessons and question banks; publish versions"),
     "training.assign": _l("Assign courses to people, departments and positions"),
     "training.reports": _l("See training reports (own team, or everyone with full training access)"),
     "training.view_all": _l("See every employee's training results"),
     "training.compliance": _l("See policy acknowledgement compliance and evidence")},
    {"trainer": ["training.author", "training.assign", "training.reports", "training.view_all"],
     "hr": ["training.assign", "training.reports", "training.view_all", "training.compliance"],
     "manager": ["training.reports"],
     "legal": ["training.compliance"],
     "admin": ["training.author", "training.assign", "training.reports", "training.view_all",
               "training.compliance"]})
register_nav("training.my_learning", _l("My learning"), None, order=70)
register_nav("training.studio", _l("Training studio"), "training.assign", order=71)
register_nav("training.reports_index", _l("Training reports"), "training.reports", order=72)
register_nav("training.compliance", _l("Policy compliance"), "training.compliance", order=73)
register_card(None, _l("My learning"), _l("Assigned courses, exams and policy acknowledgements."),
              "training.my_learning")
register_card("training.assign", _l("Training studio"), _l("Write courses, build question banks, assign and "
                                                           "follow results."), "training.studio")

ERRORS = {
    "title_required": _l("A title is required."),
    "too_long": _l("This text is too long."),
    "code_taken": _l("This code is already used by another course."),
    "not_draft": _l("Only a draft version can be changed. Start a new version first."),
    "bad_pass_mark": _l("The pass mark is a percentage between 0 and 100."),
    "bad_number": _l("This number is out of range."),
    "bad_choice": _l("Choose one of the options."),
    "policy_incomplete": _l("A policy needs a name, a version and its full text (or leave all three empty)."),
    "no_lessons": _l("Add at least one lesson before publishing."),
    "bank_too_small": _l("The question bank has too few active questions for: %(cats)s (have/need)."),
    "bad_kind": _l("Choose a question type."),
    "prompt_required": _l("The question text is required."),
    "two_options": _l("A choice question needs at least two options."),
    "too_many_options": _l("At most ten options."),
    "duplicate_options": _l("Two options have the same text."),
    "bad_correct": _l("Mark which options are correct."),
    "bad_answer": _l("The answer does not match the options (use letters such as A or A,C; true or false)."),
    "gap_in_options": _l("Options must not have gaps (fill A, B, C ... in order)."),
    "single_one_answer": _l("A single-choice question has exactly one correct option."),
    "fill_answer_required": _l("Give at least one accepted answer."),
    "bad_xlsx": _l("The file could not be read as an Excel workbook."),
    "empty_xlsx": _l("The workbook has no questions."),
    "missing_columns": _l("Missing columns: %(cols)s. Download the template to see the layout."),
    "too_many_rows": _l("At most %(n)s questions per import."),
    "not_published": _l("Publish the course before assigning it."),
    "bad_target": _l("Choose whom to assign the course to."),
    "due_in_past": _l("The due date is in the past."),
    "unknown_people": _l("Unknown employee numbers: %(names)s"),
    "passed": _l("You have already passed this exam."),
    "no_attempts_left": _l("No attempts left."),
    "cooling_off": _l("You can try again after %(t)s."),
    "no_exam": _l("This course has no exam."),
    "lessons_first": _l("Finish the lessons first."),
    "attempt_closed": _l("This attempt is already finished."),
    "too_late": _l("Time is up: this answer arrived after the time limit and was not saved. The exam is graded "
                   "on the answers saved in time."),
    "no_policy": _l("This course has no policy to acknowledge."),
    "already_acknowledged": _l("You already acknowledged this policy version."),
    "finish_first": _l("Finish the lessons and pass the exam before signing."),
    "not_found": _l("This page or record does not exist."),
}


def msg(exc: services.TrainingError) -> str:
    text = str(ERRORS.get(exc.code, exc.code))
    params = dict(exc.params)
    if exc.code == "cooling_off" and params.get("next_at"):
        params["t"] = format_datetime(params["next_at"], "yyyy-MM-dd HH:mm")
    try:
        return text % params if params else text
    except (KeyError, TypeError, ValueError):
        return text


def fmt_duration(seconds: int | None) -> str:
    seconds = int(seconds or 0)
    h, rem = divmod(seconds, 3600)
    m = rem // 60
    return _("%(h)sh %(m)smin", h=h, m=m) if h else _("%(m)s min", m=m)


@bp.app_template_filter("duration")
def _duration_filter(seconds):
    return fmt_duration(seconds)


@bp.app_template_filter("markdown")
def _markdown_filter(text):
    return services.render_markdown(text)


# ---------------------------------------------------------------- learner

def _own(enrollment_id: int) -> Enrollment:
    e = db.session.get(Enrollment, enrollment_id)
    if e is None or not current_user.employee_id or e.employee_id != current_user.employee_id:
        abort(404)
    return e


def _own_attempt(attempt_id: int) -> Attempt:
    a = db.session.get(Attempt, attempt_id)
    if a is None or a.user_id != current_user.id:
        abort(404)
    _own(a.enrollment_id)
    return a


@bp.route("/training")
@login_only
def my_learning():
    enrollments = learning.my_enrollments(current_user.employee_id)
    done = learning.progress_for([e.id for e in enrollments])
    counts = dict(db.session.execute(
        select(Lesson.version_id, func.count()).where(
            Lesson.version_id.in_({e.version_id for e in enrollments})).group_by(Lesson.version_id)).all()) \
        if enrollments else {}
    now = utcnow()
    rows = []
    for e in enrollments:
        total = counts.get(e.version_id, 0)
        pct = 100 if e.status == "completed" else (int(done.get(e.id, 0) * 100 / total) if total else 0)
        rows.append({"e": e, "done": done.get(e.id, 0), "total": total, "pct": pct, "bar": pct // 5 * 5,
                     "overdue": e.overdue(now)})
    return render("training/my.html", rows=rows, statuses=STATUS_LABELS)


@bp.route("/training/learn/<int:enrollment_id>")
@login_only
def course_view(enrollment_id: int):
    e = _own(enrollment_id)
    version = db.session.get(CourseVersion, e.version_id)
    req = learning.requirements(e)
    state = exams.exam_state(e, version, lessons_done=req.lessons_complete)
    db.session.commit()  # keeps the grading of an attempt that expired meanwhile (if any)
    req = learning.requirements(e)
    progress = learning.progress_map(e)
    completions = list(db.session.scalars(select(Completion).where(Completion.enrollment_id == e.id)
                                          .order_by(Completion.completed_at.desc())))
    return render("training/course.html", e=e, version=version, req=req, state=state, progress=progress,
                  completions=completions, statuses=STATUS_LABELS, now=utcnow())


def _lesson_of(e: Enrollment, lesson_id: int) -> Lesson:
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.version_id != e.version_id:
        abort(404)
    return lesson


@bp.route("/training/learn/<int:enrollment_id>/lessons/<int:lesson_id>")
@login_only
def lesson(enrollment_id: int, lesson_id: int):
    e = _own(enrollment_id)
    lesson_ = _lesson_of(e, lesson_id)
    if e.status == "completed":
        p = learning.progress_map(e).get(lesson_.id)
    else:
        p = learning.open_lesson(e, lesson_)
        db.session.commit()
    version = db.session.get(CourseVersion, e.version_id)
    lessons = version.lessons
    i = lessons.index(lesson_)
    return render("training/lesson.html", e=e, lesson=lesson_, progress=p, version=version,
                  prev=lessons[i - 1] if i > 0 else None, next=lessons[i + 1] if i + 1 < len(lessons) else None,
                  number=i + 1, total=len(lessons))


@bp.route("/training/learn/<int:enrollment_id>/lessons/<int:lesson_id>/ping", methods=["POST"])
@login_only
def lesson_ping(enrollment_id: int, lesson_id: int):
    e = _own(enrollment_id)
    lesson_ = _lesson_of(e, lesson_id)
    if e.status != "completed":
        learning.heartbeat(e, lesson_)
        db.session.commit()
    return Response(status=204)


@bp.route("/training/learn/<int:enrollment_id>/lessons/<int:lesson_id>/done", methods=["POST"])
@login_only
def lesson_done(enrollment_id: int, lesson_id: int):
    e = _own(enrollment_id)
    lesson_ = _lesson_of(e, lesson_id)
    if e.status != "completed":
        learning.complete_lesson(e, lesson_)
        db.session.commit()
    version = db.session.get(CourseVersion, e.version_id)
    lessons = version.lessons
    i = lessons.index(lesson_)
    if i + 1 < len(lessons):
        return redirect(url_for("training.lesson", enrollment_id=e.id, lesson_id=lessons[i + 1].id), code=303)
    return redirect(url_for("training.course_view", enrollment_id=e.id), code=303)


@bp.route("/training/learn/<int:enrollment_id>/files/<int:attachment_id>")
@login_only
def learner_file(enrollment_id: int, attachment_id: int):
    e = _own(enrollment_id)
    att = db.session.get(LessonAttachment, attachment_id)
    if att is None or att.lesson.version_id != e.version_id:
        abort(404)
    audit.record("training.attachment_downloaded", att, {"enrollment_id": e.id, "file_id": att.file_id})
    db.session.commit()
    return uploads.download(att.file)


@bp.route("/training/learn/<int:enrollment_id>/exam", methods=["POST"])
@login_only
def exam_start(enrollment_id: int):
    e = _own(enrollment_id)
    req = learning.requirements(e)
    try:
        attempt = exams.start_attempt(e, current_user, lessons_done=req.lessons_complete)
    except services.TrainingError as exc:
        db.session.commit()  # keeps a timed-out attempt's grading
        flash(msg(exc), "error")
        return redirect(url_for("training.course_view", enrollment_id=e.id), code=303)
    db.session.commit()
    return redirect(url_for("training.attempt", attempt_id=attempt.id), code=303)


@bp.route("/training/attempts/<int:attempt_id>")
@login_only
def attempt(attempt_id: int):
    a = _own_attempt(attempt_id)
    now = utcnow()
    if not a.finished and exams.is_late(a, now):
        exams.finalise(a, "timeout", now)
        db.session.commit()
    if a.finished:
        return redirect(url_for("training.attempt_result", attempt_id=a.id), code=303)
    version = db.session.get(CourseVersion, a.version_id)
    return render("training/exam.html", a=a, version=version, left=exams.seconds_left(a, now),
                  kinds=KIND_LABELS)


def _answers_from_form(a: Attempt) -> dict[int, list[str]]:
    out = {}
    for item in a.items:
        key = f"q{item.id}"
        if key in request.form:
            out[item.id] = request.form.getlist(key)
    return out


@bp.route("/training/attempts/<int:attempt_id>/items/<int:item_id>", methods=["POST"])
@login_only
def answer_save(attempt_id: int, item_id: int):
    a = _own_attempt(attempt_id)
    item = db.session.get(AttemptItem, item_id)
    if item is None or item.attempt_id != a.id:
        abort(404)
    try:
        exams.save_answer(a, item, request.form.getlist(f"q{item.id}"))
    except exams.TooLate as exc:
        db.session.commit()  # the attempt is graded on the answers saved in time
        return render("training/_saved.html", item=item, error=msg(exc), late=True, a=a, status=409)
    except services.TrainingError as exc:
        db.session.rollback()
        return render("training/_saved.html", item=item, error=msg(exc), late=False, a=a,
                      status=409 if exc.code == "attempt_closed" else 422)
    db.session.commit()
    return render("training/_saved.html", item=item, error=None, late=False, a=a)


@bp.route("/training/attempts/<int:attempt_id>/submit", methods=["POST"])
@login_only
def attempt_submit(attempt_id: int):
    a = _own_attempt(attempt_id)
    if a.finished:
        return redirect(url_for("training.attempt_result", attempt_id=a.id), code=303)
    try:
        in_time = exams.submit(a, _answers_from_form(a), current_user)
    except services.TrainingError as exc:
        db.session.rollback()
        if exc.code == "bad_answer":
            version = db.session.get(CourseVersion, a.version_id)
            flash(msg(exc), "error")
            return render("training/exam.html", a=a, version=version, left=exams.seconds_left(a),
                          kinds=KIND_LABELS, status=422)
        flash(msg(exc), "error")
        return redirect(url_for("training.attempt_result", attempt_id=a.id), code=303)
    db.session.commit()
    if not in_time:
        return _result(a, late=True, status=409)
    return redirect(url_for("training.attempt_result", attempt_id=a.id), code=303)


def _result(a: Attempt, late: bool = False, status: int = 200):
    e = db.session.get(Enrollment, a.enrollment_id)
    version = db.session.get(CourseVersion, a.version_id)
    state = exams.exam_state(e, version)
    db.session.commit()
    return render("training/result.html", a=a, e=e, version=version, state=state, late=late,
                  show=exams.shows_answers(a, version, state), kinds=KIND_LABELS, status=status)


@bp.route("/training/attempts/<int:attempt_id>/result")
@login_only
def attempt_result(attempt_id: int):
    a = _own_attempt(attempt_id)
    if not a.finished:
        if exams.is_late(a, utcnow()):
            exams.finalise(a, "timeout", utcnow())
            db.session.commit()
        else:
            return redirect(url_for("training.attempt", attempt_id=a.id), code=303)
    return _result(a, late=a.closed_by in ("late", "timeout"))


@bp.route("/training/learn/<int:enrollment_id>/acknowledge")
@login_only
def ack_form(enrollment_id: int):
    e = _own(enrollment_id)
    version = db.session.get(CourseVersion, e.version_id)
    if not version.has_policy:
        abort(404)
    return render("training/ack.html", e=e, version=version, req=learning.requirements(e), form=AckForm(),
                  statement=learning.statement(version))


@bp.route("/training/learn/<int:enrollment_id>/acknowledge", methods=["POST"])
@login_only
def ack_sign(enrollment_id: int):
    e = _own(enrollment_id)
    version = db.session.get(CourseVersion, e.version_id)
    if not version.has_policy:
        abort(404)
    form = AckForm()

    def again(error: str, status: int = 422):
        form.password.errors = [error]
        return render("training/ack.html", e=e, version=version, req=learning.requirements(e), form=form,
                      statement=learning.statement(version), status=status)

    if not form.validate_on_submit():
        return again(_("Enter your password to sign."))
    try:
        ack = learning.acknowledge(e, current_user, form.password.data)
    except signatures.SignatureError:
        db.session.commit()  # keep the audit record of the failed re-authentication
        return again(_("The password is not correct. Nothing was signed."))
    except services.TrainingError as exc:
        db.session.rollback()
        return again(msg(exc), 409 if exc.code == "already_acknowledged" else 422)
    db.session.commit()
    flash(_("Signed. Your acknowledgement is recorded."), "success")
    return redirect(url_for("training.ack_evidence", ack_id=ack.id), code=303)


@bp.route("/training/acknowledgements/<int:ack_id>")
@login_only
def ack_evidence(ack_id: int):
    ack = get_or_404(Acknowledgement, ack_id)
    own = current_user.employee_id and ack.employee_id == current_user.employee_id
    if not own and not can(current_user, "training.compliance"):
        abort(404)
    sig = db.session.get(signatures.Signature, ack.signature_id)
    check = learning.verify_acknowledgement(ack)
    version = db.session.get(CourseVersion, ack.version_id)
    audit.record("training.evidence_viewed", ack, {"employee_id": ack.employee_id})
    db.session.commit()
    from portal.core.audit import verify
    return render("training/evidence.html", ack=ack, sig=sig, check=check, version=version,
                  chain=verify() if can(current_user, "training.compliance") else None)


# ---------------------------------------------------------------- reports

def _may_see(emp: Employee) -> bool:
    if emp.id == current_user.employee_id:
        return True
    perms = effective_permissions(current_user)
    if "training.compliance" in perms:
        return True
    if "training.reports" not in perms:
        return False
    return "training.view_all" in perms or is_manager_of(current_user, emp)


@bp.route("/training/reports")
@require("training.reports")
def reports_index():
    page, per_page = page_arg()
    now = utcnow()
    overdue = paginate(reports.enrollments_stmt(current_user, only_overdue=True, now=now), page, per_page)
    return render("training/reports.html", courses=reports.course_stats(current_user, now),
                  departments=reports.department_stats(current_user, now=now), page=overdue, now=now,
                  statuses=STATUS_LABELS)


@bp.route("/training/reports.xlsx")
@require("training.reports")
def reports_xlsx():
    data, n = reports.report_xlsx(current_user)
    audit.record("training.report_exported", ("training_reports", "all"), {"rows": n})
    db.session.commit()
    return _xlsx_response(data, "training-report.xlsx")


@bp.route("/training/reports/courses/<int:course_id>")
@require("training.reports")
def course_report(course_id: int):
    course = get_or_404(Course, course_id)
    page, per_page = page_arg()
    now = utcnow()
    only_overdue = request.args.get("overdue") == "1"
    rows = paginate(reports.enrollments_stmt(current_user, course.id, only_overdue, now), page, per_page)
    return render("training/course_report.html", course=course, summary=reports.course_summary(current_user, course, now),
                  departments=reports.department_stats(current_user, course.id, now), page=rows, now=now,
                  statuses=STATUS_LABELS, only_overdue=only_overdue)


@bp.route("/training/reports/courses/<int:course_id>.xlsx")
@require("training.reports")
def course_report_xlsx(course_id: int):
    course = get_or_404(Course, course_id)
    data, n = reports.report_xlsx(current_user, course)
    audit.record("training.report_exported", course, {"rows": n})
    db.session.commit()
    return _xlsx_response(data, f"training-course-{course.id}.xlsx")


@bp.route("/training/people/<int:employee_id>")
@login_only
def person_history(employee_id: int):
    emp = get_or_404(Employee, employee_id)
    if not _may_see(emp):
        abort(404)
    if emp.id != current_user.employee_id:
        audit.record("training.history_viewed", emp, {})
        db.session.commit()
    return render("training/person.html", emp=emp, rows=reports.employee_history(emp.id),
                  summary=reports.training_summary(emp.id), statuses=STATUS_LABELS, now=utcnow())


@bp.route("/training/compliance")
@require("training.compliance")
def compliance():
    course_id = request.args.get("course", type=int)
    q = request.args.get("q", "").strip()[:100]
    page, per_page = page_arg(50)
    summary, gaps = reports.compliance(current_user, course_id, q, page, per_page)
    acks = _latest_acks([g.employee.id for g in gaps.items], {g.course.id for g in gaps.items})
    return render("training/compliance.html", "training/_compliance_gaps.html", summary=summary, page=gaps,
                  course_id=course_id, q=q, acks=acks, statuses=STATUS_LABELS, now=utcnow())


def _latest_acks(employee_ids, course_ids) -> dict:
    """The newest (older-version) acknowledgement per (employee, course), to show what they did sign."""
    if not employee_ids:
        return {}
    out = {}
    for ack in db.session.scalars(select(Acknowledgement).where(Acknowledgement.employee_id.in_(employee_ids),
                                                                Acknowledgement.course_id.in_(course_ids))
                                  .order_by(Acknowledgement.signed_at)):
        out[(ack.employee_id, ack.course_id)] = ack
    return out


@bp.route("/training/compliance.xlsx")
@require("training.compliance")
def compliance_xlsx():
    course_id = request.args.get("course", type=int)
    data, n = reports.compliance_xlsx(current_user, course_id)
    audit.record("training.compliance_exported", ("training_compliance", course_id or "all"), {"rows": n})
    db.session.commit()
    return _xlsx_response(data, "policy-compliance.xlsx")


def _xlsx_response(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "X-Content-Type-Options": "nosniff"})


"""Trainer studio: courses and versions, lessons with attachments, the question bank (with XLSX import),
exam rules, publishing, assignments."""
from __future__ import annotations

import re

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from portal.core import audit, uploads
from portal.core.db import db, get_or_404
from portal.core.forms import add_field_error
from portal.core.security import require
from portal.core.ui import page_arg, paginate, render
from portal.org.models import Employee
from portal.org.services import department_choices, position_choices
from portal.training import assign, bp, services
from portal.training.forms import (KIND_LABELS, STATUS_LABELS, TARGET_LABELS, AssignForm, CourseForm, FileForm,
                                   LessonForm, QuestionForm, SettingsForm)
from portal.training.models import Assignment, Course, CourseVersion, Enrollment, Lesson, LessonAttachment, Question
from portal.training.services import TrainingError
from portal.training.views import msg


def _edit_url(course_id: int) -> str:
    return url_for("training.course_edit", course_id=course_id)


def _field_error(form, exc: TrainingError, default: str) -> None:
    add_field_error(form, exc.field, default, msg(exc))


@bp.route("/training/studio")
@require("training.assign")
def studio():
    rows = services.courses_for_studio()
    counts = dict(db.session.execute(select(Enrollment.course_id, func.count()).group_by(Enrollment.course_id)).all())
    return render("training/studio.html", rows=rows, counts=counts, statuses=STATUS_LABELS)


@bp.route("/training/studio/new")
@require("training.author")
def new_course():
    return render("training/course_form.html", form=CourseForm())


@bp.route("/training/studio/new", methods=["POST"])
@require("training.author")
def course_create():
    form = CourseForm()
    if form.validate_on_submit():
        try:
            course = services.create_course(current_user, form.title.data, form.description.data, form.code.data)
        except TrainingError as exc:
            db.session.rollback()
            _field_error(form, exc, "title")
        else:
            db.session.commit()
            flash(_("Course created as a draft. Add lessons, then publish."), "success")
            return redirect(_edit_url(course.id), code=303)
    return render("training/course_form.html", form=form, status=422)


def _editor(course: Course, settings: SettingsForm | None = None, lesson_form: LessonForm | None = None,
            status: int = 200, rules_error: str | None = None):
    draft = services.draft_of(course)
    version = draft or services.latest_version(course)
    if settings is None:
        settings = SettingsForm(obj=version, formdata=None)
        settings.time_limit_minutes.data = version.time_limit_seconds // 60
        settings.cooloff_hours.data = version.cooloff_seconds // 3600
    services.lessons_with_files([version.id])
    bank = services.bank_counts(course.id)
    cats = sorted(set(bank) | {r.category for r in version.rules})
    rules = {r.category: r.count for r in version.rules}
    return render("training/course_edit.html", course=course, version=version, draft=draft, form=settings,
                  versions=services.versions_of(course), bank=bank, cats=cats, rules=rules, file_form=FileForm(),
                  statuses=STATUS_LABELS, rules_error=rules_error, status=status)


@bp.route("/training/studio/<int:course_id>")
@require("training.author")
def course_edit(course_id: int):
    return _editor(get_or_404(Course, course_id))


def _draft_or_409(course: Course) -> CourseVersion:
    draft = services.draft_of(course)
    if draft is None:
        abort(409)
    return draft


@bp.route("/training/studio/<int:course_id>/settings", methods=["POST"])
@require("training.author")
def settings_save(course_id: int):
    course = get_or_404(Course, course_id)
    draft = _draft_or_409(course)
    form = SettingsForm()
    if form.validate_on_submit():
        try:
            services.update_settings(draft, current_user, title=form.title.data, description=form.description.data,
                                     policy_name=form.policy_name.data, policy_version=form.policy_version.data,
                                     policy_text=form.policy_text.data, pass_mark=form.pass_mark.data,
                                     time_limit_minutes=form.time_limit_minutes.data,
                                     max_attempts=form.max_attempts.data, cooloff_hours=form.cooloff_hours.data,
                                     show_answers=form.show_answers.data)
        except TrainingError as exc:
            db.session.rollback()
            _field_error(form, exc, "title")
        else:
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(_edit_url(course.id), code=303)
    return _editor(course, settings=form, status=422)


@bp.route("/training/studio/<int:course_id>/versions", methods=["POST"])
@require("training.author")
def version_create(course_id: int):
    course = get_or_404(Course, course_id)
    version = services.new_version(course, current_user)
    db.session.commit()
    flash(_("Version %(n)s created as a draft. Learners keep the published version until you publish this one.",
            n=version.number), "success")
    return redirect(_edit_url(course.id), code=303)


@bp.route("/training/studio/<int:course_id>/publish", methods=["POST"])
@require("training.author")
def publish(course_id: int):
    course = db.session.scalar(select(Course).where(Course.id == course_id).with_for_update())
    if course is None:
        abort(404)
    draft = _draft_or_409(course)
    try:
        services.publish(draft, current_user)
    except TrainingError as exc:
        db.session.rollback()
        flash(msg(exc), "error")
        return redirect(_edit_url(course.id), code=303)
    db.session.commit()
    flash(_("Version %(n)s published.", n=draft.number), "success")
    return redirect(_edit_url(course.id), code=303)


@bp.route("/training/studio/<int:course_id>/rules", methods=["POST"])
@require("training.author")
def rules_save(course_id: int):
    course = get_or_404(Course, course_id)
    draft = _draft_or_409(course)
    counts: dict[str, int] = {}
    error = None
    for key, raw in request.form.items():
        if not key.startswith("rule:"):
            continue
        try:
            counts[key[5:]] = int(raw or 0)
        except ValueError:
            error = msg(TrainingError("bad_number"))
    new_cat = (request.form.get("new_category") or "").strip()
    if new_cat and request.form.get("new_count"):
        try:
            counts[new_cat] = int(request.form["new_count"])
        except ValueError:
            error = msg(TrainingError("bad_number"))
    if error is None:
        try:
            services.set_rules(draft, current_user, counts)
        except TrainingError as exc:
            error = msg(exc)
    if error:
        db.session.rollback()
        return _editor(course, status=422, rules_error=error)
    db.session.commit()
    flash(_("Exam rules saved."), "success")
    return redirect(_edit_url(course.id) + "#exam", code=303)


# ---------------------------------------------------------------- lessons

@bp.route("/training/studio/<int:course_id>/lessons/new")
@require("training.author")
def new_lesson(course_id: int):
    course = get_or_404(Course, course_id)
    _draft_or_409(course)
    return render("training/lesson_form.html", course=course, lesson=None, form=LessonForm())


@bp.route("/training/studio/<int:course_id>/lessons/new", methods=["POST"])
@require("training.author")
def lesson_create(course_id: int):
    course = get_or_404(Course, course_id)
    draft = _draft_or_409(course)
    form = LessonForm()
    if form.validate_on_submit():
        try:
            lesson = services.add_lesson(draft, current_user, form.title.data, form.body.data)
        except TrainingError as exc:
            db.session.rollback()
            _field_error(form, exc, "title")
        else:
            db.session.commit()
            flash(_("Lesson added."), "success")
            return redirect(url_for("training.lesson_edit", lesson_id=lesson.id), code=303)
    return render("training/lesson_form.html", course=course, lesson=None, form=form, status=422)


def _lesson(lesson_id: int) -> tuple[Lesson, Course]:
    lesson = get_or_404(Lesson, lesson_id)
    return lesson, db.session.get(Course, lesson.version.course_id)


@bp.route("/training/studio/lessons/<int:lesson_id>")
@require("training.author")
def lesson_edit(lesson_id: int):
    lesson, course = _lesson(lesson_id)
    form = LessonForm(formdata=None, title=lesson.title, body=lesson.body_md)
    return render("training/lesson_form.html", course=course, lesson=lesson, form=form, file_form=FileForm())


@bp.route("/training/studio/lessons/<int:lesson_id>", methods=["POST"])
@require("training.author")
def lesson_save(lesson_id: int):
    lesson, course = _lesson(lesson_id)
    if lesson.version.status != "draft":
        abort(409)
    form = LessonForm()
    if form.validate_on_submit():
        try:
            services.update_lesson(lesson, current_user, form.title.data, form.body.data)
        except TrainingError as exc:
            db.session.rollback()
            _field_error(form, exc, "title")
        else:
            db.session.commit()
            flash(_("Lesson saved."), "success")
            return redirect(url_for("training.lesson_edit", lesson_id=lesson.id), code=303)
    return render("training/lesson_form.html", course=course, lesson=lesson, form=form, file_form=FileForm(),
                  status=422)


@bp.route("/training/studio/lessons/<int:lesson_id>/delete", methods=["POST"])
@require("training.author")
def lesson_delete(lesson_id: int):
    lesson, course = _lesson(lesson_id)
    try:
        services.delete_lesson(lesson, current_user)
    except TrainingError as exc:
        db.session.rollback()
        flash(msg(exc), "error")
    else:
        db.session.commit()
        flash(_("Lesson deleted."), "success")
    return redirect(_edit_url(course.id), code=303)


@bp.route("/training/studio/lessons/<int:lesson_id>/move", methods=["POST"])
@require("training.author")
def lesson_move(lesson_id: int):
    lesson, course = _lesson(lesson_id)
    try:
        services.move_lesson(lesson, current_user, -1 if request.form.get("dir") == "up" else 1)
    except TrainingError as exc:
        db.session.rollback()
        flash(msg(exc), "error")
    else:
        db.session.commit()
    return redirect(_edit_url(course.id), code=303)


@bp.route("/training/studio/lessons/<int:lesson_id>/files", methods=["POST"])
@require("training.author")
def file_upload(lesson_id: int):
    lesson, course = _lesson(lesson_id)
    form = FileForm()
    error = None
    if not form.validate_on_submit() or not request.files.get("file"):
        error = _("Choose a file.")
    else:
        try:
            att = services.add_attachment(lesson, request.files["file"], current_user,
                                          current_app.config.get("TRAINING_MAX_ATTACHMENT_BYTES"))
        except uploads.UploadError as exc:
            error = uploads.upload_error_message(exc)
        except TrainingError as exc:
            error = msg(exc)
    if error:
        db.session.rollback()
        form.file.errors = [error]
        lf = LessonForm(formdata=None, title=lesson.title, body=lesson.body_md)
        return render("training/lesson_form.html", course=course, lesson=lesson, form=lf, file_form=form,
                      status=422)
    db.session.commit()
    flash(_("Attachment %(name)s added.", name=att.file.original_name), "success")
    return redirect(url_for("training.lesson_edit", lesson_id=lesson.id), code=303)


@bp.route("/training/studio/files/<int:attachment_id>/delete", methods=["POST"])
@require("training.author")
def file_delete(attachment_id: int):
    att = get_or_404(LessonAttachment, attachment_id)
    lesson_id = att.lesson_id
    try:
        services.remove_attachment(att, current_user)
    except TrainingError as exc:
        db.session.rollback()
        flash(msg(exc), "error")
    else:
        db.session.commit()
        flash(_("Attachment removed."), "success")
    return redirect(url_for("training.lesson_edit", lesson_id=lesson_id), code=303)


@bp.route("/training/studio/files/<int:attachment_id>")
@require("training.author")
def studio_file(attachment_id: int):
    att = get_or_404(LessonAttachment, attachment_id)
    audit.record("training.attachment_downloaded", att, {"file_id": att.file_id, "studio": True})
    db.session.commit()
    return uploads.download(att.file)


# ---------------------------------------------------------------- question bank

@bp.route("/training/studio/<int:course_id>/questions")
@require("training.author")
def questions(course_id: int):
    course = get_or_404(Course, course_id)
    page, per_page = page_arg(50)
    cat = request.args.get("category")
    stmt = select(Question).where(Question.course_id == course.id)
    if cat is not None and cat != "*":
        stmt = stmt.where(Question.category == cat)
    stmt = stmt.order_by(Question.active.desc(), Question.category, Question.id)
    return render("training/questions.html", course=course, page=paginate(stmt, page, per_page),
                  cats=services.categories(course.id), cat=cat, bank=services.bank_counts(course.id),
                  kinds=KIND_LABELS, letters=services.LETTERS)


def _question_args(form: QuestionForm) -> dict:
    options = [o for o in (form.options.data or "").splitlines()]
    options, correct = services.interpret_answer(form.kind.data, options, form.answer.data)
    return dict(kind=form.kind.data, category=form.category.data, prompt=form.prompt.data, options=options,
                correct=correct, exact=form.exact.data, explanation=form.explanation.data)


@bp.route("/training/studio/<int:course_id>/questions/new")
@require("training.author")
def new_question(course_id: int):
    course = get_or_404(Course, course_id)
    return render("training/question_form.html", course=course, question=None,
                  form=QuestionForm(category=request.args.get("category", "")))


@bp.route("/training/studio/<int:course_id>/questions/new", methods=["POST"])
@require("training.author")
def question_create(course_id: int):
    course = get_or_404(Course, course_id)
    form = QuestionForm()
    if form.validate_on_submit():
        try:
            services.save_question(course, current_user, **_question_args(form))
        except TrainingError as exc:
            db.session.rollback()
            _field_error(form, exc, "prompt")
        else:
            db.session.commit()
            flash(_("Question added."), "success")
            if request.form.get("another"):
                return redirect(url_for("training.new_question", course_id=course.id,
                                        category=form.category.data or ""), code=303)
            return redirect(url_for("training.questions", course_id=course.id), code=303)
    return render("training/question_form.html", course=course, question=None, form=form, status=422)


def _answer_text(q: Question) -> str:
    if q.kind in ("single", "multiple"):
        return ",".join(services.LETTERS[i] for i in q.correct)
    if q.kind == "truefalse":
        return "true" if q.correct and q.correct[0] else "false"
    return " | ".join(q.options)


@bp.route("/training/studio/questions/<int:question_id>")
@require("training.author")
def question_edit(question_id: int):
    q = get_or_404(Question, question_id)
    course = db.session.get(Course, q.course_id)
    form = QuestionForm(formdata=None, kind=q.kind, category=q.category, prompt=q.prompt,
                        options="\n".join(q.options) if q.kind in ("single", "multiple") else "",
                        answer=_answer_text(q), exact=q.exact, explanation=q.explanation)
    return render("training/question_form.html", course=course, question=q, form=form)


@bp.route("/training/studio/questions/<int:question_id>", methods=["POST"])
@require("training.author")
def question_save(question_id: int):
    q = get_or_404(Question, question_id)
    course = db.session.get(Course, q.course_id)
    form = QuestionForm()
    if form.validate_on_submit():
        try:
            services.save_question(course, current_user, question=q, **_question_args(form))
        except TrainingError as exc:
            db.session.rollback()
            _field_error(form, exc, "prompt")
        else:
            db.session.commit()
            flash(_("Question saved. Attempts already made keep the question as it was shown."), "success")
            return redirect(url_for("training.questions", course_id=course.id), code=303)
    return render("training/question_form.html", course=course, question=q, form=form, status=422)


@bp.route("/training/studio/questions/<int:question_id>/active", methods=["POST"])
@require("training.author")
def question_toggle(question_id: int):
    q = get_or_404(Question, question_id)
    services.set_question_active(q, current_user, not q.active)
    db.session.commit()
    return redirect(url_for("training.questions", course_id=q.course_id), code=303)


@bp.route("/training/studio/<int:course_id>/questions/upload")
@require("training.author")
def bank_upload(course_id: int):
    course = get_or_404(Course, course_id)
    return render("training/import.html", course=course, form=FileForm(), problems=[])


@bp.route("/training/studio/<int:course_id>/questions/upload", methods=["POST"])
@require("training.author")
def questions_import(course_id: int):
    course = get_or_404(Course, course_id)
    form = FileForm()
    problems: list = []
    if not form.validate_on_submit() or not request.files.get("file"):
        form.file.errors = [_("Choose an .xlsx file.")]
    else:
        try:
            n, problems = services.import_questions(course, current_user, request.files["file"])
        except uploads.UploadError as exc:
            form.file.errors = [uploads.upload_error_message(exc)]
        except TrainingError as exc:
            form.file.errors = [msg(exc)]
        else:
            if not problems:
                db.session.commit()
                flash(_("%(n)s questions imported.", n=n), "success")
                return redirect(url_for("training.questions", course_id=course.id), code=303)
    db.session.rollback()
    rows = [(row, msg(TrainingError(code, **params))) for row, code, params in problems]
    return render("training/import.html", course=course, form=form, problems=rows, status=422)


@bp.route("/training/studio/question-template.xlsx")
@require("training.author")
def bank_template():
    return Response(services.import_template(),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="question-bank-template.xlsx"'})


# ---------------------------------------------------------------- assignments

def _assign_form(form: AssignForm | None = None) -> AssignForm:
    form = form or AssignForm()
    form.department_id.choices = department_choices(blank="—")
    form.position_id.choices = position_choices(blank="—")
    return form


def _assign_page(course: Course, form: AssignForm, status: int = 200):
    rows = assign.assignments_of(course)
    counts = dict(db.session.execute(select(Enrollment.assignment_id, func.count()).where(
        Enrollment.course_id == course.id).group_by(Enrollment.assignment_id)).all())
    labels = {a.id: assign.target_label(a) for a in rows}
    return render("training/assignments.html", course=course, form=form, rows=rows, counts=counts, labels=labels,
                  targets=TARGET_LABELS, status=status)


@bp.route("/training/studio/<int:course_id>/assignments")
@require("training.assign")
def assignments(course_id: int):
    course = get_or_404(Course, course_id)
    return _assign_page(course, _assign_form())


@bp.route("/training/studio/<int:course_id>/assignments", methods=["POST"])
@require("training.assign")
def assignment_create(course_id: int):
    course = get_or_404(Course, course_id)
    form = _assign_form()
    if not form.validate_on_submit():
        return _assign_page(course, form, 422)
    kind = form.target_type.data
    targets: list[int] = []
    if kind == "employee":
        tokens = [t for t in re.split(r"[\s,，;；]+", form.people.data or "") if t]
        found = dict(db.session.execute(select(Employee.emp_no, Employee.id).where(Employee.emp_no.in_(tokens))).all())
        unknown = [t for t in tokens if t not in found]
        if unknown or not tokens:
            form.people.errors = [msg(TrainingError("unknown_people", names=", ".join(unknown)))
                                  if unknown else msg(TrainingError("bad_target"))]
            return _assign_page(course, form, 422)
        targets = [found[t] for t in dict.fromkeys(tokens)]
    else:
        raw = form.department_id.data if kind == "department" else form.position_id.data
        if not raw:
            getattr(form, "department_id" if kind == "department" else "position_id").errors = [
                msg(TrainingError("bad_target"))]
            return _assign_page(course, form, 422)
        targets = [int(raw)]
    total = 0
    try:
        for tid in targets:
            _a, n = assign.create_assignment(course, current_user, kind, tid, form.due_date.data,
                                             form.new_hire_days.data, form.include_subdepartments.data)
            total += n
    except TrainingError as exc:
        db.session.rollback()
        _field_error(form, exc, "due_date" if exc.code == "due_in_past" else "target_type")
        return _assign_page(course, form, 422)
    db.session.commit()
    flash(_("Assigned. %(n)s people enrolled now; people who join later get it automatically.", n=total),
          "success")
    return redirect(url_for("training.assignments", course_id=course.id), code=303)


@bp.route("/training/studio/assignments/<int:assignment_id>/revoke", methods=["POST"])
@require("training.assign")
def assignment_revoke(assignment_id: int):
    a = get_or_404(Assignment, assignment_id)
    n = assign.revoke_assignment(a, current_user)
    db.session.commit()
    flash(_("Assignment stopped; %(n)s enrollments not yet started were withdrawn.", n=n), "success")
    return redirect(url_for("training.assignments", course_id=a.course_id), code=303)

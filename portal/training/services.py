"""Training: courses, versions, lessons, attachments, the question bank and its XLSX import.

Every write and rule lives here (no request object); callers pass the acting user and commit. Every
change writes an audit event in the caller's transaction. Learner-side rules are in ``learning.py``,
exams in ``exams.py``, assignments in ``assign.py``, reports in ``reports.py``.
"""
from __future__ import annotations

import io
import re
from typing import Any, Iterable, Optional

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy import func, select

from portal.core import audit, signatures, uploads
from portal.core.db import db, utcnow
from portal.training.models import (QUESTION_KINDS, SHOW_ANSWERS, Course, CourseVersion, ExamRule, Lesson,
                                    LessonAttachment, Question)

ATTACHMENT_PURPOSE = "training"


class TrainingError(ValueError):
    """A user-facing problem: ``code`` maps to a message in views; ``field`` names the form field."""

    def __init__(self, code: str, field: str | None = None, **params: Any):
        super().__init__(code)
        self.code, self.field, self.params = code, field, params


# ---------------------------------------------------------------- Markdown

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
_ALLOWED_TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "u", "s", "del",
                 "code", "pre", "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr",
                 "th", "td", "sup", "sub"}
_ALLOWED_ATTRS = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"},
                  "th": {"align"}, "td": {"align"}}


def render_markdown(text: str) -> Markup:
    """Markdown in, sanitised HTML out (raw HTML in the source is not rendered; nh3 cleans the rest)."""
    html = _md.render(text or "")
    clean = nh3.clean(html, tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRS,
                      url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")
    return Markup(clean)


# ---------------------------------------------------------------- courses and versions

def _clean(value: str | None) -> str:
    return (value or "").strip()


def create_course(actor, title: str, description: str = "", code: str = "") -> Course:
    title, code = _clean(title), _clean(code) or None
    if not title:
        raise TrainingError("title_required", "title")
    if len(title) > 200:
        raise TrainingError("too_long", "title")
    if code and db.session.scalar(select(Course.id).where(Course.code == code)):
        raise TrainingError("code_taken", "code")
    course = Course(title=title, code=code, created_by_id=getattr(actor, "id", None))
    db.session.add(course)
    db.session.flush()
    version = CourseVersion(course_id=course.id, number=1, status="draft", title=title,
                            description=_clean(description), created_by_id=getattr(actor, "id", None))
    db.session.add(version)
    db.session.flush()
    audit.record("training.course_created", course, {"title": title, "code": code}, actor=actor)
    return course


def versions_of(course: Course) -> list[CourseVersion]:
    return list(db.session.scalars(select(CourseVersion).where(CourseVersion.course_id == course.id)
                                   .order_by(CourseVersion.number)))


def draft_of(course: Course) -> Optional[CourseVersion]:
    return db.session.scalar(select(CourseVersion).where(CourseVersion.course_id == course.id,
                                                         CourseVersion.status == "draft"))


def latest_version(course: Course) -> CourseVersion:
    return db.session.scalar(select(CourseVersion).where(CourseVersion.course_id == course.id)
                             .order_by(CourseVersion.number.desc()).limit(1))


def new_version(course: Course, actor) -> CourseVersion:
    """Editing a published course: copy the newest version (lessons, attachments, exam rules, policy) into
    a new draft. Returns the existing draft if there is one."""
    draft = draft_of(course)
    if draft is not None:
        return draft
    src = latest_version(course)
    version = CourseVersion(
        course_id=course.id, number=src.number + 1, status="draft", title=src.title,
        description=src.description, policy_name=src.policy_name, policy_version=src.policy_version,
        policy_text=src.policy_text, pass_mark=src.pass_mark, time_limit_seconds=src.time_limit_seconds,
        max_attempts=src.max_attempts, cooloff_seconds=src.cooloff_seconds, show_answers=src.show_answers,
        created_by_id=getattr(actor, "id", None))
    for lesson in src.lessons:
        copy = Lesson(position=lesson.position, title=lesson.title, body_md=lesson.body_md)
        copy.attachments = [LessonAttachment(file_id=a.file_id) for a in lesson.attachments]
        version.lessons.append(copy)
    version.rules = [ExamRule(category=r.category, count=r.count) for r in src.rules]
    db.session.add(version)
    db.session.flush()
    audit.record("training.version_created", version, {"course_id": course.id, "number": version.number,
                                                        "from_version": src.id}, actor=actor)
    return version


def _require_draft(version: CourseVersion) -> None:
    if version.status != "draft":
        raise TrainingError("not_draft")


def update_settings(version: CourseVersion, actor, *, title: str, description: str, policy_name: str,
                    policy_version: str, policy_text: str, pass_mark: int, time_limit_minutes: int,
                    max_attempts: int, cooloff_hours: int, show_answers: str) -> dict:
    _require_draft(version)
    title = _clean(title)
    if not title:
        raise TrainingError("title_required", "title")
    if not 0 <= pass_mark <= 100:
        raise TrainingError("bad_pass_mark", "pass_mark")
    if time_limit_minutes < 0 or time_limit_minutes > 24 * 60:
        raise TrainingError("bad_number", "time_limit_minutes")
    if max_attempts < 0 or max_attempts > 100:
        raise TrainingError("bad_number", "max_attempts")
    if cooloff_hours < 0 or cooloff_hours > 24 * 365:
        raise TrainingError("bad_number", "cooloff_hours")
    if show_answers not in SHOW_ANSWERS:
        raise TrainingError("bad_choice", "show_answers")
    policy_name, policy_version, policy_text = _clean(policy_name), _clean(policy_version), (policy_text or "").strip()
    if any((policy_name, policy_text)) and not all((policy_name, policy_version, policy_text)):
        raise TrainingError("policy_incomplete", "policy_name")
    values = dict(title=title, description=_clean(description), policy_name=policy_name,
                  policy_version=policy_version, policy_text=policy_text, pass_mark=pass_mark,
                  time_limit_seconds=time_limit_minutes * 60, max_attempts=max_attempts,
                  cooloff_seconds=cooloff_hours * 3600, show_answers=show_answers)
    changes = {}
    for key, value in values.items():
        if getattr(version, key) != value:
            changes[key] = value if key != "policy_text" else signatures.content_hash(value)
            setattr(version, key, value)
    course = db.session.get(Course, version.course_id)
    course.title = title
    if changes:
        audit.record("training.version_updated", version, {"changes": changes}, actor=actor)
    return changes


def set_rules(version: CourseVersion, actor, counts: dict[str, int]) -> None:
    """Exam draw rules: {category: number of questions}; 0 removes a category."""
    _require_draft(version)
    for cat, n in counts.items():
        if n < 0 or n > 500:
            raise TrainingError("bad_number", "rules")
    have = {r.category: r for r in version.rules}
    for cat, n in counts.items():
        if n == 0:
            if cat in have:
                version.rules.remove(have[cat])
        elif cat in have:
            have[cat].count = n
        else:
            version.rules.append(ExamRule(category=cat, count=n))
    db.session.flush()
    audit.record("training.rules_set", version, {"rules": {r.category: r.count for r in version.rules}},
                 actor=actor)


def bank_counts(course_id: int) -> dict[str, int]:
    """Active questions per category."""
    return dict(db.session.execute(
        select(Question.category, func.count()).where(Question.course_id == course_id, Question.active)
        .group_by(Question.category)).all())


def policy_content(version: CourseVersion) -> dict:
    return {"policy_name": version.policy_name, "policy_version": version.policy_version,
            "policy_text": version.policy_text}


def policy_hash(version: CourseVersion) -> str:
    return signatures.content_hash(policy_content(version)) if version.has_policy else ""


def publish(version: CourseVersion, actor) -> CourseVersion:
    """Publish a draft: checks it, retires the previous published version, moves learners who have not
    started to it; a changed policy text re-opens completed enrollments (a new acknowledgement is due)."""
    from portal.training import assign
    _require_draft(version)
    if not version.lessons:
        raise TrainingError("no_lessons")
    counts = bank_counts(version.course_id)
    short = {r.category or "—": (r.count, counts.get(r.category, 0)) for r in version.rules
             if counts.get(r.category, 0) < r.count}
    if short:
        raise TrainingError("bank_too_small", cats=", ".join(f"{c} ({have}/{need})"
                                                             for c, (need, have) in short.items()))
    course = db.session.get(Course, version.course_id)
    previous = course.current_version
    now = utcnow()
    if previous is not None and previous.id != version.id:
        previous.status = "retired"
    version.status, version.published_at, version.published_by_id = "published", now, getattr(actor, "id", None)
    course.current_version_id = version.id
    course.title = version.title
    db.session.flush()
    policy_changed = version.has_policy and (previous is None or policy_hash(previous) != policy_hash(version))
    moved, reopened = assign.on_publish(course, version, previous, policy_changed, actor)
    audit.record("training.published", version, {
        "course_id": course.id, "number": version.number, "previous_version": previous.id if previous else None,
        "policy_hash": policy_hash(version), "moved": moved, "reopened": reopened}, actor=actor)
    return version


# ---------------------------------------------------------------- lessons and attachments

def _lesson_values(title: str, body: str) -> tuple[str, str]:
    title = _clean(title)
    if not title:
        raise TrainingError("title_required", "title")
    if len(title) > 200:
        raise TrainingError("too_long", "title")
    if len(body or "") > 200_000:
        raise TrainingError("too_long", "body")
    return title, (body or "").strip()


def add_lesson(version: CourseVersion, actor, title: str, body: str) -> Lesson:
    _require_draft(version)
    title, body = _lesson_values(title, body)
    position = max((l.position for l in version.lessons), default=0) + 1
    lesson = Lesson(position=position, title=title, body_md=body)
    version.lessons.append(lesson)
    db.session.flush()
    audit.record("training.lesson_added", lesson, {"version_id": version.id, "title": title}, actor=actor)
    return lesson


def update_lesson(lesson: Lesson, actor, title: str, body: str) -> None:
    _require_draft(lesson.version)
    title, body = _lesson_values(title, body)
    changed = {k: True for k, v in (("title", title), ("body", body))
               if getattr(lesson, "title" if k == "title" else "body_md") != v}
    lesson.title, lesson.body_md = title, body
    if changed:
        audit.record("training.lesson_updated", lesson, {"changed": sorted(changed),
                                                         "body_hash": signatures.content_hash(body)}, actor=actor)


def delete_lesson(lesson: Lesson, actor) -> None:
    version = lesson.version
    _require_draft(version)
    audit.record("training.lesson_deleted", lesson, {"version_id": version.id, "title": lesson.title},
                 actor=actor)
    version.lessons.remove(lesson)
    for i, l in enumerate(version.lessons, 1):
        l.position = i
    db.session.flush()


def move_lesson(lesson: Lesson, actor, delta: int) -> None:
    version = lesson.version
    _require_draft(version)
    lessons = list(version.lessons)
    i = lessons.index(lesson)
    j = max(0, min(len(lessons) - 1, i + delta))
    if i == j:
        return
    lessons.insert(j, lessons.pop(i))
    for pos, l in enumerate(lessons, 1):
        l.position = pos
    db.session.flush()
    audit.record("training.lesson_moved", lesson, {"to": j + 1}, actor=actor)


def add_attachment(lesson: Lesson, file_storage, actor, max_bytes: int | None = None) -> LessonAttachment:
    """Stored outside the web root by core/uploads (size, name and content checked; raises UploadError)."""
    _require_draft(lesson.version)
    stored = uploads.save_upload(file_storage, ATTACHMENT_PURPOSE, uploads.MEDIA, max_bytes, actor)
    att = LessonAttachment(file_id=stored.id)
    lesson.attachments.append(att)
    db.session.flush()
    audit.record("training.attachment_added", att, {"lesson_id": lesson.id, "file_id": stored.id,
                                                    "name": stored.original_name, "kind": stored.kind,
                                                    "sha256": stored.sha256}, actor=actor)
    return att


def remove_attachment(att: LessonAttachment, actor) -> None:
    lesson = att.lesson
    _require_draft(lesson.version)
    audit.record("training.attachment_removed", att, {"lesson_id": lesson.id, "file_id": att.file_id},
                 actor=actor)
    lesson.attachments.remove(att)
    db.session.flush()


# ---------------------------------------------------------------- question bank

def validate_question(kind: str, category: str, prompt: str, options: list[str], correct: list,
                      exact: bool = False) -> tuple[str, str, list, list]:
    """Returns cleaned (category, prompt, options, correct) or raises TrainingError."""
    if kind not in QUESTION_KINDS:
        raise TrainingError("bad_kind", "kind")
    category, prompt = _clean(category), (prompt or "").strip()
    if len(category) > 60:
        raise TrainingError("too_long", "category")
    if not prompt:
        raise TrainingError("prompt_required", "prompt")
    opts = [o.strip() for o in options if o and o.strip()]
    if kind in ("single", "multiple"):
        if len(opts) < 2:
            raise TrainingError("two_options", "options")
        if len(opts) > 10:
            raise TrainingError("too_many_options", "options")
        if len(set(opts)) != len(opts):
            raise TrainingError("duplicate_options", "options")
        try:
            idx = sorted({int(c) for c in correct})
        except (TypeError, ValueError):
            raise TrainingError("bad_correct", "correct")
        if not idx or any(i < 0 or i >= len(opts) for i in idx):
            raise TrainingError("bad_correct", "correct")
        if kind == "single" and len(idx) != 1:
            raise TrainingError("single_one_answer", "correct")
        return category, prompt, opts, idx
    if kind == "truefalse":
        if len(correct) != 1 or not isinstance(correct[0], bool):
            raise TrainingError("bad_correct", "correct")
        return category, prompt, [], [bool(correct[0])]
    # fill-in: options are the accepted answers
    if not opts:
        raise TrainingError("fill_answer_required", "options")
    return category, prompt, opts, []


def save_question(course: Course, actor, kind: str, category: str, prompt: str, options: list[str],
                  correct: list, exact: bool = False, explanation: str = "",
                  question: Question | None = None) -> Question:
    category, prompt, options, correct = validate_question(kind, category, prompt, options, correct, exact)
    if question is None:
        question = Question(course_id=course.id)
        db.session.add(question)
        action = "training.question_created"
    else:
        action = "training.question_updated"
    question.kind, question.category, question.prompt = kind, category, prompt
    question.options, question.correct = options, correct
    question.exact, question.explanation = bool(exact) if kind == "fill" else False, (explanation or "").strip()
    db.session.flush()
    audit.record(action, question, {"course_id": course.id, "kind": kind, "category": category,
                                    "content_hash": signatures.content_hash(
                                        [prompt, options, correct, question.exact])}, actor=actor)
    return question


def set_question_active(question: Question, actor, active: bool) -> None:
    if question.active != active:
        question.active = active
        audit.record("training.question_" + ("restored" if active else "retired"), question, {}, actor=actor)


# ---------------------------------------------------------------- XLSX question import

IMPORT_HEADERS = {
    "category": ("category", "分类", "类别"),
    "kind": ("type", "kind", "题型"),
    "prompt": ("question", "prompt", "题目", "题干"),
    "answer": ("answer", "答案", "正确答案"),
    "exact": ("exact", "精确匹配"),
    "explanation": ("explanation", "解析", "说明"),
}
KIND_ALIASES = {"single": "single", "单选": "single", "单选题": "single",
                "multiple": "multiple", "多选": "multiple", "多选题": "multiple",
                "truefalse": "truefalse", "true/false": "truefalse", "判断": "truefalse", "判断题": "truefalse",
                "fill": "fill", "填空": "fill", "填空题": "fill"}
TRUE_WORDS = {"true", "t", "yes", "y", "对", "是", "正确", "√", "1"}
FALSE_WORDS = {"false", "f", "no", "n", "错", "否", "错误", "×", "0"}
LETTERS = "ABCDEFGHIJ"
MAX_IMPORT_ROWS = 2000


def interpret_answer(kind: str, options: list[str], answer: str) -> tuple[list[str], list]:
    """The answer as a trainer types it (form or XLSX): letters "A" / "A,C" for choices, 对/错 or
    true/false, accepted fill-in answers separated by "|". Returns (options, correct)."""
    answer = (answer or "").strip()
    options = [o.strip() if isinstance(o, str) else "" for o in options]
    while options and not options[-1]:
        options.pop()
    if kind in ("single", "multiple"):
        if any(not o for o in options):
            raise TrainingError("gap_in_options", "options")
        letters = [a.strip().upper() for a in re.split(r"[,，、;；\s]+", answer) if a.strip()]
        if len(letters) == 1 and len(letters[0]) > 1:
            letters = list(letters[0])
        if not letters or any(l not in LETTERS or LETTERS.index(l) >= len(options) for l in letters):
            raise TrainingError("bad_answer", "answer")
        return options, [LETTERS.index(l) for l in letters]
    if kind == "truefalse":
        word = answer.lower()
        if word in TRUE_WORDS:
            return [], [True]
        if word in FALSE_WORDS:
            return [], [False]
        raise TrainingError("bad_answer", "answer")
    if kind == "fill":
        return [a.strip() for a in answer.split("|") if a.strip()], []
    raise TrainingError("bad_kind", "kind")


def import_template() -> bytes:
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.title = "questions"
    ws.append(["分类", "题型", "题目", "选项A", "选项B", "选项C", "选项D", "答案", "精确匹配", "解析"])
    ws.append(["制度", "单选", "迟到超过多少分钟算旷工半天？", "15", "30", "60", "120", "C", "", ""])
    ws.append(["制度", "多选", "哪些属于保密信息？", "客户名单", "报价", "公开年报", "", "A,B", "", ""])
    ws.append(["安全", "判断", "离开工位时应锁屏。", "", "", "", "", "对", "", ""])
    ws.append(["安全", "填空", "公司信息安全热线分机号是____。", "", "", "", "", "8110", "否", ""])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def parse_question_rows(data: bytes) -> tuple[list[dict], list[tuple[int, str, dict]]]:
    """Rows -> question dicts; problems as (row number, error code, params). Nothing is written here."""
    from openpyxl import load_workbook
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged file
        raise TrainingError("bad_xlsx", "file")
    ws = wb.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    try:
        header = [_cell(h).lower() for h in next(rows)]
    except StopIteration:
        raise TrainingError("empty_xlsx", "file")
    cols: dict[str, int] = {}
    option_cols: list[int] = []
    for i, h in enumerate(header):
        for key, names in IMPORT_HEADERS.items():
            if h in names and key not in cols:
                cols[key] = i
        if h.startswith("option") or h.startswith("选项"):
            option_cols.append(i)
    missing = [k for k in ("kind", "prompt", "answer") if k not in cols]
    if missing:
        raise TrainingError("missing_columns", "file", cols=", ".join(missing))
    out: list[dict] = []
    problems: list[tuple[int, str, dict]] = []
    for n, row in enumerate(rows, start=2):
        if n - 1 > MAX_IMPORT_ROWS:
            raise TrainingError("too_many_rows", "file", n=MAX_IMPORT_ROWS)
        row = list(row) + [None] * (len(header) - len(row))
        if not any(_cell(v) for v in row):
            continue
        get = lambda key: _cell(row[cols[key]]) if key in cols else ""  # noqa: E731
        kind = KIND_ALIASES.get(get("kind").lower())
        if kind is None:
            problems.append((n, "bad_kind", {}))
            continue
        options = [_cell(row[i]) for i in option_cols]
        try:
            options, correct = interpret_answer(kind, options, get("answer"))
        except TrainingError as exc:
            problems.append((n, exc.code, exc.params))
            continue
        exact_raw = get("exact").lower()
        exact = exact_raw in TRUE_WORDS
        try:
            category, prompt, options, correct = validate_question(kind, get("category"), get("prompt"), options,
                                                                   correct, exact)
        except TrainingError as exc:
            problems.append((n, exc.code, exc.params))
            continue
        out.append(dict(kind=kind, category=category, prompt=prompt, options=options, correct=correct,
                        exact=exact, explanation=get("explanation")))
    if not out and not problems:
        raise TrainingError("empty_xlsx", "file")
    return out, problems


def import_questions(course: Course, actor, file_storage, max_bytes: int = 5 * 1024 * 1024
                     ) -> tuple[int, list[tuple[int, str, dict]]]:
    """All or nothing: with any problem row nothing is imported and the problems are returned."""
    checked = uploads.check_upload(file_storage, {"xlsx"}, max_bytes)
    questions, problems = parse_question_rows(checked.data)
    if problems:
        return 0, problems
    for q in questions:
        db.session.add(Question(course_id=course.id, **q))
    db.session.flush()
    audit.record("training.questions_imported", course, {"file": checked.name, "count": len(questions)},
                 actor=actor)
    return len(questions), []


def categories(course_id: int) -> list[str]:
    return list(db.session.scalars(select(Question.category).where(Question.course_id == course_id)
                                   .distinct().order_by(Question.category)))


def courses_for_studio() -> list[tuple[Course, Optional[CourseVersion], Optional[CourseVersion]]]:
    """(course, published version, draft version) in two queries."""
    courses = list(db.session.scalars(select(Course).where(Course.archived.is_(False))
                                      .order_by(Course.title, Course.id)))
    drafts = {v.course_id: v for v in db.session.scalars(
        select(CourseVersion).where(CourseVersion.status.in_(("draft", "published")),
                                    CourseVersion.course_id.in_([c.id for c in courses])))
        if v.status == "draft"}
    current = {v.id: v for v in db.session.scalars(select(CourseVersion).where(
        CourseVersion.id.in_([c.current_version_id for c in courses if c.current_version_id])))}
    return [(c, current.get(c.current_version_id), drafts.get(c.id)) for c in courses]


def lessons_with_files(version_ids: Iterable[int]) -> None:
    """Preload lessons and attachments of versions (keeps page query counts flat)."""
    from sqlalchemy.orm import selectinload
    list(db.session.scalars(select(Lesson).where(Lesson.version_id.in_(list(version_ids)))
                            .options(selectinload(Lesson.attachments))))

"""Exams: random draw per category, shuffled options, answers saved as the learner goes, the server-side
deadline (DOMAIN.md "Exam deadline": answers saved after the time limit + 30 s grace are refused with 409
and the attempt is graded on what was saved in time), attempt limits, cooling-off, grading.
"""
from __future__ import annotations

import datetime as dt
import random
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import func, select

from portal.core import audit
from portal.core.db import db, utcnow
from portal.training.models import GRACE_SECONDS, Attempt, AttemptItem, CourseVersion, Enrollment, Question
from portal.training.services import TrainingError

GRACE = dt.timedelta(seconds=GRACE_SECONDS)
_sysrand = random.SystemRandom()


class TooLate(TrainingError):
    """The answer arrived after the deadline + grace (HTTP 409)."""

    def __init__(self, attempt: Attempt):
        super().__init__("too_late")
        self.attempt = attempt


# ---------------------------------------------------------------- draw

def draw(version: CourseVersion, rng: random.Random | None = None) -> list[Question]:
    """N distinct active questions per category (version rules), in random order."""
    rng = rng or _sysrand
    chosen: list[Question] = []
    for rule in version.rules:
        if rule.count <= 0:
            continue
        pool = list(db.session.scalars(select(Question).where(
            Question.course_id == version.course_id, Question.category == rule.category,
            Question.active.is_(True)).order_by(Question.id)))
        if len(pool) < rule.count:
            raise TrainingError("bank_too_small", cats=f"{rule.category or '—'} ({len(pool)}/{rule.count})")
        chosen.extend(rng.sample(pool, rule.count))  # sample: never the same question twice
    rng.shuffle(chosen)
    return chosen


def _freeze(q: Question, position: int, rng: random.Random) -> AttemptItem:
    item = AttemptItem(question_id=q.id, position=position, category=q.category, kind=q.kind, prompt=q.prompt,
                       explanation=q.explanation, exact=q.exact)
    if q.kind in ("single", "multiple"):
        order = list(range(len(q.options)))
        rng.shuffle(order)
        item.options = [q.options[i] for i in order]
        item.option_map = order
        item.correct = sorted(order.index(i) for i in q.correct)
    elif q.kind == "truefalse":
        item.options, item.option_map = ["true", "false"], [0, 1]
        item.correct = [0 if q.correct and q.correct[0] else 1]
    else:
        item.options, item.option_map, item.correct = [], [], list(q.options)
    return item


# ---------------------------------------------------------------- state and limits

@dataclass
class ExamState:
    attempts: list[Attempt]
    open: Optional[Attempt]
    can_start: bool
    reason: str = ""  # passed | no_attempts_left | cooling_off | no_exam | lessons_first
    next_at: Optional[dt.datetime] = None

    @property
    def used(self) -> int:
        return len([a for a in self.attempts if a.finished])


def attempts_of(enrollment: Enrollment) -> list[Attempt]:
    return list(db.session.scalars(select(Attempt).where(Attempt.enrollment_id == enrollment.id)
                                   .order_by(Attempt.number)))


def hard_deadline(attempt: Attempt) -> Optional[dt.datetime]:
    return attempt.deadline_at + GRACE if attempt.deadline_at else None


def is_late(attempt: Attempt, now: dt.datetime) -> bool:
    limit = hard_deadline(attempt)
    return limit is not None and now > limit


def exam_state(enrollment: Enrollment, version: CourseVersion, now: dt.datetime | None = None,
               lessons_done: bool = True) -> ExamState:
    now = now or utcnow()
    attempts = attempts_of(enrollment)
    for a in attempts:  # an attempt left open past its deadline is graded on what was saved in time
        if not a.finished and is_late(a, now):
            finalise(a, "timeout", now)
    open_ = next((a for a in attempts if not a.finished), None)
    finished = [a for a in attempts if a.finished and a.version_id == version.id]
    if not version.has_exam:
        return ExamState(attempts, open_, False, "no_exam")
    if open_ is not None:
        return ExamState(attempts, open_, False, "")
    if any(a.passed for a in finished):
        return ExamState(attempts, None, False, "passed")
    if not lessons_done:
        return ExamState(attempts, None, False, "lessons_first")
    if version.max_attempts and len(finished) >= version.max_attempts:
        return ExamState(attempts, None, False, "no_attempts_left")
    if finished and version.cooloff_seconds:
        next_at = max(a.submitted_at for a in finished) + dt.timedelta(seconds=version.cooloff_seconds)
        if now < next_at:
            return ExamState(attempts, None, False, "cooling_off", next_at)
    return ExamState(attempts, None, True)


def start_attempt(enrollment: Enrollment, user, now: dt.datetime | None = None,
                  rng: random.Random | None = None, lessons_done: bool = True) -> Attempt:
    """Start (or resume) an attempt: checks limits and cooling-off, draws and freezes the questions."""
    now = now or utcnow()
    version = db.session.get(CourseVersion, enrollment.version_id)
    state = exam_state(enrollment, version, now, lessons_done)
    if state.open is not None:
        return state.open
    if not state.can_start:
        raise TrainingError(state.reason or "cannot_start", next_at=state.next_at)
    rng = rng or _sysrand
    questions = draw(version, rng)
    number = (db.session.scalar(select(func.max(Attempt.number)).where(
        Attempt.enrollment_id == enrollment.id)) or 0) + 1
    attempt = Attempt(enrollment_id=enrollment.id, version_id=version.id, user_id=user.id, number=number,
                      started_at=now, total=len(questions),
                      deadline_at=now + dt.timedelta(seconds=version.time_limit_seconds)
                      if version.time_limit_seconds else None)
    attempt.items = [_freeze(q, i, rng) for i, q in enumerate(questions, 1)]
    db.session.add(attempt)
    if enrollment.status == "assigned":
        enrollment.status, enrollment.started_at = "in_progress", now
    db.session.flush()
    audit.record("training.attempt_started", attempt, {
        "enrollment_id": enrollment.id, "version_id": version.id, "number": number,
        "questions": [i.question_id for i in attempt.items],
        "deadline_at": attempt.deadline_at.isoformat() if attempt.deadline_at else None}, actor=user)
    return attempt


# ---------------------------------------------------------------- answers

def parse_answer(item: AttemptItem, values: list[str]) -> Any:
    """Form values -> stored answer (shown indices, or text for fill-in). Raises bad_answer."""
    values = [v for v in values if v is not None]
    if item.kind == "fill":
        text = (values[0] if values else "").strip()
        if len(text) > 500:
            raise TrainingError("bad_answer")
        return text or None
    try:
        idx = sorted({int(v) for v in values if str(v).strip() != ""})
    except ValueError:
        raise TrainingError("bad_answer")
    if any(i < 0 or i >= len(item.options) for i in idx):
        raise TrainingError("bad_answer")
    if item.kind in ("single", "truefalse") and len(idx) > 1:
        raise TrainingError("bad_answer")
    return idx or None


def _lock(attempt: Attempt) -> Attempt:
    """Re-read the attempt under a row lock (PostgreSQL), so a save and the timeout job cannot interleave."""
    return db.session.scalar(select(Attempt).where(Attempt.id == attempt.id).with_for_update()
                             .execution_options(populate_existing=True))


def save_answer(attempt: Attempt, item: AttemptItem, values: list[str], now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    attempt = _lock(attempt)
    if attempt.finished:
        raise TrainingError("attempt_closed")
    if is_late(attempt, now):
        finalise(attempt, "timeout", now)
        raise TooLate(attempt)
    if item.attempt_id != attempt.id:
        raise TrainingError("bad_answer")
    item.answer = parse_answer(item, values)
    item.answered_at = now


def submit(attempt: Attempt, answers: dict[int, list[str]] | None, user, now: dt.datetime | None = None) -> bool:
    """Finish the attempt. Answers sent with the submit (no-JavaScript form) are saved only while the
    deadline + grace has not passed. Returns False when the submit came too late (graded on the answers
    saved in time)."""
    now = now or utcnow()
    attempt = _lock(attempt)
    if attempt.finished:
        raise TrainingError("attempt_closed")
    late = is_late(attempt, now)
    if not late and answers:
        by_id = {i.id: i for i in attempt.items}
        parsed = {iid: parse_answer(by_id[iid], vals) for iid, vals in answers.items() if iid in by_id}
        for iid, value in parsed.items():
            if value is not None:
                by_id[iid].answer, by_id[iid].answered_at = value, now
    finalise(attempt, "late" if late else "submit", now, actor=user)
    return not late


# ---------------------------------------------------------------- grading

def normalise(text: str) -> str:
    """Fill-in comparison: NFKC (full-width -> half-width), case-folded, spaces collapsed, trailing
    punctuation dropped."""
    t = unicodedata.normalize("NFKC", text or "").casefold()
    t = re.sub(r"\s+", " ", t).strip()
    return t.rstrip("。．.!！?？;；,，").strip()


def grade_item(item: AttemptItem) -> bool:
    answer = item.answer
    if answer is None or answer == [] or answer == "":
        return False
    if item.kind == "fill":
        if not isinstance(answer, str):
            return False
        if item.exact:
            return answer.strip() in [c.strip() for c in item.correct]
        return normalise(answer) in {normalise(c) for c in item.correct}
    if not isinstance(answer, list):
        return False
    return sorted(int(a) for a in answer) == sorted(int(c) for c in item.correct)


def finalise(attempt: Attempt, closed_by: str, now: dt.datetime, actor=None) -> Attempt:
    """Grade on the answers saved so far; closes the attempt; updates the enrollment; may complete it."""
    from portal.training import learning
    if attempt.finished:
        return attempt
    version = db.session.get(CourseVersion, attempt.version_id)
    correct = 0
    for item in attempt.items:
        # an answer saved after the hard deadline never counts (defence in depth)
        limit = hard_deadline(attempt)
        if limit is not None and item.answered_at is not None and item.answered_at > limit:
            item.answer = None
        item.is_correct = grade_item(item)
        correct += 1 if item.is_correct else 0
    attempt.correct, attempt.total = correct, len(attempt.items)
    attempt.score = round(100 * correct / attempt.total) if attempt.total else 0
    attempt.passed = attempt.score >= version.pass_mark
    attempt.submitted_at = (min(now, hard_deadline(attempt)) if closed_by == "timeout" and attempt.deadline_at
                            else now)
    attempt.closed_by = closed_by
    enrollment = db.session.get(Enrollment, attempt.enrollment_id)
    if enrollment.version_id == attempt.version_id:
        if enrollment.best_score is None or attempt.score > enrollment.best_score:
            enrollment.best_score = attempt.score
        enrollment.passed = enrollment.passed or attempt.passed
    db.session.flush()
    audit.record("training.attempt_graded", attempt, {
        "enrollment_id": attempt.enrollment_id, "closed_by": closed_by, "score": attempt.score,
        "correct": correct, "total": attempt.total, "passed": attempt.passed}, actor=actor)
    learning.maybe_complete(enrollment, now)
    return attempt


def close_expired(now: dt.datetime | None = None) -> int:
    """Periodic job: grade attempts whose deadline + grace has passed (on the answers saved in time)."""
    now = now or utcnow()
    ids = list(db.session.scalars(select(Attempt.id).where(Attempt.submitted_at.is_(None),
                                                           Attempt.deadline_at.is_not(None),
                                                           Attempt.deadline_at < now - GRACE)))
    n = 0
    for aid in ids:
        attempt = _lock(db.session.get(Attempt, aid))
        if attempt is not None and not attempt.finished:
            finalise(attempt, "timeout", now)
            n += 1
        db.session.commit()
    return n


def shows_answers(attempt: Attempt, version: CourseVersion, state: ExamState | None) -> bool:
    if not attempt.finished or version.show_answers == "never":
        return False
    if version.show_answers == "after_submit":
        return True
    # when_done: after passing, or when no attempt is left
    return attempt.passed or (state is not None and state.reason in ("passed", "no_attempts_left"))


def seconds_left(attempt: Attempt, now: dt.datetime | None = None) -> Optional[int]:
    if attempt.deadline_at is None:
        return None
    return max(0, int((attempt.deadline_at - (now or utcnow())).total_seconds()))

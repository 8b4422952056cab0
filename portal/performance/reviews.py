"""Performance reviews: templates (weighted criteria + a safe formula), self-assessment, manager score,
HR calibration, the result flow (manager submits -> employee confirms with an electronic signature or
appeals -> manager/HR respond -> HR approves), revisions after signing, rating -> coefficient.

Every step writes an audit event in the caller's transaction; every state change is a conditional
UPDATE on (id, status), so of two concurrent actions one wins and the other gets ``Conflict`` (409).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal, ROUND_HALF_UP
from typing import Any, Optional

from simpleeval import SimpleEval
from sqlalchemy import select, update

from portal.core import audit, notify, reminders, signatures
from portal.core.audit import canonical_json
from portal.core.db import db, utcnow
from portal.core.models import User
from portal.core.security import N_, can
from portal.org.models import Employee
from portal.performance import access
from portal.performance.models import (Appeal, Cycle, RatingBand, Review, ReviewCriterion,
                                       ReviewRevision, ReviewScore, ReviewTemplate)
from portal.performance.services import Conflict, PerfError, _manager_user, _users_with_permission, dec
from portal.performance.services import employee_completion

notify.register_template("perf.respond", notify.Template(
    N_("Reminder: sign or appeal your performance result for %(cycle)s (revision %(revision)s)"),
    N_("Your performance result for %(cycle)s (revision %(revision)s) is waiting for you. Confirm it with "
       "your signature or appeal before %(due)s; after that HR may approve it without your signature."),
    channels=("inapp", "email", "sms")))
notify.register_template("perf.result_ready", notify.Template(
    N_("Your performance result for %(cycle)s"),
    N_("Your performance result for %(cycle)s is ready: %(score)s, rating %(rating)s. Open the portal to "
       "confirm it with your signature or to appeal."), channels=("inapp", "email")))
notify.register_template("perf.self_assessed", notify.Template(
    N_("Self-assessment to score: %(name)s"),
    N_("%(name)s submitted the self-assessment for %(cycle)s. Please score it in the portal."),
    channels=("inapp",)))
notify.register_template("perf.appealed", notify.Template(
    N_("Appeal against a performance result: %(name)s"),
    N_("%(name)s appealed the performance result for %(cycle)s: %(reason)s"), channels=("inapp", "email")))
notify.register_template("perf.appeal_answered", notify.Template(
    N_("Your appeal for %(cycle)s was answered"),
    N_("Your appeal for %(cycle)s was answered: %(response)s"), channels=("inapp", "email")))
notify.register_template("perf.confirmed", notify.Template(
    N_("Performance result confirmed: %(name)s"),
    N_("%(name)s confirmed the performance result for %(cycle)s with an electronic signature. It waits for "
       "HR approval."), channels=("inapp",)))
notify.register_template("perf.approved", notify.Template(
    N_("Performance result approved: %(cycle)s"),
    N_("HR approved your performance result for %(cycle)s: rating %(rating)s."), channels=("inapp", "email")))

DEFAULT_BANDS = (("A+", "95", "1.5"), ("A", "85", "1.2"), ("B", "70", "1.0"), ("C", "60", "0.8"),
                 ("D", "0", "0.5"))
Q2 = Decimal("0.01")
FORMULA_NAMES = ("okr", "manager", "self")
# a criterion's code names its score (0-100) in the formula, e.g. 0.5 * quality + 0.5 * okr
CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_CODES = set(FORMULA_NAMES) | {"min", "max", "round", "true", "false", "none", "and", "or", "not",
                                       "if", "else", "in", "is", "lambda"}


def q2(value) -> Decimal:
    return Decimal(str(value)).quantize(Q2, rounding=ROUND_HALF_UP)


def _s(value, places: int = 2) -> Optional[str]:
    return None if value is None else f"{Decimal(value):.{places}f}"


# ---------------------------------------------------------------- ratings and coefficients

def bands() -> list[RatingBand]:
    rows = list(db.session.scalars(select(RatingBand).order_by(RatingBand.min_score.desc())))
    if rows:
        return rows
    for rating, lo, coef in DEFAULT_BANDS:
        db.session.add(RatingBand(rating=rating, min_score=Decimal(lo), coefficient=Decimal(coef)))
    db.session.flush()
    return list(db.session.scalars(select(RatingBand).order_by(RatingBand.min_score.desc())))


def save_bands(actor: User, rows: list[tuple[str, Any, Any]]) -> None:
    """Replace the rating table: (rating, minimum score, coefficient) per row."""
    clean = []
    seen = set()
    for rating, lo, coef in rows:
        rating = (rating or "").strip()
        if not rating:
            continue
        if rating in seen or len(rating) > 10:
            raise PerfError("bad_band", "bands", rating=rating)
        seen.add(rating)
        clean.append((rating, dec(lo, "bands", minimum=Decimal(0)), dec(coef, "bands", minimum=Decimal(0))))
    if not clean:
        raise PerfError("no_bands", "bands")
    if not any(lo == 0 for _r, lo, _c in clean):
        raise PerfError("bands_need_zero", "bands")
    before = [(b.rating, str(b.min_score), str(b.coefficient)) for b in bands()]
    db.session.execute(RatingBand.__table__.delete())
    for rating, lo, coef in clean:
        db.session.add(RatingBand(rating=rating, min_score=lo, coefficient=coef))
    db.session.flush()
    audit.record("perf.bands_saved", ("perf_rating_bands", "all"),
                 {"before": before, "after": [(r, str(lo), str(c)) for r, lo, c in clean]}, actor=actor)


def rating_for(score: Decimal) -> tuple[str, Decimal]:
    for b in bands():  # highest minimum first
        if score >= b.min_score:
            return b.rating, b.coefficient
    last = bands()[-1]
    return last.rating, last.coefficient


def coefficient_for(employee_id: int, cycle_id: int) -> Optional[Decimal]:
    """For payroll: the approved result's performance coefficient, or None."""
    return db.session.scalar(select(Review.coefficient).where(
        Review.employee_id == employee_id, Review.cycle_id == cycle_id, Review.status == "approved"))


# ---------------------------------------------------------------- templates and formulas

def evaluate(formula: str, names: dict[str, Any]) -> Decimal:
    """Evaluate a score formula safely (simpleeval, never eval): + - * / ( ), numbers, min/max/round and
    the names okr, manager, self and the template's criterion codes."""
    evaluator = SimpleEval(names={k: float(v) for k, v in names.items()},
                           functions={"min": min, "max": max, "round": round})
    try:
        value = evaluator.eval(formula)
    except Exception:
        raise PerfError("bad_formula", "formula")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
            or abs(value) > 10000:
        raise PerfError("bad_formula", "formula")
    return q2(value)


def create_template(actor: User, name: str, formula: str, criteria: list[tuple]) -> ReviewTemplate:
    """``criteria``: (name, weight) or (name, weight, code) per criterion. A code (lower-case letters,
    digits, _) makes the criterion's score usable in the formula; without one it is c1, c2, ..."""
    name = (name or "").strip()
    if not name:
        raise PerfError("required", "name")
    if db.session.scalar(select(ReviewTemplate.id).where(ReviewTemplate.name == name)):
        raise PerfError("template_exists", "name")
    formula = (formula or "").strip() or "manager"
    if len(formula) > 300:
        raise PerfError("bad_formula", "formula")
    rows = []
    for row in criteria:
        n, w, code = (tuple(row) + ("",))[:3]
        if not (n or "").strip():
            continue
        rows.append([(n or "").strip(), dec(w, "criteria", minimum=Decimal(0)), (code or "").strip()])
    if not rows:
        raise PerfError("no_criteria", "criteria")
    if sum(w for _n, w, _c in rows) <= 0:
        raise PerfError("criteria_weights", "criteria")
    seen: set[str] = set()
    for i, row in enumerate(rows):
        code = row[2] or f"c{i + 1}"
        if not CODE_RE.match(code) or code in RESERVED_CODES:
            raise PerfError("bad_code", "criteria", name=code)
        if code in seen:
            raise PerfError("code_duplicate", "criteria", name=code)
        seen.add(code)
        row[2] = code
    evaluate(formula, {"okr": 80, "manager": 70, "self": 60, **{c: 75 for _n, _w, c in rows}})
    t = ReviewTemplate(name=name[:120], formula=formula)
    for i, (n, w, code) in enumerate(rows):
        t.criteria.append(ReviewCriterion(name=n[:120], weight=w, code=code, position=i))
    db.session.add(t)
    db.session.flush()
    audit.record("perf.template_created", t, {"name": t.name, "formula": formula,
                                              "criteria": [(n, str(w), c) for n, w, c in rows]}, actor=actor)
    return t


# ---------------------------------------------------------------- launching

def launch(actor: User, cycle: Cycle, template: ReviewTemplate, employee_ids: list[int] | None = None) -> int:
    """One review per active employee of the cycle (or of ``employee_ids``) that has none yet."""
    stmt = select(Employee.id).where(Employee.status != "left")
    if employee_ids is not None:
        stmt = stmt.where(Employee.id.in_(employee_ids))
    ids = set(db.session.scalars(stmt))
    have = set(db.session.scalars(select(Review.employee_id).where(Review.cycle_id == cycle.id)))
    new = sorted(ids - have)
    for eid in new:
        db.session.add(Review(cycle_id=cycle.id, employee_id=eid, template_id=template.id, status="self"))
    db.session.flush()
    audit.record("perf.reviews_launched", cycle, {"template_id": template.id, "employees": new}, actor=actor)
    return len(new)


# ---------------------------------------------------------------- the result and its signature

def result_content(review: Review) -> dict:
    """What the employee sees and signs; rebuilt from the current rows for tamper detection."""
    emp = review.employee
    scores = {s.criterion_id: s for s in review.scores}
    return {
        "review_id": review.id, "revision": review.revision, "cycle": review.cycle.name,
        "employee_id": emp.id, "emp_no": emp.emp_no, "employee": emp.name,
        "template": review.template.name, "formula": review.template.formula,
        "criteria": [{"name": c.name, "code": c.code, "weight": _s(c.weight, 4),
                      "score": _s(scores[c.id].score) if c.id in scores else None,
                      "comment": scores[c.id].comment if c.id in scores else ""}
                     for c in review.template.criteria],
        "self_score": _s(review.self_score), "self_comment": review.self_comment,
        "manager_score": _s(review.manager_score), "manager_comment": review.manager_comment,
        "okr_completion": _s(review.okr_completion), "computed_score": _s(review.computed_score),
        "final_score": _s(review.final_score), "calibration_note": review.calibration_note,
        "rating": review.rating, "coefficient": _s(review.coefficient, 3),
    }


def _issue_revision(review: Review, actor: User, reason: str) -> ReviewRevision:
    review.revision += 1
    db.session.flush()
    text = canonical_json(result_content(review))
    rev = ReviewRevision(review_id=review.id, number=review.revision, reason=reason, content=text,
                         content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                         created_by_id=actor.id)
    db.session.add(rev)
    db.session.flush()
    return rev


def _transition(review: Review, expected: tuple[str, ...], new: str) -> None:
    res = db.session.execute(update(Review).where(Review.id == review.id, Review.status.in_(expected),
                                                  Review.version == review.version)
                             .values(status=new, version=Review.version + 1, updated_at=utcnow())
                             .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise Conflict("conflict")
    db.session.refresh(review)


def _employee_user(review: Review) -> Optional[User]:
    return db.session.scalar(select(User).where(User.employee_id == review.employee_id, User.active.is_(True)))


def _ctx(review: Review, **extra) -> dict:
    return {"cycle": review.cycle.name, "name": review.employee.name, **extra}


def _link(review: Review) -> str:
    return f"/performance/reviews/{review.id}"


def _score(value: Any, field: str) -> Decimal:
    d = dec(value, field, minimum=Decimal(0))
    if d > 100:
        raise PerfError("score_range", field)
    return q2(d)


def submit_self(actor: User, review: Review, score: Any, comment: str) -> None:
    if review.employee_id != actor.employee_id:
        raise PerfError("forbidden")
    s = _score(score, "self_score")
    _transition(review, ("self",), "manager")
    review.self_score, review.self_comment = s, (comment or "").strip()
    audit.record("perf.self_assessed", review, {"self_score": str(s)}, actor=actor)
    mgr = _manager_user(review.employee)
    if mgr is not None:
        notify.send(mgr, "perf.self_assessed", _ctx(review), link=_link(review),
                    related=("perf_reviews", review.id))


def submit_score(actor: User, review: Review, scores: dict[int, tuple[Any, str]], comment: str) -> None:
    """The manager scores every criterion; the formula gives the result the employee then sees."""
    if not can(actor, "perf.review_score", review):
        raise PerfError("forbidden")
    crits = review.template.criteria
    parsed: dict[int, tuple[Decimal, str]] = {}
    for c in crits:
        raw, note = scores.get(c.id, ("", ""))
        if raw in (None, ""):
            raise PerfError("score_missing", f"score_{c.id}", name=c.name)
        parsed[c.id] = (_score(raw, f"score_{c.id}"), (note or "").strip())
    total_w = sum(c.weight for c in crits)
    manager = q2(sum(c.weight * parsed[c.id][0] for c in crits) / total_w)
    okr = employee_completion(review.employee_id, review.cycle_id)
    computed = evaluate(review.template.formula, {"okr": okr or 0, "manager": manager,
                                                  "self": review.self_score or 0,
                                                  **{c.code: parsed[c.id][0] for c in crits}})
    _transition(review, ("self", "manager"), "employee")
    have = {s.criterion_id: s for s in review.scores}
    for c in crits:
        s, note = parsed[c.id]
        if c.id in have:
            have[c.id].score, have[c.id].comment = s, note
        else:
            review.scores.append(ReviewScore(criterion_id=c.id, criterion=c, score=s, comment=note))
    review.manager_score, review.manager_comment = manager, (comment or "").strip()
    review.okr_completion, review.computed_score, review.final_score = okr, computed, computed
    review.rating, review.coefficient = rating_for(computed)
    review.scored_by_id = actor.id
    rev = _issue_revision(review, actor, "manager score")
    _start_response_window(review)
    audit.record("perf.manager_scored", review, {"manager_score": str(manager), "okr": _s(okr),
                                                 "final_score": str(computed), "rating": review.rating,
                                                 "revision": rev.number, "content_hash": rev.content_hash,
                                                 "response_due_at": review.response_due_at},
                 actor=actor)
    _notify_employee(review, "perf.result_ready", score=str(computed), rating=review.rating)


def _start_response_window(review: Review, now: dt.datetime | None = None) -> None:
    """The result was issued (again): the employee has ``cycle.response_days`` days to sign or appeal,
    with a reminder before that deadline; after it HR may approve without the signature."""
    days = review.cycle.response_days or 7
    due = (now or utcnow()) + dt.timedelta(days=days)
    review.response_due_at = due
    reminders.complete(("perf_reviews", review.id))
    user = _employee_user(review)
    if user is not None:
        before = dt.timedelta(days=2) if days >= 3 else dt.timedelta(hours=12)
        reminders.before_deadline([user.id], ("perf_reviews", review.id), f"perf.respond.{review.revision}", due,
                                  before=[before], overdue_every=None, link=_link(review),
                                  template_key="perf.respond",
                                  context={"cycle": review.cycle.name, "revision": review.revision})


def _notify_employee(review: Review, key: str, **ctx) -> None:
    user = _employee_user(review)
    if user is not None:
        notify.send(user, key, _ctx(review, **ctx), link=_link(review), related=("perf_reviews", review.id),
                    dedupe_key=f"{key}:{review.id}:{review.revision}:{review.version}")


def confirm(actor: User, review: Review, password: str) -> signatures.Signature:
    """The employee confirms the current revision with an electronic signature (re-authentication).
    On SignatureError the failed attempt is in the transaction: the caller commits it."""
    if review.employee_id != actor.employee_id:
        raise PerfError("forbidden")
    if review.status != "employee":
        raise Conflict("conflict")
    content = result_content(review)
    sig = signatures.sign(actor, password, "performance.confirm", ("perf_reviews", review.id), content)
    _transition(review, ("employee",), "confirmed")
    review.signature_id, review.confirmed_at = sig.id, sig.signed_at
    reminders.complete(("perf_reviews", review.id))
    rev = db.session.scalar(select(ReviewRevision).where(ReviewRevision.review_id == review.id,
                                                         ReviewRevision.number == review.revision))
    rev.signature_id = sig.id
    audit.record("perf.result_confirmed", review, {"revision": review.revision, "signature_id": sig.id,
                                                   "content_hash": sig.content_hash}, actor=actor)
    for u in _users_with_permission("perf.manage"):
        notify.send(u, "perf.confirmed", _ctx(review), link=_link(review), related=("perf_reviews", review.id),
                    dedupe_key=f"perf.confirmed:{review.id}:{review.revision}:{u.id}")
    return sig


def appeal(actor: User, review: Review, reason: str) -> Appeal:
    if review.employee_id != actor.employee_id:
        raise PerfError("forbidden")
    reason = (reason or "").strip()
    if not reason:
        raise PerfError("required", "reason")
    _transition(review, ("employee",), "appealed")
    reminders.complete(("perf_reviews", review.id))
    a = Appeal(review_id=review.id, revision=review.revision, reason=reason[:4000], created_by_id=actor.id)
    db.session.add(a)
    db.session.flush()
    audit.record("perf.appealed", review, {"appeal_id": a.id, "revision": review.revision, "reason": a.reason},
                 actor=actor)
    recipients = {u.id: u for u in _users_with_permission("perf.manage")}
    mgr = _manager_user(review.employee)
    if mgr is not None:
        recipients[mgr.id] = mgr
    for u in recipients.values():
        notify.send(u, "perf.appealed", _ctx(review, reason=a.reason), link=_link(review),
                    related=("perf_reviews", review.id), dedupe_key=f"perf.appealed:{a.id}:{u.id}")
    return a


def open_appeal(review: Review) -> Optional[Appeal]:
    return db.session.scalar(select(Appeal).where(Appeal.review_id == review.id, Appeal.responded_at.is_(None))
                             .order_by(Appeal.id.desc()).limit(1))


def respond(actor: User, review: Review, response: str, new_score: Any = None) -> Appeal:
    """The manager or HR answers the open appeal: upheld (same result) or changed (a new revision)."""
    if not (can(actor, "perf.review_score", review) or can(actor, "perf.manage")):
        raise PerfError("forbidden")
    response = (response or "").strip()
    if not response:
        raise PerfError("required", "response")
    score = _score(new_score, "new_score") if new_score not in (None, "") else None
    _transition(review, ("appealed",), "employee")
    a = open_appeal(review)
    if a is None:
        raise Conflict("conflict")
    a.response, a.responded_by_id, a.responded_at = response[:4000], actor.id, utcnow()
    a.outcome = "changed" if score is not None and score != review.final_score else "upheld"
    data = {"appeal_id": a.id, "outcome": a.outcome, "response": a.response}
    if a.outcome == "changed":
        data["before"] = {"final_score": _s(review.final_score), "rating": review.rating}
        review.final_score = score
        review.rating, review.coefficient = rating_for(score)
        review.calibration_note = response[:4000]
        rev = _issue_revision(review, actor, "appeal answered")
        data.update(revision=rev.number, final_score=str(score), rating=review.rating,
                    content_hash=rev.content_hash)
    _start_response_window(review)
    data["response_due_at"] = review.response_due_at
    audit.record("perf.appeal_answered", review, data, actor=actor)
    _notify_employee(review, "perf.appeal_answered", response=a.response)
    return a


def calibrate(actor: User, review: Review, final_score: Any, note: str) -> ReviewRevision:
    """HR calibration. Before signing it issues a new revision; after signing (confirmed/approved) it is a
    recorded revision that voids the approval and needs a new signature. The old signature stays with
    the revision it signed."""
    if not can(actor, "perf.manage"):
        raise PerfError("forbidden")
    note = (note or "").strip()
    if not note:
        raise PerfError("required", "note")
    score = _score(final_score, "final_score")
    previous = {"status": review.status, "revision": review.revision, "final_score": _s(review.final_score),
                "rating": review.rating, "signature_id": review.signature_id,
                "unsigned_reason": review.unsigned_reason}
    _transition(review, ("employee", "appealed", "confirmed", "approved"), "employee")
    a = open_appeal(review)
    if a is not None:
        a.response, a.outcome, a.responded_by_id, a.responded_at = note[:4000], "changed", actor.id, utcnow()
    review.final_score, review.calibration_note = score, note[:4000]
    review.rating, review.coefficient = rating_for(score)
    review.signature_id = review.confirmed_at = review.approved_at = review.approved_by_id = None
    review.unsigned_reason = ""
    after_signing = previous["status"] in ("confirmed", "approved")
    rev = _issue_revision(review, actor, "revision after signing" if after_signing else "HR calibration")
    _start_response_window(review)
    audit.record("perf.review_revised" if after_signing else "perf.calibrated", review,
                 {"previous": previous, "revision": rev.number, "final_score": str(score),
                  "rating": review.rating, "note": note, "content_hash": rev.content_hash,
                  "response_due_at": review.response_due_at}, actor=actor)
    _notify_employee(review, "perf.result_ready", score=str(score), rating=review.rating)
    return rev


def approve(actor: User, review: Review) -> None:
    if not can(actor, "perf.manage"):
        raise PerfError("forbidden")
    check = verify(review)
    if not check.ok:
        raise PerfError("tampered")
    _transition(review, ("confirmed",), "approved")
    review.approved_at, review.approved_by_id = utcnow(), actor.id
    audit.record("perf.result_approved", review, {"revision": review.revision, "rating": review.rating,
                                                  "coefficient": _s(review.coefficient, 3),
                                                  "signature_id": review.signature_id}, actor=actor)
    _notify_employee(review, "perf.approved", rating=review.rating)


def response_overdue(review: Review, now: dt.datetime | None = None) -> bool:
    """The employee neither signed nor appealed within the cycle's response days."""
    return (review.status == "employee" and review.response_due_at is not None
            and review.response_due_at <= (now or utcnow()))


def approve_unsigned(actor: User, review: Review, reason: str, now: dt.datetime | None = None) -> None:
    """HR approves a result the employee neither signed nor appealed by ``response_due_at``, with a
    recorded reason (e.g. "employee did not respond"). The result carries no signature; the reason is
    shown on it and audited. A later change is a new revision like after signing (calibrate)."""
    if not can(actor, "perf.manage"):
        raise PerfError("forbidden")
    reason = (reason or "").strip()
    if not reason:
        raise PerfError("required", "reason")
    now = now or utcnow()
    if review.status != "employee":
        raise Conflict("conflict")
    if not response_overdue(review, now):
        raise PerfError("not_overdue", "reason")
    _transition(review, ("employee",), "approved")
    review.approved_at, review.approved_by_id = now, actor.id
    review.unsigned_reason = reason[:4000]
    reminders.complete(("perf_reviews", review.id))
    audit.record("perf.result_approved_unsigned", review,
                 {"revision": review.revision, "reason": review.unsigned_reason,
                  "response_due_at": review.response_due_at, "rating": review.rating,
                  "coefficient": _s(review.coefficient, 3)}, actor=actor)
    _notify_employee(review, "perf.approved", rating=review.rating)


# ---------------------------------------------------------------- verification

@dataclass
class Integrity:
    ok: bool
    signed: bool
    reason: str = ""


def verify(review: Review) -> Integrity:
    """Is the signed result unchanged? Recomputes the content from the current rows and checks the
    signature row against the audit record of the signing (core.signatures.verify), and the revision
    snapshot against its hash."""
    if review.signature_id is None:
        return Integrity(True, False)
    sig = db.session.get(signatures.Signature, review.signature_id)
    if sig is None:
        return Integrity(False, True, "signature missing")
    check = signatures.verify(sig, result_content(review))
    if not check.ok:
        return Integrity(False, True, check.reason)
    rev = db.session.scalar(select(ReviewRevision).where(ReviewRevision.review_id == review.id,
                                                         ReviewRevision.signature_id == sig.id))
    if rev is None or rev.content != sig.content:
        return Integrity(False, True, "the revision record differs from the signed content")
    return Integrity(True, True)


def history(review: Review) -> tuple[list[ReviewRevision], list[Appeal], list]:
    revs = list(db.session.scalars(select(ReviewRevision).where(ReviewRevision.review_id == review.id)
                                   .order_by(ReviewRevision.number)))
    appeals = list(db.session.scalars(select(Appeal).where(Appeal.review_id == review.id).order_by(Appeal.id)))
    events = list(db.session.scalars(select(audit.AuditEvent).where(
        audit.AuditEvent.target_type == "perf_reviews", audit.AuditEvent.target_id == str(review.id))
        .order_by(audit.AuditEvent.id)))
    return revs, appeals, events


def reviews_for(user, cycle: Cycle | None = None) -> dict[str, list[Review]]:
    """Own reviews, reviews to score (direct/managed reports), and all (HR)."""
    from sqlalchemy.orm import selectinload
    from portal.core.security import employee_scope
    base = select(Review).options(selectinload(Review.employee), selectinload(Review.cycle)).order_by(
        Review.cycle_id.desc(), Review.id)
    if cycle is not None:
        base = base.where(Review.cycle_id == cycle.id)
    mine = list(db.session.scalars(base.where(Review.employee_id == user.employee_id))) if user.employee_id else []
    team: list[Review] = []
    if "perf.view_all" in access._perms(user) or "perf.manage" in access._perms(user):
        team = list(db.session.scalars(base.where(Review.employee_id != user.employee_id)
                                       if user.employee_id else base))
    elif user.employee_id:
        cond = employee_scope(user)
        team = list(db.session.scalars(base.join(Employee, Employee.id == Review.employee_id)
                                       .where(cond, Employee.id != user.employee_id)))
    return {"mine": mine, "team": team}

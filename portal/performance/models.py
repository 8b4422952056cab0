"""OKRs and performance reviews: cycles, objectives (company -> team -> individual), key results,
check-ins, monthly completion snapshots, early warnings, review templates, reviews with revisions,
appeals and signed confirmations, rating bands (rating -> pay coefficient, read by payroll)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Optional

from sqlalchemy import (Boolean, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, TimestampMixin, UTCDateTime, utcnow
from portal.org.models import Department, Employee

CYCLE_KINDS = ("year", "quarter", "month")
CYCLE_STATUSES = ("draft", "open", "closed")
LEVELS = ("company", "team", "individual")
KR_KINDS = ("number", "percentage", "milestone", "yesno")
# archived: deleted after check-ins existed; kept for history, left out of every roll-up
OKR_STATUSES = ("pending", "active", "rejected", "archived")
# how often key results are checked in (reminders, "who has not checked in"); the early warning keeps
# using the monthly completion whatever the frequency (DOMAIN.md)
CHECKIN_FREQUENCIES = ("monthly", "biweekly", "weekly")
# Review workflow: self -> manager -> employee (sees the result) -> confirmed (signed) -> approved (HR)
#                                       \-> appealed -> (manager/HR respond) -> employee
REVIEW_STATUSES = ("self", "manager", "employee", "appealed", "confirmed", "approved")

Num = Numeric(18, 4)
Score = Numeric(7, 2)


class Cycle(TimestampMixin, Base):
    __tablename__ = "perf_cycles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    checkin_day: Mapped[int] = mapped_column(Integer, default=25)  # check-in due each month on this day
    checkin_frequency: Mapped[str] = mapped_column(String(10), default="monthly")
    checkin_weekday: Mapped[int] = mapped_column(Integer, default=4)  # weekly/biweekly: due on (0 = Monday)
    # days the employee has to sign or appeal after the manager submits; then HR may approve unsigned
    response_days: Mapped[int] = mapped_column(Integer, default=7)
    opened_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class Objective(TimestampMixin, Base):
    __tablename__ = "perf_objectives"
    __table_args__ = (Index("ix_perf_objectives_cycle_level", "cycle_id", "level"),
                      Index("ix_perf_objectives_owner_cycle", "owner_id", "cycle_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("perf_cycles.id", ondelete="RESTRICT"))
    level: Mapped[str] = mapped_column(String(12))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"))
    department_id: Mapped[Optional[int]] = mapped_column(ForeignKey("departments.id", ondelete="SET NULL"),
                                                         index=True)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("perf_objectives.id", ondelete="SET NULL"),
                                                     index=True)
    link_weight: Mapped[Decimal] = mapped_column(Num, default=Decimal(1))  # weight in the parent's roll-up
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    cycle: Mapped[Cycle] = relationship()
    owner: Mapped[Optional[Employee]] = relationship(foreign_keys=[owner_id])
    department: Mapped[Optional[Department]] = relationship(foreign_keys=[department_id])
    key_results: Mapped[list["KeyResult"]] = relationship(back_populates="objective",
                                                          order_by="KeyResult.id",
                                                          cascade="all, delete-orphan")


class KeyResult(TimestampMixin, Base):
    __tablename__ = "perf_key_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    objective_id: Mapped[int] = mapped_column(ForeignKey("perf_objectives.id", ondelete="CASCADE"),
                                              index=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(12))
    unit: Mapped[str] = mapped_column(String(20), default="")  # "CNY", "%", "件", ...
    start_value: Mapped[Decimal] = mapped_column(Num, default=Decimal(0))
    # milestone: target = number of milestones, current = milestones done; yes-no: target 1, current 0/1
    target_value: Mapped[Decimal] = mapped_column(Num)
    current_value: Mapped[Decimal] = mapped_column(Num, default=Decimal(0))
    weight: Mapped[Decimal] = mapped_column(Num, default=Decimal(1))
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    objective: Mapped[Objective] = relationship(back_populates="key_results")
    milestones: Mapped[list["Milestone"]] = relationship(back_populates="key_result",
                                                         order_by="Milestone.position",
                                                         cascade="all, delete-orphan")


class Milestone(Base):
    """A named milestone of a milestone key result (progress = done / total)."""

    __tablename__ = "perf_milestones"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_result_id: Mapped[int] = mapped_column(ForeignKey("perf_key_results.id", ondelete="CASCADE"),
                                               index=True)
    title: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    done_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    done_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    key_result: Mapped[KeyResult] = relationship(back_populates="milestones")


class CheckIn(Base):
    __tablename__ = "perf_checkins"
    __table_args__ = (Index("ix_perf_checkins_kr_created", "key_result_id", "created_at"),
                      Index("ix_perf_checkins_employee_month", "employee_id", "month"))

    id: Mapped[int] = mapped_column(primary_key=True)
    key_result_id: Mapped[int] = mapped_column(ForeignKey("perf_key_results.id", ondelete="CASCADE"))
    employee_id: Mapped[Optional[int]] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    month: Mapped[dt.date] = mapped_column(Date)  # first day of the company-time month
    previous_value: Mapped[Decimal] = mapped_column(Num)
    value: Mapped[Decimal] = mapped_column(Num)
    progress: Mapped[Optional[Decimal]] = mapped_column(Num)  # KR progress after this check-in (0..1)
    confidence: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    # milestone key results: JSON list of the milestone titles done after this check-in
    milestones_done: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User", foreign_keys=[user_id])


class MonthlyCompletion(Base):
    """The employee's objectives' progress at their latest check-in of a month (the last one wins)."""

    __tablename__ = "perf_monthly_completion"
    __table_args__ = (UniqueConstraint("employee_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    month: Mapped[dt.date] = mapped_column(Date, index=True)
    completion: Mapped[Optional[Decimal]] = mapped_column(Num)  # percent 0..100, None = "—"
    last_checkin_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class EarlyWarning(Base):
    __tablename__ = "perf_warnings"
    __table_args__ = (UniqueConstraint("employee_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    month: Mapped[dt.date] = mapped_column(Date, index=True)
    reasons: Mapped[str] = mapped_column(String(60))  # "low", "drop" or "low,drop"
    data: Mapped[str] = mapped_column(Text, default="{}")  # the numbers, JSON
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    employee: Mapped[Employee] = relationship()


class RatingBand(Base):
    """Rating -> performance coefficient (payroll reads ``Review.rating``/``Review.coefficient``)."""

    __tablename__ = "perf_rating_bands"

    id: Mapped[int] = mapped_column(primary_key=True)
    rating: Mapped[str] = mapped_column(String(10), unique=True)
    min_score: Mapped[Decimal] = mapped_column(Score)
    coefficient: Mapped[Decimal] = mapped_column(Numeric(6, 3))


class ReviewTemplate(TimestampMixin, Base):
    __tablename__ = "perf_review_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    formula: Mapped[str] = mapped_column(String(300), default="manager")
    criteria: Mapped[list["ReviewCriterion"]] = relationship(back_populates="template",
                                                             order_by="ReviewCriterion.position",
                                                             cascade="all, delete-orphan")


class ReviewCriterion(Base):
    __tablename__ = "perf_review_criteria"
    __table_args__ = (UniqueConstraint("template_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("perf_review_templates.id", ondelete="CASCADE"),
                                             index=True)
    name: Mapped[str] = mapped_column(String(120))
    code: Mapped[str] = mapped_column(String(40))  # formula name of the criterion's score, e.g. quality
    weight: Mapped[Decimal] = mapped_column(Num)
    position: Mapped[int] = mapped_column(Integer, default=0)
    template: Mapped[ReviewTemplate] = relationship(back_populates="criteria")


class Review(TimestampMixin, Base):
    __tablename__ = "perf_reviews"
    __table_args__ = (UniqueConstraint("cycle_id", "employee_id"),
                      Index("ix_perf_reviews_status", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("perf_cycles.id", ondelete="RESTRICT"))
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="RESTRICT"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("perf_review_templates.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(10), default="self")
    version: Mapped[int] = mapped_column(Integer, default=0)  # bumped by every state change (409 guard)
    revision: Mapped[int] = mapped_column(Integer, default=0)  # result revision shown to the employee
    self_score: Mapped[Optional[Decimal]] = mapped_column(Score)
    self_comment: Mapped[str] = mapped_column(Text, default="")
    manager_score: Mapped[Optional[Decimal]] = mapped_column(Score)
    manager_comment: Mapped[str] = mapped_column(Text, default="")
    scored_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    okr_completion: Mapped[Optional[Decimal]] = mapped_column(Score)
    computed_score: Mapped[Optional[Decimal]] = mapped_column(Score)  # formula result
    final_score: Mapped[Optional[Decimal]] = mapped_column(Score)  # after HR calibration
    calibration_note: Mapped[str] = mapped_column(Text, default="")
    rating: Mapped[str] = mapped_column(String(10), default="")
    coefficient: Mapped[Optional[Decimal]] = mapped_column(Numeric(6, 3))
    signature_id: Mapped[Optional[int]] = mapped_column(ForeignKey("signatures.id", ondelete="RESTRICT"))
    confirmed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    approved_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # the employee signs or appeals by then (cycle.response_days after the result was issued)
    response_due_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    # HR approved without the employee's signature after response_due_at: the recorded reason
    unsigned_reason: Mapped[str] = mapped_column(Text, default="")

    cycle: Mapped[Cycle] = relationship()
    employee: Mapped[Employee] = relationship()
    template: Mapped[ReviewTemplate] = relationship()
    scores: Mapped[list["ReviewScore"]] = relationship(back_populates="review", order_by="ReviewScore.id",
                                                       cascade="all, delete-orphan")


class ReviewScore(Base):
    __tablename__ = "perf_review_scores"
    __table_args__ = (UniqueConstraint("review_id", "criterion_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("perf_reviews.id", ondelete="CASCADE"))
    criterion_id: Mapped[int] = mapped_column(ForeignKey("perf_review_criteria.id", ondelete="RESTRICT"))
    score: Mapped[Decimal] = mapped_column(Score)
    comment: Mapped[str] = mapped_column(Text, default="")
    review: Mapped[Review] = relationship(back_populates="scores")
    criterion: Mapped[ReviewCriterion] = relationship(lazy="joined")


class ReviewRevision(Base):
    """A result as it was issued to the employee; the employee signs the current one."""

    __tablename__ = "perf_review_revisions"
    __table_args__ = (UniqueConstraint("review_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("perf_reviews.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    signature_id: Mapped[Optional[int]] = mapped_column(ForeignKey("signatures.id", ondelete="RESTRICT"))


class Appeal(Base):
    __tablename__ = "perf_appeals"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("perf_reviews.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    response: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(10), default="")  # upheld | changed
    responded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    responded_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

"""Training data model.

* A ``Course`` is the stable identity; its content lives in ``CourseVersion`` rows (draft -> published ->
  retired). Editing a published course creates a new draft version (a copy); publishing it retires the
  previous one. Completions, attempts and acknowledgements point at the version they were made on.
* The question bank belongs to the course (categories are free text). An exam draws questions per
  category following the version's ``ExamRule`` rows; every drawn question is copied into the attempt
  (``AttemptItem``) with its shuffled options, so later bank edits never change a past attempt.
* ``Assignment`` says "this course for these people / this department / this position"; ``Enrollment`` is
  one employee's current obligation (unique per course and employee), ``Completion`` the history.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, TimestampMixin, UTCDateTime, utcnow
from portal.core.models import User
from portal.core.uploads import StoredFile
from portal.org.models import Employee

QUESTION_KINDS = ("single", "multiple", "truefalse", "fill")
SHOW_ANSWERS = ("never", "after_submit", "when_done")
TARGET_TYPES = ("employee", "department", "position")
GRACE_SECONDS = 30  # DOMAIN.md "Exam deadline"


class Course(TimestampMixin, Base):
    __tablename__ = "training_courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[Optional[str]] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))  # the newest version's title (lists)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # the version learners get now (None until the first publication)
    current_version_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("training_course_versions.id", ondelete="SET NULL", use_alter=True))

    versions: Mapped[list["CourseVersion"]] = relationship(
        back_populates="course", foreign_keys="CourseVersion.course_id", order_by="CourseVersion.number")
    current_version: Mapped[Optional["CourseVersion"]] = relationship(foreign_keys=[current_version_id],
                                                                      post_update=True)


class CourseVersion(Base):
    __tablename__ = "training_course_versions"
    __table_args__ = (UniqueConstraint("course_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("training_courses.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="draft")  # draft | published | retired
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # policy acknowledgement at the end of the course (optional)
    policy_name: Mapped[str] = mapped_column(String(200), default="")
    policy_version: Mapped[str] = mapped_column(String(40), default="")
    policy_text: Mapped[str] = mapped_column(Text, default="")
    # exam settings (an exam exists when at least one rule draws questions)
    pass_mark: Mapped[int] = mapped_column(Integer, default=60)  # percent
    time_limit_seconds: Mapped[int] = mapped_column(Integer, default=0)  # 0 = no limit
    max_attempts: Mapped[int] = mapped_column(Integer, default=0)  # 0 = unlimited
    cooloff_seconds: Mapped[int] = mapped_column(Integer, default=0)
    show_answers: Mapped[str] = mapped_column(String(20), default="when_done")
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    published_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    course: Mapped[Course] = relationship(back_populates="versions", foreign_keys=[course_id])
    lessons: Mapped[list["Lesson"]] = relationship(back_populates="version", cascade="all, delete-orphan",
                                                   order_by="Lesson.position")
    rules: Mapped[list["ExamRule"]] = relationship(back_populates="version", cascade="all, delete-orphan",
                                                   order_by="ExamRule.category")

    @property
    def has_policy(self) -> bool:
        return bool(self.policy_name.strip() and self.policy_text.strip())

    @property
    def has_exam(self) -> bool:
        return any(r.count > 0 for r in self.rules)

    @property
    def question_count(self) -> int:
        return sum(r.count for r in self.rules)


class Lesson(Base):
    __tablename__ = "training_lessons"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("training_course_versions.id", ondelete="CASCADE"),
                                            index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(200))
    body_md: Mapped[str] = mapped_column(Text, default="")

    version: Mapped[CourseVersion] = relationship(back_populates="lessons")
    attachments: Mapped[list["LessonAttachment"]] = relationship(
        back_populates="lesson", cascade="all, delete-orphan", order_by="LessonAttachment.id")


class LessonAttachment(Base):
    __tablename__ = "training_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("training_lessons.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("stored_files.id", ondelete="RESTRICT"), index=True)

    lesson: Mapped[Lesson] = relationship(back_populates="attachments")
    file: Mapped[StoredFile] = relationship(lazy="joined")


class Question(TimestampMixin, Base):
    __tablename__ = "training_questions"
    __table_args__ = (Index("ix_training_questions_course_cat", "course_id", "category", "active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("training_courses.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(60), default="")
    kind: Mapped[str] = mapped_column(String(10))  # single | multiple | truefalse | fill
    prompt: Mapped[str] = mapped_column(Text)
    # choice kinds: option texts; fill: accepted answers
    options: Mapped[list] = mapped_column(JSON, default=list)
    # single/multiple: indices into options; truefalse: [true|false]; fill: unused
    correct: Mapped[list] = mapped_column(JSON, default=list)
    exact: Mapped[bool] = mapped_column(Boolean, default=False)  # fill-in: exact match, else normalised
    explanation: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ExamRule(Base):
    __tablename__ = "training_exam_rules"
    __table_args__ = (UniqueConstraint("version_id", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("training_course_versions.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(60), default="")
    count: Mapped[int] = mapped_column(Integer, default=1)

    version: Mapped[CourseVersion] = relationship(back_populates="rules")


class Assignment(Base):
    __tablename__ = "training_assignments"
    __table_args__ = (Index("ix_training_assignments_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("training_courses.id", ondelete="CASCADE"), index=True)
    target_type: Mapped[str] = mapped_column(String(12))  # employee | department | position
    target_id: Mapped[int] = mapped_column(Integer)
    include_subdepartments: Mapped[bool] = mapped_column(Boolean, default=True)
    due_date: Mapped[dt.date] = mapped_column(Date)  # for the people in the group when assigned
    new_hire_days: Mapped[int] = mapped_column(Integer, default=30)  # for those who join later
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    course: Mapped[Course] = relationship()


class Enrollment(Base):
    __tablename__ = "training_enrollments"
    __table_args__ = (UniqueConstraint("course_id", "employee_id"),
                      Index("ix_training_enrollments_employee", "employee_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("training_courses.id", ondelete="CASCADE"))
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("training_course_versions.id", ondelete="RESTRICT"),
                                            index=True)
    assignment_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("training_assignments.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="assigned")  # assigned | in_progress | completed
    due_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    completed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    best_score: Mapped[Optional[int]] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean, default=False)
    learning_seconds: Mapped[int] = mapped_column(Integer, default=0)

    course: Mapped[Course] = relationship()
    employee: Mapped[Employee] = relationship()
    version: Mapped[CourseVersion] = relationship()

    def overdue(self, now: dt.datetime) -> bool:
        return self.status != "completed" and self.due_at is not None and self.due_at < now


class LessonProgress(Base):
    __tablename__ = "training_lesson_progress"
    __table_args__ = (UniqueConstraint("enrollment_id", "lesson_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("training_enrollments.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(ForeignKey("training_lessons.id", ondelete="CASCADE"), index=True)
    first_opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    seconds: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class Attempt(Base):
    __tablename__ = "training_attempts"
    __table_args__ = (UniqueConstraint("enrollment_id", "number"),
                      Index("ix_training_attempts_open", "submitted_at", "deadline_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("training_enrollments.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("training_course_versions.id", ondelete="RESTRICT"),
                                            index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    deadline_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)  # None = no time limit
    submitted_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    closed_by: Mapped[str] = mapped_column(String(10), default="")  # submit | late | timeout
    correct: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[Optional[int]] = mapped_column(Integer)  # percent
    passed: Mapped[bool] = mapped_column(Boolean, default=False)

    enrollment: Mapped[Enrollment] = relationship()
    version: Mapped[CourseVersion] = relationship()
    items: Mapped[list["AttemptItem"]] = relationship(back_populates="attempt", cascade="all, delete-orphan",
                                                      order_by="AttemptItem.position")

    @property
    def finished(self) -> bool:
        return self.submitted_at is not None


class AttemptItem(Base):
    """One drawn question, frozen as shown: prompt, options in the shown order, the correct answer in
    shown terms. (attempt, question) is unique: a question never appears twice in one attempt."""

    __tablename__ = "training_attempt_items"
    __table_args__ = (UniqueConstraint("attempt_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("training_attempts.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("training_questions.id", ondelete="RESTRICT"),
                                             index=True)
    position: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(60), default="")
    kind: Mapped[str] = mapped_column(String(10))
    prompt: Mapped[str] = mapped_column(Text)
    options: Mapped[list] = mapped_column(JSON, default=list)  # shown order
    option_map: Mapped[list] = mapped_column(JSON, default=list)  # shown index -> bank index
    correct: Mapped[list] = mapped_column(JSON, default=list)  # shown indices / [bool] / accepted texts
    exact: Mapped[bool] = mapped_column(Boolean, default=False)
    explanation: Mapped[str] = mapped_column(Text, default="")
    answer: Mapped[Optional[Any]] = mapped_column(JSON)
    answered_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    is_correct: Mapped[Optional[bool]] = mapped_column(Boolean)

    attempt: Mapped[Attempt] = relationship(back_populates="items")


class Acknowledgement(Base):
    __tablename__ = "training_acknowledgements"
    __table_args__ = (UniqueConstraint("employee_id", "version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("training_enrollments.id", ondelete="RESTRICT"),
                                               index=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="RESTRICT"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    course_id: Mapped[int] = mapped_column(ForeignKey("training_courses.id", ondelete="RESTRICT"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("training_course_versions.id", ondelete="RESTRICT"))
    policy_name: Mapped[str] = mapped_column(String(200))
    policy_version: Mapped[str] = mapped_column(String(40))
    policy_hash: Mapped[str] = mapped_column(String(64), index=True)
    signature_id: Mapped[int] = mapped_column(ForeignKey("signatures.id", ondelete="RESTRICT"))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    employee: Mapped[Employee] = relationship()
    user: Mapped[User] = relationship()
    version: Mapped[CourseVersion] = relationship()


class Completion(Base):
    """History: one row each time an employee completes a course, pinned to the version taken."""

    __tablename__ = "training_completions"
    __table_args__ = (Index("ix_training_completions_employee", "employee_id", "completed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("training_enrollments.id", ondelete="RESTRICT"),
                                               index=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="RESTRICT"))
    course_id: Mapped[int] = mapped_column(ForeignKey("training_courses.id", ondelete="RESTRICT"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("training_course_versions.id", ondelete="RESTRICT"))
    completed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    score: Mapped[Optional[int]] = mapped_column(Integer)
    attempt_id: Mapped[Optional[int]] = mapped_column(ForeignKey("training_attempts.id", ondelete="SET NULL"))
    acknowledgement_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("training_acknowledgements.id", ondelete="SET NULL"))
    learning_seconds: Mapped[int] = mapped_column(Integer, default=0)

    version: Mapped[CourseVersion] = relationship()
    course: Mapped[Course] = relationship()

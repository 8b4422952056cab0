"""Attendance data model.

* ``AttendanceRule`` (考勤组): a rule for a group of people (departments and/or employees): fixed hours,
  shifts (scheduled per day) or flexible hours; where clock-in is accepted; correction limits.
* ``Shift`` / ``ShiftAssignment``: shift schedules (one row per employee and local date; no shift = rest).
* ``CalendarDay``: HR overrides and the imported year of statutory holidays and make-up working days.
* ``Punch``: raw clock events (UTC server time, source, IP, optional consented location).
* ``AttendanceDay``: the daily summary per (employee, local date) that every page reads.
* ``LeaveRequest`` / ``Correction``: approved by the manager; both update the summary.
* ``Anomaly``: absence alerts, escalations and monthly late flags written by the daily scan.
Durations are integer minutes; times are aware UTC; attendance days are local dates.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, TimestampMixin, UTCDateTime, utcnow

RULE_KINDS = ("fixed", "shift", "flexible")
STATUSES = ("normal", "late", "early", "missing", "absent", "leave", "rest", "holiday")
LEAVE_KINDS = ("annual", "sick", "personal", "compensatory")
PUNCH_KINDS = ("in", "out")
PUNCH_SOURCES = ("web", "mobile", "kiosk", "import", "correction")
ANOMALY_KINDS = ("absent", "escalation", "late_count", "late_rise")


class AttendanceRule(TimestampMixin, Base):
    __tablename__ = "attendance_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="fixed")  # fixed | shift | flexible
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # fixed hours: minutes after local midnight; end <= start means the shift ends the next day
    start_minute: Mapped[int] = mapped_column(Integer, default=9 * 60)
    end_minute: Mapped[int] = mapped_column(Integer, default=18 * 60)
    grace_minutes: Mapped[int] = mapped_column(Integer, default=5)
    early_grace_minutes: Mapped[int] = mapped_column(Integer, default=0)
    break_start_minute: Mapped[Optional[int]] = mapped_column(Integer)
    break_minutes: Mapped[int] = mapped_column(Integer, default=0)
    # where clock-in is accepted: anywhere, or only on the intranet / at a work site (else out-of-office)
    restrict_place: Mapped[bool] = mapped_column(Boolean, default=False)
    ip_ranges: Mapped[str] = mapped_column(Text, default="")  # CIDRs, one per line
    allow_outside: Mapped[bool] = mapped_column(Boolean, default=True)  # 外勤 with a note
    # corrections (补卡)
    correctable: Mapped[str] = mapped_column(String(120), default="missing,absent,late,early")
    corrections_per_month: Mapped[int] = mapped_column(Integer, default=3)
    correction_deadline_day: Mapped[int] = mapped_column(Integer, default=5)  # of the next month; 0 = none


class RuleMember(Base):
    """A department or an employee in a rule (an employee entry beats the department's)."""

    __tablename__ = "attendance_rule_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("attendance_rules.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[Optional[int]] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"),
                                                         unique=True)
    employee_id: Mapped[Optional[int]] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"),
                                                       unique=True)


class Exemption(Base):
    """People exempt from clocking (whitelist)."""

    __tablename__ = "attendance_exemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"), unique=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Shift(Base):
    __tablename__ = "attendance_shifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    grace_minutes: Mapped[int] = mapped_column(Integer, default=5)
    early_grace_minutes: Mapped[int] = mapped_column(Integer, default=0)
    break_start_minute: Mapped[Optional[int]] = mapped_column(Integer)
    break_minutes: Mapped[int] = mapped_column(Integer, default=0)


class ShiftAssignment(Base):
    __tablename__ = "attendance_shift_assignments"
    __table_args__ = (UniqueConstraint("employee_id", "work_date"),
                      Index("ix_attendance_shift_assignments_date", "work_date"))

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    work_date: Mapped[dt.date] = mapped_column(Date)
    shift_id: Mapped[Optional[int]] = mapped_column(ForeignKey("attendance_shifts.id", ondelete="CASCADE"))
    shift: Mapped[Optional[Shift]] = relationship(lazy="joined")


class CalendarDay(Base):
    """A date whose kind differs from the plain Monday-Friday week: holiday or (make-up) working day."""

    __tablename__ = "attendance_calendar"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # holiday | workday | rest
    name: Mapped[str] = mapped_column(String(80), default="")
    source: Mapped[str] = mapped_column(String(10), default="manual")  # import | manual


class WorkSite(Base):
    __tablename__ = "attendance_sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[int] = mapped_column(Integer, default=200)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class LocationConsent(Base):
    """PIPL art. 29: separate consent before the portal uses an employee's location."""

    __tablename__ = "attendance_location_consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"), unique=True)
    granted: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Settings(Base):
    """One row (id 1): the rules HR can change."""

    __tablename__ = "attendance_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    geofence_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    escalate_after_days: Mapped[int] = mapped_column(Integer, default=3)
    late_count_threshold: Mapped[int] = mapped_column(Integer, default=4)
    late_rise_threshold: Mapped[int] = mapped_column(Integer, default=3)
    alert_channels: Mapped[str] = mapped_column(String(40), default="inapp,email")
    escalation_channels: Mapped[str] = mapped_column(String(40), default="inapp,email,sms")


class Punch(Base):
    __tablename__ = "attendance_punches"
    __table_args__ = (Index("ix_attendance_punches_emp_at", "employee_id", "at"),
                      Index("ix_attendance_punches_emp_date", "employee_id", "work_date"))

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    work_date: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(3))  # in | out
    source: Mapped[str] = mapped_column(String(12), default="web")
    ip: Mapped[str] = mapped_column(String(64), default="")
    method: Mapped[str] = mapped_column(String(10), default="")  # any | ip | site | outside | correction
    latitude: Mapped[Optional[float]] = mapped_column(Float)
    longitude: Mapped[Optional[float]] = mapped_column(Float)
    accuracy_m: Mapped[Optional[int]] = mapped_column(Integer)
    site_id: Mapped[Optional[int]] = mapped_column(ForeignKey("attendance_sites.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(300), default="")
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttendanceDay(Base):
    """Daily summary: maintained on each punch, recomputable for a date range."""

    __tablename__ = "attendance_days"
    __table_args__ = (UniqueConstraint("employee_id", "work_date"),
                      Index("ix_attendance_days_date_status", "work_date", "status"),
                      # the scan's monthly late counts read only late days (a few % of the rows)
                      Index("ix_attendance_days_late", "work_date", "employee_id",
                            postgresql_where=text("late_minutes > 0"), sqlite_where=text("late_minutes > 0")))

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    work_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))
    scheduled_start: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    scheduled_end: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    first_in: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    last_out: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    worked_minutes: Mapped[int] = mapped_column(Integer, default=0)
    late_minutes: Mapped[int] = mapped_column(Integer, default=0)
    early_minutes: Mapped[int] = mapped_column(Integer, default=0)
    leave_half: Mapped[str] = mapped_column(String(4), default="")  # "" | full | am | pm
    outside: Mapped[bool] = mapped_column(Boolean, default=False)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LeaveRequest(TimestampMixin, Base):
    __tablename__ = "attendance_leaves"
    __table_args__ = (Index("ix_attendance_leaves_emp_dates", "employee_id", "start_date", "end_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(14))
    start_date: Mapped[dt.date] = mapped_column(Date)
    start_half: Mapped[str] = mapped_column(String(2), default="am")  # am: from the morning | pm: afternoon
    end_date: Mapped[dt.date] = mapped_column(Date)
    end_half: Mapped[str] = mapped_column(String(2), default="pm")  # am: until noon | pm: to the end
    half_days: Mapped[int] = mapped_column(Integer, default=2)
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    decision_note: Mapped[str] = mapped_column(String(300), default="")

    employee = relationship("Employee", lazy="joined")


class Correction(TimestampMixin, Base):
    __tablename__ = "attendance_corrections"
    __table_args__ = (Index("ix_attendance_corrections_emp_date", "employee_id", "work_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    work_date: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(3))  # in | out
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the punch time asked for
    reason: Mapped[str] = mapped_column(Text)
    file_id: Mapped[Optional[int]] = mapped_column(ForeignKey("stored_files.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    decision_note: Mapped[str] = mapped_column(String(300), default="")
    punch_id: Mapped[Optional[int]] = mapped_column(ForeignKey("attendance_punches.id", ondelete="SET NULL"))

    employee = relationship("Employee", lazy="joined")


class Anomaly(Base):
    __tablename__ = "attendance_anomalies"
    __table_args__ = (UniqueConstraint("employee_id", "kind", "key_date"),
                      Index("ix_attendance_anomalies_status_created", "status", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))
    key_date: Mapped[dt.date] = mapped_column(Date)  # streak start (absence) or month start (late)
    detected_on: Mapped[dt.date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer, default=0)  # streak length or late count
    risk: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | resolved
    notified_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(String(300), default="")

    employee = relationship("Employee", lazy="joined")

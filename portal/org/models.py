"""People and organisation: departments (tree), positions, employees."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, TimestampMixin

STATUSES = ("active", "notice", "left")


class Department(TimestampMixin, Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[Optional[str]] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    parent_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True)
    head_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("employees.id", ondelete="SET NULL", use_alter=True), index=True)

    parent: Mapped[Optional["Department"]] = relationship(remote_side="Department.id",
                                                          back_populates="children")
    children: Mapped[list["Department"]] = relationship(back_populates="parent")
    head: Mapped[Optional["Employee"]] = relationship(foreign_keys=[head_id], post_update=True)


class Position(TimestampMixin, Base):
    __tablename__ = "positions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[Optional[str]] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)


class Employee(TimestampMixin, Base):
    __tablename__ = "employees"
    __table_args__ = (
        Index("ix_employees_department_status", "department_id", "status"),
        Index("ix_employees_pinyin", "name_pinyin"),
        Index("ix_employees_initials", "name_initials"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    emp_no: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    # normalised pinyin for search: "zhangsan" and initials "zs"
    name_pinyin: Mapped[str] = mapped_column(String(255), default="")
    name_initials: Mapped[str] = mapped_column(String(40), default="")
    department_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"))
    manager_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("employees.id", ondelete="SET NULL"), index=True)
    position_id: Mapped[Optional[int]] = mapped_column(ForeignKey("positions.id", ondelete="SET NULL"),
                                                       index=True)
    mobile: Mapped[str] = mapped_column(String(20), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    hire_date: Mapped[Optional[dt.date]] = mapped_column(Date)
    probation_end: Mapped[Optional[dt.date]] = mapped_column(Date)
    contract_start: Mapped[Optional[dt.date]] = mapped_column(Date)
    contract_end: Mapped[Optional[dt.date]] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="active", index=True)

    department: Mapped[Optional[Department]] = relationship(foreign_keys=[department_id])
    manager: Mapped[Optional["Employee"]] = relationship(remote_side="Employee.id",
                                                         foreign_keys=[manager_id])
    position: Mapped[Optional[Position]] = relationship()

    def in_probation(self, on: dt.date) -> bool:
        return self.probation_end is not None and on <= self.probation_end

    def __repr__(self) -> str:
        return f"<Employee {self.emp_no} {self.name}>"

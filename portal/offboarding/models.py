"""Offboarding data model: client records (the part of a CRM the handover needs), resignations and
terminations, checklist templates, checklists, the sign-off chain, temporary unfreezes and the account
revocation run."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, TimestampMixin, UTCDateTime, utcnow
from portal.core.models import User
from portal.org.models import Department, Employee, Position

# ---------------------------------------------------------------- client records


class Client(TimestampMixin, Base):
    __tablename__ = "clients"
    __table_args__ = (Index("ix_clients_owner", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"))
    contract_no: Mapped[str] = mapped_column(String(80), default="")
    contract_end: Mapped[Optional[dt.date]] = mapped_column(Date)
    preferences: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    owner: Mapped[Optional[Employee]] = relationship(foreign_keys=[owner_id])
    contacts: Mapped[list["ClientContact"]] = relationship(
        back_populates="client", cascade="all, delete-orphan", order_by="ClientContact.id")
    orders: Mapped[list["ClientOrder"]] = relationship(
        back_populates="client", cascade="all, delete-orphan", order_by="ClientOrder.id.desc()")
    receivables: Mapped[list["Receivable"]] = relationship(
        back_populates="client", cascade="all, delete-orphan", order_by="Receivable.due_date")
    interactions: Mapped[list["ClientInteraction"]] = relationship(
        back_populates="client", cascade="all, delete-orphan", order_by="ClientInteraction.at.desc()")

    @property
    def open_orders(self) -> list["ClientOrder"]:
        return [o for o in self.orders if o.status == "open"]

    @property
    def receivable_fen(self) -> int:
        return sum(r.amount_fen for r in self.receivables if r.status == "open")


class ClientContact(Base):
    __tablename__ = "client_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(80), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    client: Mapped[Client] = relationship(back_populates="contacts")


class ClientOrder(Base):
    __tablename__ = "client_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    order_no: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(Text, default="")
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | closed
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                         index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    client: Mapped[Client] = relationship(back_populates="orders")
    created_by: Mapped[Optional[User]] = relationship()


class Receivable(Base):
    __tablename__ = "client_receivables"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    reference: Mapped[str] = mapped_column(String(80), default="")
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    due_date: Mapped[Optional[dt.date]] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | paid
    client: Mapped[Client] = relationship(back_populates="receivables")


class ClientInteraction(Base):
    """Contact history: who talked to the client, when, how, about what."""

    __tablename__ = "client_interactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(20), default="phone")
    summary: Mapped[str] = mapped_column(Text, default="")
    client: Mapped[Client] = relationship(back_populates="interactions")
    by: Mapped[Optional[User]] = relationship()


class ClientTransfer(Base):
    """A change of a client's owner during a handover (also written to the audit trail)."""

    __tablename__ = "client_transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    offboarding_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("offboardings.id", ondelete="SET NULL"), index=True)
    from_employee_id: Mapped[Optional[int]] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"))
    to_employee_id: Mapped[Optional[int]] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"))
    by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    client: Mapped[Client] = relationship()
    from_employee: Mapped[Optional[Employee]] = relationship(foreign_keys=[from_employee_id])
    to_employee: Mapped[Optional[Employee]] = relationship(foreign_keys=[to_employee_id])
    by: Mapped[Optional[User]] = relationship()


# ---------------------------------------------------------------- checklist templates

RESPONSIBLE = ("leaver", "successor", "head", "finance", "it", "hr")


class ChecklistTemplate(TimestampMixin, Base):
    __tablename__ = "checklist_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    department_id: Mapped[Optional[int]] = mapped_column(ForeignKey("departments.id", ondelete="SET NULL"))
    position_id: Mapped[Optional[int]] = mapped_column(ForeignKey("positions.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    department: Mapped[Optional[Department]] = relationship()
    position: Mapped[Optional[Position]] = relationship()
    items: Mapped[list["TemplateItem"]] = relationship(
        back_populates="template", cascade="all, delete-orphan", order_by="TemplateItem.sort, TemplateItem.id")


class TemplateItem(Base):
    __tablename__ = "checklist_template_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("checklist_templates.id", ondelete="CASCADE"),
                                             index=True)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    responsible: Mapped[str] = mapped_column(String(12), default="leaver")
    requires_upload: Mapped[bool] = mapped_column(Boolean, default=False)
    due_offset_days: Mapped[int] = mapped_column(Integer, default=0)  # relative to the last day
    template: Mapped[ChecklistTemplate] = relationship(back_populates="items")


# ---------------------------------------------------------------- offboardings

STAGES = ("notice", "handover", "signoff", "signing", "completed")


class Offboarding(TimestampMixin, Base):
    __tablename__ = "offboardings"
    __table_args__ = (Index("ix_offboardings_stage_last_day", "stage", "last_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="RESTRICT"), index=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(12), default="resignation")  # resignation | termination
    reason: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    notice_days: Mapped[int] = mapped_column(Integer, default=30)
    last_day: Mapped[dt.date] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(12), default="notice")
    successor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"),
                                                        index=True)
    template_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("checklist_templates.id", ondelete="SET NULL"))
    revoke_on: Mapped[str] = mapped_column(String(12), default="completion")  # completion | last_day
    signoff_round: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    completed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    leaver_signature_id: Mapped[Optional[int]] = mapped_column(ForeignKey("signatures.id", ondelete="SET NULL"))
    successor_signature_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("signatures.id", ondelete="SET NULL"))
    leaver_signature_waiver: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    employee: Mapped[Employee] = relationship(foreign_keys=[employee_id])
    user: Mapped[Optional[User]] = relationship(foreign_keys=[user_id])
    successor: Mapped[Optional[Employee]] = relationship(foreign_keys=[successor_id])
    template: Mapped[Optional[ChecklistTemplate]] = relationship()
    items: Mapped[list["ChecklistItem"]] = relationship(
        back_populates="offboarding", cascade="all, delete-orphan",
        order_by="ChecklistItem.sort, ChecklistItem.id")
    steps: Mapped[list["SignoffStep"]] = relationship(
        back_populates="offboarding", cascade="all, delete-orphan",
        order_by="SignoffStep.round, SignoffStep.seq")

    @property
    def current_steps(self) -> list["SignoffStep"]:
        return [s for s in self.steps if s.round == self.signoff_round]

    @property
    def open_items(self) -> list["ChecklistItem"]:
        return [i for i in self.items if not i.closed]


ITEM_STATUSES = ("open", "submitted", "done", "waived")


class ChecklistItem(Base):
    __tablename__ = "checklist_items"
    __table_args__ = (Index("ix_checklist_items_status_due", "status", "due_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    offboarding_id: Mapped[int] = mapped_column(ForeignKey("offboardings.id", ondelete="CASCADE"), index=True)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    responsible: Mapped[str] = mapped_column(String(12), default="leaver")
    requires_upload: Mapped[bool] = mapped_column(Boolean, default=False)
    due_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="open")
    note: Mapped[str] = mapped_column(Text, default="")
    file_id: Mapped[Optional[int]] = mapped_column(ForeignKey("stored_files.id", ondelete="SET NULL"))
    submitted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    submitted_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    confirmed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    confirmed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    waiver_reason: Mapped[str] = mapped_column(Text, default="")
    waiver_file_id: Mapped[Optional[int]] = mapped_column(ForeignKey("stored_files.id", ondelete="SET NULL"))
    waived_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    waived_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str] = mapped_column(Text, default="")
    rejected_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    rejected_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    offboarding: Mapped[Offboarding] = relationship(back_populates="items")
    submitted_by: Mapped[Optional[User]] = relationship(foreign_keys=[submitted_by_id])
    confirmed_by: Mapped[Optional[User]] = relationship(foreign_keys=[confirmed_by_id])
    waived_by: Mapped[Optional[User]] = relationship(foreign_keys=[waived_by_id])
    rejected_by: Mapped[Optional[User]] = relationship(foreign_keys=[rejected_by_id])

    @property
    def closed(self) -> bool:
        return self.status in ("done", "waived")


SIGNOFF_ROLES = ("successor", "head", "finance", "hr")


class SignoffStep(Base):
    __tablename__ = "offboarding_signoffs"
    __table_args__ = (UniqueConstraint("offboarding_id", "round", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    offboarding_id: Mapped[int] = mapped_column(ForeignKey("offboardings.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=1)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | approved | rejected
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(Text, default="")
    offboarding: Mapped[Offboarding] = relationship(back_populates="steps")
    decided_by: Mapped[Optional[User]] = relationship()


class UnfreezeRequest(Base):
    """A temporary, partial unfreeze: one permission until a time, after a manager and HR approve."""

    __tablename__ = "offboarding_unfreezes"

    id: Mapped[int] = mapped_column(primary_key=True)
    offboarding_id: Mapped[int] = mapped_column(ForeignKey("offboardings.id", ondelete="CASCADE"), index=True)
    permission: Mapped[str] = mapped_column(String(80))
    until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|approved|rejected|expired
    requested_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    manager_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    manager_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    hr_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    hr_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    override_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("permission_overrides.id", ondelete="SET NULL"))
    ended_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    offboarding: Mapped[Offboarding] = relationship()
    requested_by: Mapped[Optional[User]] = relationship(foreign_keys=[requested_by_id])
    manager_by: Mapped[Optional[User]] = relationship(foreign_keys=[manager_by_id])
    hr_by: Mapped[Optional[User]] = relationship(foreign_keys=[hr_by_id])


# ---------------------------------------------------------------- account revocation

class RevocationRun(Base):
    __tablename__ = "revocation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    offboarding_id: Mapped[int] = mapped_column(ForeignKey("offboardings.id", ondelete="CASCADE"),
                                                unique=True)
    status: Mapped[str] = mapped_column(String(10), default="scheduled")  # scheduled|running|done|failed
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    offboarding: Mapped[Offboarding] = relationship()
    steps: Mapped[list["RevocationStep"]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="RevocationStep.sort")


class RevocationStep(Base):
    __tablename__ = "revocation_steps"
    __table_args__ = (UniqueConstraint("run_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("revocation_runs.id", ondelete="CASCADE"), index=True)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    key: Mapped[str] = mapped_column(String(80))  # disable | rotate_token | ... | webhook:<name>
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    alerted_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    run: Mapped[RevocationRun] = relationship(back_populates="steps")

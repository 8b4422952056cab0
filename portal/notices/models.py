from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, TimestampMixin, UTCDateTime
from portal.core.models import User

KINDS = ("warning", "termination", "policy_change", "other")


class Notice(TimestampMixin, Base):
    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    requires_ack: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(10), default="draft")  # draft | sent
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sent_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    sent_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    recipients: Mapped[list["NoticeRecipient"]] = relationship(
        back_populates="notice", cascade="all, delete-orphan", order_by="NoticeRecipient.id")
    created_by: Mapped[Optional[User]] = relationship(foreign_keys=[created_by_id])


class NoticeRecipient(Base):
    __tablename__ = "notice_recipients"
    __table_args__ = (UniqueConstraint("notice_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    read_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    read_ip: Mapped[str] = mapped_column(String(64), default="")
    acknowledged_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    signature_id: Mapped[Optional[int]] = mapped_column(ForeignKey("signatures.id", ondelete="RESTRICT"))

    notice: Mapped[Notice] = relationship(back_populates="recipients")
    user: Mapped[User] = relationship(lazy="joined")

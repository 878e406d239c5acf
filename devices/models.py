"""Tables of the registry: regions, staff, tokens, speaker boxes, listeners, groups, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .orm import Base, UTCDateTime, utcnow

__all__ = [
    "Account",
    "ApiToken",
    "AuditEntry",
    "Device",
    "DeviceGroup",
    "DeviceGroupMember",
    "Listener",
    "LoginSession",
    "Region",
]

REGION_KINDS = ("county", "district", "village")
ROLES = ("admin", "district", "village")


class Region(Base):
    """A node of the region tree: the county, a district (읍·면) or a village (리)."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name_ko: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    parent_code: Mapped[str | None] = mapped_column(
        ForeignKey("regions.code", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Per-village settings; None means the server-wide default.
    requires_listener_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    quiet_hours: Mapped[str | None] = mapped_column(String(11))  # "21:00-06:00"
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)  # e.g. ["coastal"]
    # The official administrative code (행정구역 코드, e.g. "48820"), matched by CAP geocodes.
    admin_code: Mapped[str | None] = mapped_column(String(20), index=True)
    province_ko: Mapped[str | None] = mapped_column(String(50))  # the county's (경상남도)


class Account(Base):
    """A staff account bound to one region node with one role."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    display_name: Mapped[str] = mapped_column(String(100), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    region: Mapped[Region] = relationship(lazy="joined")


class LoginSession(Base):
    """A console login: the cookie's token hash and its CSRF token."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A personal API token of a staff account (scripts, Icecast source clients)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Device(Base):
    """A speaker box placed in a village."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="speaker")
    village_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_address: Mapped[str | None] = mapped_column(String(64))


class DeviceGroup(Base):
    """A named set of speaker boxes, e.g. "coastal speakers"."""

    __tablename__ = "device_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeviceGroupMember(Base):
    """Membership of a speaker box in a device group."""

    __tablename__ = "device_group_members"
    __table_args__ = (UniqueConstraint("group_id", "device_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("device_groups.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))


class Listener(Base):
    """A resident registered to listen to one village."""

    __tablename__ = "listeners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    nickname: Mapped[str] = mapped_column(String(40))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|pending|revoked
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """Who did what, when, where."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))  # "account:3 (kim)", "cli", "system"
    action: Mapped[str] = mapped_column(String(64))  # "device.add", "broadcast.emergency", ...
    target: Mapped[str] = mapped_column(String(100), default="")  # "device:12"
    region_code: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str] = mapped_column(Text, default="")

"""Disaster alerts through the one door: receive a CAP document, match, decide, speak, send.

Who calls it: ``web/api_alerts.py`` (``POST /api/v1/alerts``, approve, reject, list) and the feed
poller. What it calls: the pure parts (:mod:`.cap`, :mod:`.areas`, :mod:`.decide`), the ingest
service for the speech (TTS), and :class:`broadcast.onair.OnAir` with the actor
``System("alert:<identifier>")`` (approved alerts: the approving staff member). Quiet hours,
priority, preemption and the report are the door's, as for any broadcast.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices import store as devices_store
from devices.models import Account
from devices.targets import RegionTree, Targets
from streaming.items import Priority

from ..errors import NotCancellable
from ..onair import OnAir
from ..planner import AirRequest, Staff, System
from ..priority import priority_name
from .areas import CountyNames, match_areas
from .cap import MAX_CAP_BYTES, Area, CapAlert, parse_cap
from .decide import AlertDecision, decide_alert
from .errors import AlertNotPending, UnknownAlert
from .models import Alert
from .store import alert_by_key

__all__ = ["AlertService", "Received"]

log = logging.getLogger(__name__)
SPEECH_MAX_CHARS = 1500  # about two minutes of speech: the chime and the gist, not an essay
TTS_WAIT_S = 60.0


class Speech(Protocol):
    """What the alert service needs of the ingest service."""

    async def submit_text(
        self, text: str, *, title: str, created_by: int | None, region_code: str | None
    ) -> int: ...

    async def wait_ready(self, announcement_id: int, timeout: float) -> str: ...  # noqa: ASYNC109


@dataclass(frozen=True, slots=True)
class Received:
    """The stored alert and whether this document was seen before (then nothing else happened)."""

    alert: Alert
    duplicate: bool


class AlertService:
    """Receives CAP alerts, stores every one, and airs what the rules say through the door."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        onair: OnAir,
        speech: Speech,
        auto: str = "extreme",
    ) -> None:
        self.sessionmaker = sessionmaker
        self.onair = onair
        self.speech = speech
        self.auto = auto

    # --- receive -------------------------------------------------------------------------------

    async def receive(self, data: bytes, source: str) -> Received:
        """Check, store, decide and (when the rules say so) air one CAP document."""
        cap = parse_cap(data)  # a 4xx problem naming the first error; nothing is stored
        now = self.onair.clock.now()
        async with self.sessionmaker() as session:
            known = await alert_by_key(session, *cap.key)
            if known is not None:
                return Received(known, True)
            tree = await devices_store.load_tree(session)
            match = match_areas(_areas(cap), tree, await _county_names(session, tree))
            decision = decide_alert(cap, match, self.auto, now)
            row = _row(cap, data, source, decision, match.to_json(), now)
            session.add(row)
            devices_store.audit(
                session, f"system:alert:{cap.identifier}", "alert.receive",
                f"alert:{cap.identifier}", None, note=decision.reason, status=cap.status,
                msg_type=cap.msg_type, villages=sorted(decision.villages), source=source[:200],
            )  # fmt: skip
            await session.commit()
        await self._follow_references(row, decision)
        if decision.action == "air":
            await self._air(row, System(f"alert:{cap.identifier}"), decision.villages)
        async with self.sessionmaker() as session:
            fresh = await session.get(Alert, row.id)
            assert fresh is not None
            return Received(fresh, False)

    async def _follow_references(self, row: Alert, decision: AlertDecision) -> None:
        """An Update replaces, a Cancel cancels: stop their broadcasts, say why in the report."""
        if not decision.replaces:
            return
        state = "cancelled" if decision.action == "cancel" else "replaced"
        async with self.sessionmaker() as session:
            earlier = []
            for key in decision.replaces:
                found = await alert_by_key(session, *key)
                if found is not None and found.state in ("aired", "pending"):
                    earlier.append(found)
            for alert in earlier:
                alert.state = state
                alert.reason = f"{state} by alert {row.identifier}"
            await session.commit()
        for alert in earlier:
            if alert.broadcast_id is None:
                continue
            with contextlib.suppress(NotCancellable):  # it already ended
                await self.onair.cancel(
                    System(f"alert:{row.identifier}"),
                    alert.broadcast_id,
                    f"{state} by CAP {row.msg_type} {row.identifier}",
                )
        if decision.action == "cancel":
            async with self.sessionmaker() as session:
                this = await session.get(Alert, row.id)
                assert this is not None
                this.state = "ignored"
                this.reason = f"cancelled {len(earlier)} earlier alert(s)"
                await session.commit()

    async def _air(
        self,
        row: Alert,
        actor: Staff | System,
        villages: frozenset[str],
        *,
        defer_quiet: bool = False,
    ) -> None:
        """Speak the alert and send it through the door; the row says what happened.

        A staff member's approval answers with the door's own refusal (quiet hours, rights); an
        automatic airing that fails leaves the alert pending, with the reason, for a person.
        """
        account = actor.account if isinstance(actor, Staff) else None
        state, reason, broadcast_id = "aired", row.reason, None
        try:
            announcement_id = await self.speech.submit_text(
                row.speech[:SPEECH_MAX_CHARS],
                title=(row.headline or row.event)[:200],
                created_by=account.id if account else None,
                region_code=account.region_code if account else None,
            )
            status = await self.speech.wait_ready(announcement_id, TTS_WAIT_S)
            if status != "ready":
                raise RuntimeError(f"the speech could not be made ({status})")
            req = AirRequest(
                announcement_id=announcement_id,
                targets=Targets(villages=tuple(sorted(villages))),
                priority=Priority.parse(row.priority),
                defer_quiet=defer_quiet,
                valid_until=row.expires_at,
            )
            sent = await self.onair.send(actor, req)
            broadcast_id = sent.broadcast.id if sent.broadcast else None
        except Exception as exc:  # stored with the reason: an operator sees it on the alerts page
            if isinstance(actor, Staff):
                raise
            log.exception("alert %s could not be aired", row.identifier)
            state, reason = "pending", f"could not be aired automatically: {exc}"
        async with self.sessionmaker() as session:
            fresh = await session.get(Alert, row.id)
            assert fresh is not None
            fresh.state, fresh.reason, fresh.broadcast_id = state, reason, broadcast_id
            if account is not None:
                fresh.decided_by, fresh.decided_at = account.id, self.onair.clock.now()
            await session.commit()

    # --- staff decisions -----------------------------------------------------------------------

    async def approve(
        self,
        account: Account,
        alert_id: int,
        villages: list[str] | None = None,
        *,
        defer_quiet: bool = False,
    ) -> Alert:
        """Air a pending alert (optionally to other villages), as the approving staff member."""
        async with self.sessionmaker() as session:
            row = await self._get(session, alert_id)
            if row.state != "pending":
                raise AlertNotPending(f"alert {alert_id} is {row.state}", state=row.state)
        chosen = frozenset(villages) if villages is not None else frozenset(row.villages)
        await self._air(row, Staff(account), chosen, defer_quiet=defer_quiet)  # the door's rules
        async with self.sessionmaker() as session:
            return await self._get(session, alert_id)

    async def reject(self, account: Account, alert_id: int, reason: str = "") -> Alert:
        """Decide not to air a pending alert; audited with the reason."""
        async with self.sessionmaker() as session:
            row = await self._get(session, alert_id)
            if row.state != "pending":
                raise AlertNotPending(f"alert {alert_id} is {row.state}", state=row.state)
            row.state, row.reason = "rejected", reason or "rejected by staff"
            row.decided_by, row.decided_at = account.id, self.onair.clock.now()
            devices_store.audit(
                session, devices_store.actor_of(account), "alert.reject", f"alert:{row.identifier}",
                account.region_code, note=reason,
            )  # fmt: skip
            await session.commit()
            return row

    async def get(self, alert_id: int) -> Alert:
        """One alert."""
        async with self.sessionmaker() as session:
            return await self._get(session, alert_id)

    async def list(self, limit: int, offset: int) -> tuple[list[Alert], int]:
        """Newest first, paged."""
        async with self.sessionmaker() as session:
            total = int(await session.scalar(select(func.count()).select_from(Alert)) or 0)
            rows = await session.scalars(
                select(Alert).order_by(Alert.received_at.desc(), Alert.id.desc())
                .limit(limit).offset(offset)
            )  # fmt: skip
            return list(rows), total

    async def _get(self, session: AsyncSession, alert_id: int) -> Alert:
        row = await session.get(Alert, alert_id)
        if row is None:
            raise UnknownAlert(f"no alert {alert_id}")
        return row


def _areas(cap: CapAlert) -> list[Area]:
    info = cap.info("ko")
    return list(info.areas) if info else []


async def _county_names(session: AsyncSession, tree: RegionTree) -> CountyNames:
    county = next((tree.nodes[c] for c in tree.roots if tree.nodes[c].kind == "county"), None)
    if county is None:
        return CountyNames("", "")
    codes = await devices_store.admin_codes(session)
    province = await devices_store.province_of(session, county.code)
    return CountyNames(county.code, county.name_ko, county.name_en, province, codes)


def _row(
    cap: CapAlert,
    data: bytes,
    source: str,
    d: AlertDecision,
    areas: dict[str, object],
    now: datetime,
) -> Alert:
    info = cap.info("ko")
    state = {"air": "aired", "pending": "pending"}.get(d.action, "ignored")
    return Alert(
        identifier=cap.identifier[:200],
        sender=cap.sender[:200],
        sent=cap.key[2],
        sent_at=cap.sent,
        received_at=now,
        source=source[:300],
        status=cap.status,
        msg_type=cap.msg_type,
        exercise=cap.exercise,
        event=(info.event if info else "")[:200],
        headline=d.headline[:300],
        speech=d.speech,
        priority=priority_name(d.priority),
        severity=info.severity if info else "Unknown",
        urgency=info.urgency if info else "Unknown",
        expires_at=d.expires,
        areas=areas,
        villages=sorted(d.villages),
        state=state,
        reason=d.reason,
        references=[list(r) for r in cap.references],
        xml=data[:MAX_CAP_BYTES].decode("utf-8", "replace"),
    )

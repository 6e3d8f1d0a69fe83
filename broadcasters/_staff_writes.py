"""Staff writes prepared now and sent on confirmation: a rolled-back dry run, a pending row, an idempotent send.

One code path with the staff API: an Action is the API's own body for one of its writes,
parsed by status.web.bodies and run by the core, whose scope check is the API's; a refusal
(ScopeError) is audited with core.record_denial before it is raised again.

Pending actions live in the `idempotency` table, keyed by the acting token, so any instance
can take the confirmation and a restart loses nothing: "telegram-pending:<id>" holds the
action (status_code 0: not an answer yet), and send() writes under "telegram:<id>" with an
idempotency record like the API's, in the change's own transaction. A second send finds that
record and writes nothing; two instances racing collide on its primary key and one rolls
back whole. Pending actions expire after PENDING_TTL.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from status import db, outbox, tokens
from status.core import Core, Tx
from status.errors import ConflictError, ScopeError
from status.model import Actor, Event, Incident
from status.schema import events, idempotency
from status.web import bodies

PENDING_TTL = timedelta(minutes=10)
PENDING, SENT = "telegram-pending:", "telegram:"


@dataclass(frozen=True, slots=True)
class Action:
    """A staff write to do later: the staff API's body for one of its writes."""

    doc: dict[str, Any]
    incident_id: str | None = None  # None: create an incident; else: add an update to it

    @property
    def path(self) -> str:
        """The API path of the same write (the idempotency fingerprint uses it, as the API's)."""
        if self.incident_id is None:
            return "/api/v1/incidents"
        return f"/api/v1/incidents/{self.incident_id}/updates"

    def dumps(self) -> str:
        doc = {"doc": self.doc, "incident_id": self.incident_id}
        return json.dumps(doc, ensure_ascii=False, sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Action:
        doc = json.loads(text)
        return cls(dict(doc["doc"]), doc.get("incident_id"))

    def fingerprint(self) -> str:
        body = json.dumps(self.doc, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(f"POST {self.path}\n".encode() + body).hexdigest()


@dataclass(frozen=True, slots=True)
class Sent:
    incident_id: str
    again: bool = False  # an earlier send already wrote it; nothing was written now


class _DryRun(Exception):
    """Raised inside a transaction to roll it back, carrying the event it would have written."""

    def __init__(self, event: Event) -> None:
        super().__init__("dry run")
        self.event = event


class StaffWrites:
    """Preview, hold, send and cancel staff writes for one instance."""

    def __init__(self, core: Core) -> None:
        self.core, self.engine = core, core.engine

    async def preview(self, action: Action, actor: Actor) -> Event:
        """The outbox event `action` would write now, by doing it and rolling it back.

        Raises what the API would answer with: DomainError (ScopeError audited) or APIError.
        """
        try:
            async with self.core.transaction() as tx:
                await self._perform(tx, action, actor)
                query = select(events).where(events.c.id == tx.last_event_id)
                raise _DryRun(outbox.as_event((await tx.conn.execute(query)).one()))
        except _DryRun as done:
            return done.event
        except ScopeError as refused:
            await self.core.record_denial(actor, refused)
            raise

    async def hold(self, action: Action, actor: Actor) -> str:
        """Keep `action` for send(); returns its id (12 URL-safe characters)."""
        pending = secrets.token_urlsafe(9)
        async with db.write(self.engine) as conn:
            await conn.execute(
                idempotency.insert().values(
                    token_id=actor.token_id,
                    key=PENDING + pending,
                    fingerprint=action.fingerprint(),
                    status_code=0,
                    body=action.dumps(),
                    created_at=self.core.clock.now(),
                )
            )
        return pending

    async def cancel(self, actor: Actor, pending: str) -> bool:
        """Forget a held action; False when there was none (sent, cancelled, someone else's)."""
        async with db.write(self.engine) as conn:
            gone = await conn.execute(
                delete(idempotency).where(
                    idempotency.c.token_id == actor.token_id, idempotency.c.key == PENDING + pending
                )
            )
        return bool(gone.rowcount)

    async def send(self, actor: Actor, pending: str) -> Sent | None:
        """Do a held action once, as `actor`; None when it expired, was cancelled or is not theirs.

        Raises like preview(); a concurrent change to the same incident is a ConflictError.
        """
        if actor.token_id is None:
            return None
        try:
            async with self.core.transaction() as tx:
                done = await _record(tx.conn, actor.token_id, SENT + pending)
                if done is not None:
                    return Sent(json.loads(done.body)["id"], again=True)
                held = await _record(tx.conn, actor.token_id, PENDING + pending)
                if held is None or held.created_at + PENDING_TTL <= tx.now:
                    return None
                action = Action.loads(held.body)
                await tokens.touch(tx.conn, actor.token_id, tx.now)
                incident = await self._perform(tx, action, actor)
                await tx.conn.execute(
                    idempotency.insert().values(
                        token_id=actor.token_id,
                        key=SENT + pending,
                        fingerprint=action.fingerprint(),
                        status_code=201,
                        body=json.dumps({"id": incident.id}),
                        created_at=tx.now,
                    )
                )
                await tx.conn.execute(
                    delete(idempotency).where(
                        idempotency.c.token_id == actor.token_id,
                        idempotency.c.key == PENDING + pending,
                    )
                )
        except ScopeError as refused:
            await self.core.record_denial(actor, refused)
            raise
        except IntegrityError:
            # Another instance took the same confirmation first; this one rolled back whole.
            async with db.read(self.engine) as conn:
                done = await _record(conn, actor.token_id, SENT + pending)
            if done is None:
                raise ConflictError(
                    "another change to the same incident landed at the same moment; "
                    "nothing was written"
                ) from None
            return Sent(json.loads(done.body)["id"], again=True)
        return Sent(incident.id)

    async def _perform(self, tx: Tx, action: Action, actor: Actor) -> Incident:
        """The staff API's write for `action`: the same body parser, the same core command."""
        if action.incident_id is None:
            return await self.core.create_incident(tx, bodies.parse_new_incident(action.doc), actor)
        command = bodies.parse_new_update(action.doc)
        return await self.core.add_update(tx, action.incident_id, command, actor)


async def _record(conn: AsyncConnection, token_id: str, key: str) -> Any:
    query = select(idempotency).where(idempotency.c.token_id == token_id, idempotency.c.key == key)
    return (await conn.execute(query)).first()
